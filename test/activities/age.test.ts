// Our age implementation against the stock `age` binary, both ways: what Lifeboat encrypts,
// `age -d` opens (break-glass restores), and what `age` encrypts, Lifeboat opens.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import {
  AgeError,
  createAgeDecryptor,
  createAgeEncryptor,
  identitiesFromText,
  recipientOf,
} from '../../src/activities/pipeline/age.ts';
import { tempDir } from '../support/temp-dir.ts';

const tmp = tempDir('lifeboat-age-');
const keygen = () => {
  const file = path.join(tmp, `${randomBytes(4).toString('hex')}.key`);
  execFileSync('age-keygen', ['-o', file], { stdio: 'ignore' });
  const identity = identitiesFromText(fs.readFileSync(file, 'utf8'))[0]!;
  const recipient = execFileSync('age-keygen', ['-y', file], { encoding: 'utf8' }).trim();
  return { file, identity, recipient };
};
const through = (stream: NodeJS.ReadWriteStream, data: Buffer, pieces = 7) =>
  buffer(Readable.from(splitInto(data, pieces)).pipe(stream));
function* splitInto(data: Buffer, pieces: number) {
  const size = Math.max(1, Math.ceil(data.length / pieces));
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

describe('age format', () => {
  const alice = keygen();
  const bob = keygen();

  it('derives the recipient of an identity as age-keygen -y does', () => {
    assert.equal(recipientOf(alice.identity), alice.recipient);
  });

  const sizes = [
    { name: 'empty', bytes: 0 },
    { name: 'one byte', bytes: 1 },
    { name: 'exactly one chunk', bytes: 64 * 1024 },
    { name: 'one chunk and a byte', bytes: 64 * 1024 + 1 },
    { name: 'several chunks', bytes: 3 * 64 * 1024 + 12_345 },
  ];
  for (const c of sizes) {
    it(`stock age -d opens what we encrypt: ${c.name}`, async () => {
      const plain = randomBytes(c.bytes);
      const sealed = await through(createAgeEncryptor([bob.recipient, alice.recipient]), plain);
      const file = path.join(tmp, `${c.bytes}.age`);
      fs.writeFileSync(file, sealed);
      const opened = execFileSync('age', ['-d', '-i', alice.file, file], { maxBuffer: 1 << 26 });
      assert.equal(sha(opened), sha(plain));
    });
    it(`we open what stock age encrypts: ${c.name}`, async () => {
      const plain = randomBytes(c.bytes);
      const sealed = execFileSync('age', ['-r', alice.recipient], { input: plain, maxBuffer: 1 << 26 });
      const opened = await through(createAgeDecryptor([bob.identity, alice.identity]), sealed, 13);
      assert.equal(sha(opened), sha(plain));
    });
  }

  it('refuses a file for another identity', async () => {
    const sealed = await through(createAgeEncryptor([bob.recipient]), Buffer.from('secret'));
    await assert.rejects(through(createAgeDecryptor([alice.identity]), sealed), /no identity matches/);
  });

  it('detects a flipped byte in the payload and a truncated file', async () => {
    const sealed = await through(createAgeEncryptor([alice.recipient]), randomBytes(200_000));
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 100]! ^= 1;
    await assert.rejects(through(createAgeDecryptor([alice.identity]), flipped), AgeError);
    await assert.rejects(
      through(createAgeDecryptor([alice.identity]), sealed.subarray(0, sealed.length - 70_000)),
      AgeError,
    );
  });
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
