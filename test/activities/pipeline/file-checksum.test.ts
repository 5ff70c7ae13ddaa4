// backup_manifest's per-file checksums computed as PostgreSQL prints them.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { fileChecksum, isFileChecksumAlgorithm } from '../../../src/activities/pipeline/file-checksum.ts';
import { manifestCrc32c, referenceCrc32c } from '../../support/crc32c.ts';

const crcOf = (bytes: Buffer, pieces = 1): string => {
  const sum = fileChecksum('CRC32C');
  const step = Math.ceil(bytes.length / pieces) || 1;
  for (let at = 0; at < bytes.length; at += step) sum.update(bytes.subarray(at, at + step));
  return sum.hex();
};

describe('fileChecksum', () => {
  it('prints CRC32C as PostgreSQL 15 printed it for PG_VERSION ("15\\n" → 8a744722)', () => {
    assert.equal(crcOf(Buffer.from('15\n')), '8a744722');
  });

  it('is CRC-32C, bytes little-endian: the standard check value of "123456789" is 0xe3069283', () => {
    assert.equal(referenceCrc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crcOf(Buffer.from('123456789')), '839206e3');
  });

  it('gives the same CRC32C whatever pieces the file arrives in, and the reference value', () => {
    const file = randomBytes(100_003);
    const whole = crcOf(file);
    assert.equal(whole, manifestCrc32c(file));
    for (const pieces of [2, 7, 1000]) assert.equal(crcOf(file, pieces), whole);
    assert.equal(crcOf(Buffer.alloc(0)), '00000000');
  });

  it('computes the SHA family as hex digests', () => {
    const file = randomBytes(5000);
    for (const algorithm of ['SHA224', 'SHA256', 'SHA384', 'SHA512'] as const) {
      const sum = fileChecksum(algorithm);
      sum.update(file.subarray(0, 1234));
      sum.update(file.subarray(1234));
      assert.equal(sum.hex(), createHash(algorithm.toLowerCase()).update(file).digest('hex'));
    }
  });

  it('knows the algorithms backup_manifest can name, and not NONE or others', () => {
    for (const name of ['CRC32C', 'SHA224', 'SHA256', 'SHA384', 'SHA512'])
      assert.ok(isFileChecksumAlgorithm(name));
    for (const name of ['NONE', 'MD5', 'crc32c', '', undefined]) assert.ok(!isFileChecksumAlgorithm(name));
  });
});
