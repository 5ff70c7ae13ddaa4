// The tar reader against archives made by GNU tar in ustar format (as pg_basebackup writes them),
// fed in chunks of every awkward size.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { TarObserver, TarReader, type TarEntry } from '../../../src/activities/pipeline/tar.ts';

function makeArchive(): { tar: Buffer; files: Record<string, Buffer> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-tar-'));
  const files: Record<string, Buffer> = {
    backup_label: Buffer.from('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n'),
    'base/1/1259': Buffer.alloc(8192 * 3, 7),
    'global/empty': Buffer.alloc(0),
    // Longer than the 100-byte name field: ustar splits it into prefix and name.
    [`${'d'.repeat(60)}/${'e'.repeat(60)}/file`]: Buffer.from('long name'),
    'odd/size': Buffer.from('x'.repeat(1000)),
    backup_manifest: Buffer.from('{"PostgreSQL-Backup-Manifest-Version": 1}\n'),
  };
  try {
    for (const [name, body] of Object.entries(files)) {
      fs.mkdirSync(path.join(dir, path.dirname(name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), body);
    }
    const tar = execFileSync('tar', ['--format=ustar', '-c', '-C', dir, ...Object.keys(files)], {
      maxBuffer: 1 << 26,
    });
    return { tar, files };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function feed(reader: { push(b: Buffer): void }, tar: Buffer, chunk: number): void {
  for (let at = 0; at < tar.length; at += chunk) reader.push(tar.subarray(at, at + chunk));
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('TarReader', () => {
  const { tar, files } = makeArchive();
  for (const chunk of [1, 7, 511, 512, 513, 4096, 65536, tar.length]) {
    it(`reads every member and its bytes in chunks of ${chunk}`, () => {
      const seen: Record<string, Buffer[]> = {};
      const ends: TarEntry[] = [];
      const reader = new TarReader({
        entry: (e) => {
          seen[e.name] = [];
          return (c) => seen[e.name]!.push(Buffer.from(c));
        },
        entryEnd: (e) => ends.push(e),
      });
      feed(reader, tar, chunk);
      assert.equal(reader.ended, true);
      assert.deepEqual(Object.keys(seen).sort(), Object.keys(files).sort());
      for (const [name, body] of Object.entries(files))
        assert.equal(sha(Buffer.concat(seen[name]!)), sha(body), name);
      assert.equal(ends.length, Object.keys(files).length);
    });
  }

  it('rejects a corrupted header', () => {
    const bad = Buffer.from(tar);
    bad[10] = bad[10]! ^ 0xff;
    assert.throws(() => feed(new TarReader({}), bad, 4096), /bad header checksum/);
  });

  it('is not ended by a truncated archive', () => {
    const reader = new TarReader({});
    feed(reader, tar.subarray(0, 8192), 4096);
    assert.equal(reader.ended, false);
  });
});

describe('TarObserver', () => {
  it('passes every byte through and keeps the captured members', async () => {
    const { tar, files } = makeArchive();
    const observer = new TarObserver(['backup_label', 'backup_manifest']);
    const out: Buffer[] = [];
    observer.on('data', (c: Buffer) => out.push(c));
    for (let at = 0; at < tar.length; at += 1000) observer.write(tar.subarray(at, at + 1000));
    observer.end();
    await new Promise((resolve) => observer.once('end', resolve));
    assert.equal(sha(Buffer.concat(out)), sha(tar));
    assert.equal(observer.bytes, tar.length);
    assert.deepEqual(observer.captured.get('backup_label'), files.backup_label);
    assert.deepEqual(observer.captured.get('backup_manifest'), files.backup_manifest);
    assert.equal(observer.reader.ended, true);
  });
});
