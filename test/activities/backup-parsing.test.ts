// What the streaming activity reads out of pg_basebackup's tar: backup_label and backup_manifest.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { parseBackupLabel } from '../../src/activities/backup.ts';
import { parsePostgresManifest } from '../../src/activities/postgres-manifest.ts';

/** A backup_manifest as PostgreSQL 15 writes it, its checksum over everything before its line. */
function manifest(files: { path: string; size: number; sha256: string }[], end = '0/6000100'): Buffer {
  const body =
    `{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n` +
    files
      .map(
        (f) =>
          `{ "Path": "${f.path}", "Size": ${f.size}, "Last-Modified": "2026-11-22 16:29:03 GMT", "Checksum-Algorithm": "SHA256", "Checksum": "${f.sha256}" }`,
      )
      .join(',\n') +
    `\n],\n"WAL-Ranges": [\n{ "Timeline": 1, "Start-LSN": "0/6000028", "End-LSN": "${end}" }\n],\n`;
  const checksum = createHash('sha256').update(body).digest('hex');
  return Buffer.from(`${body}"Manifest-Checksum": "${checksum}"}\n`);
}

const EMPTY = createHash('sha256').update('').digest('hex');

describe('parseBackupLabel', () => {
  const label = [
    'START WAL LOCATION: 0/6000028 (file 000000010000000000000006)',
    'CHECKPOINT LOCATION: 0/6000060',
    'BACKUP METHOD: streamed',
    'BACKUP FROM: primary',
    'START TIME: 2026-11-22 16:29:03 UTC',
    'LABEL: lifeboat orders-full-20261122T162903Z',
    'START TIMELINE: 1',
    '',
  ].join('\n');

  it('reads the start LSN, timeline, time and label', () => {
    assert.deepEqual(parseBackupLabel(label), {
      startLsn: '0/6000028',
      timeline: 1,
      startTime: '2026-11-22T16:29:03.000Z',
      label: 'lifeboat orders-full-20261122T162903Z',
    });
  });

  it('leaves a start time in another time zone unknown rather than guessing', () => {
    assert.equal(parseBackupLabel(label.replace('UTC', 'CET')).startTime, undefined);
  });

  it('refuses a label without a start location', () => {
    assert.throws(() => parseBackupLabel('LABEL: x\n'), /backup_label from pg_basebackup is not as expected/);
  });
});

describe('parsePostgresManifest', () => {
  it('reads the files, the end of the WAL range and its own checksum', () => {
    const m = parsePostgresManifest(
      manifest([
        { path: 'PG_VERSION', size: 3, sha256: 'a'.repeat(64) },
        { path: 'tablespace_map', size: 0, sha256: EMPTY },
      ]),
    );
    assert.equal(m.files, 2);
    assert.equal(m.stopLsn, '0/6000100');
    assert.deepEqual(m.entries.get('PG_VERSION'), { size: 3, algorithm: 'SHA256', checksum: 'a'.repeat(64) });
  });

  it('refuses a manifest whose content no longer matches its checksum', () => {
    const good = manifest([{ path: 'PG_VERSION', size: 3, sha256: 'a'.repeat(64) }]);
    const bad = Buffer.from(good.toString('utf8').replace('"Size": 3', '"Size": 4'));
    assert.throws(() => parsePostgresManifest(bad), /fails its own Manifest-Checksum/);
  });

  it('refuses what is not JSON', () => {
    assert.throws(() => parsePostgresManifest(Buffer.from('{ "Files": [')), /not JSON/);
  });
});
