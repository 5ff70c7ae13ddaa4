// Verification's read-back in its pipeline thread, against the stack's real S3 server: a stored
// backup object (tar → zstd → age) downloaded by curl and read back with its sha256 and size;
// with the age identity, opened by age and only that, or also decompressed against zstd's own
// checksum, or checked file by file; only hashed without the identity. A changed byte shows, in
// the ciphertext and in the zstd frame.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import type {
  ContentCheckTaskOptions,
  ContentCheckTaskResult,
} from '../../../src/activities/pipeline/content-check-task.ts';
import { createAgeEncryptor, recipientOf } from '../../../src/activities/pipeline/age.ts';
import { runInThread } from '../../../src/activities/pipeline/in-thread.ts';
import { planStore, type ObjectStore } from '../../../src/activities/ports/object-store.ts';
import type { LifeboatError } from '../../../src/domain/errors.ts';
import { backupManifest, baseTar, FILES, SEGMENT } from '../../support/base-tar.ts';
import { ensureStack, type TestStack } from '../../support/stack.ts';

const TASK = new URL('../../../src/activities/pipeline/content-check-task.ts', import.meta.url);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('content check task (read-back in a pipeline thread)', () => {
  let stack: TestStack;
  let store: ObjectStore;
  let identity: string;
  let stored: Buffer;
  let compressed: Buffer;
  const folder = `test/content-check-task/${Date.now()}/`;
  const good = `${folder}base.tar.zst.age`;
  const flipped = `${folder}flipped.tar.zst.age`;
  const badFrame = `${folder}bad-frame.tar.zst.age`;

  const readBack = async (
    key: string,
    withIdentity: boolean,
    inside: ContentCheckTaskOptions['inside'] = 'files',
  ) =>
    runInThread<ContentCheckTaskOptions, ContentCheckTaskResult, number>(TASK, {
      identity: withIdentity ? identity : undefined,
      inside,
      binaries: { zstd: 'zstd', age: 'age', curl: 'curl' },
      algorithm: 'CRC32C',
      key,
      source: await store.presignGet(key, 60),
    });

  before(async () => {
    stack = await ensureStack();
    store = planStore(stack.plan, stack.env, 'primary');
    identity = stack.env[stack.plan.storage.encryption.identityEnv]!;
    const zst = execFileSync('zstd', ['-3', '-q', '-c'], {
      input: baseTar(FILES, backupManifest('CRC32C', FILES)),
    });
    const encrypt = (plain: Buffer) =>
      buffer(Readable.from([plain]).pipe(createAgeEncryptor([recipientOf(identity)])));
    compressed = zst;
    stored = await encrypt(zst);
    await store.put(good, stored);
    // A zstd frame with one byte changed, encrypted as it is: age opens it, zstd must not.
    const corrupt = Buffer.from(zst);
    corrupt[Math.floor(corrupt.length / 2)]! ^= 0xff;
    await store.put(badFrame, await encrypt(corrupt));
    // One byte of the payload changed, far from the header: only the chunk's tag can tell.
    const changed = Buffer.from(stored);
    changed[changed.length - 20]! ^= 1;
    await store.put(flipped, changed);
  });

  after(async () => {
    for (const o of await store.list(folder)) await store.delete(o.key);
  });

  it('with the identity: the stored size and sha256, and every file checked against backup_manifest', async () => {
    const run = await readBack(good, true);
    const result = await run.result;
    assert.equal(result.bytes, stored.length);
    assert.equal(result.sha256, sha256(stored));
    assert.equal(result.content?.files, Object.keys(FILES).length);
    assert.deepEqual([...result.content.wal], [[SEGMENT, 1024]]);
    assert.equal(run.progress(), stored.length);
  });

  it("with the identity, zstd's checksum only: the stored size and sha256, decompressed, no files listed", async () => {
    const result = await (await readBack(good, true, 'zstd-checksum')).result;
    assert.equal(result.bytes, stored.length);
    assert.equal(result.sha256, sha256(stored));
    assert.equal(result.content, undefined);
  });

  it('opened only: the stored size and sha256, decrypted by age, nothing decompressed', async () => {
    const run = await readBack(good, true, 'opens');
    const result = await run.result;
    assert.equal(result.bytes, stored.length);
    assert.equal(result.sha256, sha256(stored));
    assert.equal(result.content, undefined);
    assert.equal(run.progress(), stored.length);
  });

  it('with the sha256 of the compressed bytes: decrypted and compared, nothing decompressed', async () => {
    const result = await (await readBack(good, true, { compressedSha256: sha256(compressed) })).result;
    assert.equal(result.bytes, stored.length);
    assert.equal(result.sha256, sha256(stored));
    assert.equal(result.content, undefined);
    const other = sha256(Buffer.from('other'));
    await assert.rejects(
      (await readBack(good, true, { compressedSha256: other })).result,
      (err: LifeboatError) => {
        assert.equal(err.code, 'IntegrityError');
        assert.match(
          err.message,
          new RegExp(`decrypts to bytes with sha256 ${sha256(compressed)}, not the ${other}`),
        );
        return true;
      },
    );
  });

  it('a changed byte inside the zstd frame: decrypts, then fails to decompress, checked either way', async () => {
    await assert.rejects((await readBack(badFrame, true, 'zstd-checksum')).result, /zstd -t exited with 1/);
    await assert.rejects((await readBack(badFrame, true, 'files')).result, /zstd exited with 1/);
  });

  it('without the identity: the stored size and sha256 only, nothing opened', async () => {
    const result = await (await readBack(good, false)).result;
    assert.equal(result.bytes, stored.length);
    assert.equal(result.sha256, sha256(stored));
    assert.equal(result.content, undefined);
  });

  it('a changed byte: a sha256 other than what was written, and with the identity it does not open', async () => {
    const hashed = await (await readBack(flipped, false)).result;
    assert.equal(hashed.bytes, stored.length);
    assert.notEqual(hashed.sha256, sha256(stored));
    await assert.rejects(
      (await readBack(flipped, true)).result,
      /failed to decrypt and authenticate payload chunk/,
    );
    await assert.rejects(
      (await readBack(flipped, true, 'opens')).result,
      /failed to decrypt and authenticate payload chunk/,
    );
  });

  it('a missing object: a storage error naming the key and the status, with or without the identity', async () => {
    for (const withIdentity of [false, true])
      await assert.rejects(
        (await readBack(`${folder}missing`, withIdentity, 'opens')).result,
        (err: LifeboatError) => {
          assert.equal(err.code, 'IntegrityError');
          assert.match(err.message, new RegExp(`reading ${folder}missing back: not in storage .*404`));
          return true;
        },
      );
  });
});
