// The base backup's tar check, as its process runs it (tar-check-main.ts, the tar on stdin):
// every file against backup_manifest, backup_label and backup_manifest kept, the WAL listed; a
// changed file, a tar cut short and a tar without backup_manifest each reported as what they are.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { TarCheckReport } from '../../../src/activities/pipeline/tar-check.ts';
import { backupManifest, baseTar, FILES, SEGMENT } from '../../support/base-tar.ts';

const MAIN = fileURLToPath(new URL('../../../src/activities/pipeline/tar-check-main.ts', import.meta.url));

function check(tar: Buffer, args = ['--algorithm', 'CRC32C', '--name', 'the-key']): TarCheckReport {
  const out = execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', MAIN, ...args], {
    input: tar,
    maxBuffer: 1 << 26,
  });
  return JSON.parse(out.toString('utf8')) as TarCheckReport;
}

describe('tar check (its own process, blocking reads into one buffer)', () => {
  it('a tar whose files match backup_manifest: its size, the files, the WAL, backup_label and backup_manifest', () => {
    const files = {
      ...FILES,
      backup_label: Buffer.from('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n'),
    };
    const tar = baseTar(files, backupManifest('CRC32C', files));
    const report = check(tar);
    assert.ok(report.ok, JSON.stringify(report));
    assert.equal(report.bytes, tar.length);
    assert.equal(report.files, Object.keys(files).length);
    assert.deepEqual(report.walSegments, { [SEGMENT]: 1024 });
    assert.equal(report.backupLabel, files.backup_label.toString());
    assert.deepEqual(Buffer.from(report.backupManifest, 'base64'), backupManifest('CRC32C', files));
  });

  it('a changed file: an IntegrityError naming it and the object', () => {
    const changed = { ...FILES, 'global/pg_control': Buffer.from('d'.repeat(8192)) };
    const report = check(baseTar(changed, backupManifest('CRC32C', FILES)));
    assert.equal(report.ok, false);
    assert.ok(!report.ok);
    assert.equal(report.error.code, 'IntegrityError');
    assert.match(report.error.message, /^the-key: .*global\/pg_control: CRC32C differs from the manifest/);
  });

  it('a tar cut short, and one without backup_manifest, are not a base backup', () => {
    const tar = baseTar(FILES, backupManifest('CRC32C', FILES));
    const short = check(tar.subarray(0, 10_240));
    assert.ok(!short.ok);
    assert.match(short.error.message, /ended without its end blocks/);
    const none = check(execFileSync('tar', ['--format=ustar', '-c', '-C', '/etc', 'hostname']));
    assert.ok(!none.ok);
    assert.match(none.error.message, /no backup_manifest/);
  });

  it('bad arguments: exit 2, nothing read', () => {
    assert.throws(
      () => check(Buffer.alloc(0), ['--algorithm', 'MD5', '--name', 'k']),
      (err: { status?: number }) => err.status === 2,
    );
  });
});
