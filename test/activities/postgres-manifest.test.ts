// Verification's content check: a base backup's tar (made by GNU tar, as pg_basebackup writes it,
// backup_manifest last) checked file by file against backup_manifest's CRC32C or SHA256 checksums.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LifeboatError } from '../../src/domain/errors.ts';
import { contentChecker } from '../../src/activities/postgres-manifest.ts';
import type { FileChecksumAlgorithm } from '../../src/activities/pipeline/file-checksum.ts';
import { backupManifest, baseTar, FILES, SEGMENT } from '../support/base-tar.ts';

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
