// Verification's content check: a base backup's tar (made by GNU tar, as pg_basebackup writes it,
// backup_manifest last) checked file by file against backup_manifest's CRC32C or SHA256 checksums.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { LifeboatError } from '../../src/domain/errors.ts';
import { contentChecker } from '../../src/activities/postgres-manifest.ts';
import type { FileChecksumAlgorithm } from '../../src/activities/pipeline/file-checksum.ts';
import { manifestCrc32c } from '../support/crc32c.ts';

const FILES: Record<string, Buffer> = {
  PG_VERSION: Buffer.from('15\n'),
  'base/1/1259': Buffer.alloc(8192 * 3, 7),
  'global/pg_control': Buffer.from('c'.repeat(8192)),
};
const SEGMENT = '000000010000000000000002';

function checksumOf(algorithm: 'CRC32C' | 'SHA256', body: Buffer): string {
  return algorithm === 'CRC32C' ? manifestCrc32c(body) : createHash('sha256').update(body).digest('hex');
}

/** backup_manifest as PostgreSQL 15 writes it, with its own checksum over what precedes its line. */
function backupManifest(algorithm: 'CRC32C' | 'SHA256', files: Record<string, Buffer>): Buffer {
  const body =
    `{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n` +
    Object.entries(files)
      .map(
        ([p, b]) =>
          `{ "Path": "${p}", "Size": ${b.length}, "Last-Modified": "2026-11-23 08:29:11 GMT", "Checksum-Algorithm": "${algorithm}", "Checksum": "${checksumOf(algorithm, b)}" }`,
      )
      .join(',\n') +
    `\n],\n"WAL-Ranges": [\n{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }\n],\n`;
  return Buffer.from(`${body}"Manifest-Checksum": "${createHash('sha256').update(body).digest('hex')}"}\n`);
}

/** The tar: the data files as given, WAL in pg_wal/, backup_manifest (of `manifestOf`) last. */
function baseTar(files: Record<string, Buffer>, manifest: Buffer): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-manifest-'));
  const all = { ...files, [`pg_wal/${SEGMENT}`]: Buffer.alloc(1024, 1), backup_manifest: manifest };
  try {
    for (const [name, body] of Object.entries(all)) {
      fs.mkdirSync(path.join(dir, path.dirname(name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), body);
    }
    return execFileSync('tar', ['--format=ustar', '-c', '-C', dir, ...Object.keys(all)], {
      maxBuffer: 1 << 26,
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function check(algorithm: FileChecksumAlgorithm, tar: Buffer) {
  const checker = contentChecker(algorithm);
  // Awkward pieces, as the zstd pipe delivers them.
  for (let at = 0; at < tar.length; at += 3001) {
    const piece = tar.subarray(at, at + 3001);
    await new Promise<void>((resolve, reject) =>
      checker.sink.write(piece, (err) => (err ? reject(err) : resolve())),
    );
  }
  return checker.finish('orders/base.tar.zst.age');
}

describe('contentChecker', () => {
  for (const algorithm of ['CRC32C', 'SHA256'] as const) {
    it(`passes a tar whose every file matches backup_manifest's ${algorithm} and finds its WAL`, async () => {
      const result = await check(algorithm, baseTar(FILES, backupManifest(algorithm, FILES)));
      assert.equal(result.files, 3);
      assert.deepEqual([...result.wal], [[SEGMENT, 1024]]);
    });

    it(`names a file whose bytes differ from backup_manifest's ${algorithm}, same size`, async () => {
      const changed = {
        ...FILES,
        'base/1/1259': Buffer.concat([Buffer.alloc(8192 * 3 - 1, 7), Buffer.from([8])]),
      };
      await assert.rejects(
        check(algorithm, baseTar(changed, backupManifest(algorithm, FILES))),
        (err: LifeboatError) => {
          assert.equal(err.code, 'IntegrityError');
          assert.match(
            err.message,
            new RegExp(`1 file\\(s\\) do not match backup_manifest: base/1/1259: ${algorithm} differs`),
          );
          return true;
        },
      );
    });
  }

  it('refuses to call a file checked when backup_manifest used another algorithm than the one computed', async () => {
    await assert.rejects(
      check('CRC32C', baseTar(FILES, backupManifest('SHA256', FILES))),
      (err: LifeboatError) => {
        assert.equal(err.code, 'IntegrityError');
        assert.match(err.message, /PG_VERSION: backup_manifest has a SHA256 checksum, CRC32C was computed/);
        return true;
      },
    );
  });

  it('names files missing from the tar or from backup_manifest, and a tar without a manifest', async () => {
    const fewer = Object.fromEntries(Object.entries(FILES).filter(([name]) => name !== 'PG_VERSION'));
    await assert.rejects(
      check('CRC32C', baseTar(fewer, backupManifest('CRC32C', FILES))),
      /PG_VERSION: in backup_manifest, not in the tar/,
    );
    await assert.rejects(
      check('CRC32C', baseTar({ ...FILES, extra: Buffer.from('x') }, backupManifest('CRC32C', FILES))),
      /extra: in the tar, not in backup_manifest/,
    );
    const noManifest = baseTar(FILES, Buffer.alloc(0));
    const checker = contentChecker('CRC32C');
    checker.sink.write(noManifest);
    assert.throws(() => checker.finish('k'), /no backup_manifest inside the tar/);
  });
});
