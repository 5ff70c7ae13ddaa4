// The multipart writer against the stack's real S3 server: parts as the stream produces them, the
// object only once the upload completes, and nothing at all when the stream fails.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { MultipartWriter } from '../../../src/activities/pipeline/multipart-writer.ts';
import { createObjectStore, type ObjectStore } from '../../../src/activities/ports/object-store.ts';
import { ensureStack } from '../../support/stack.ts';

const MiB = 1024 * 1024;

/** `total` random bytes in chunks of 256 KiB; fails after `failAfter` bytes when given. */
function source(data: Buffer, failAfter?: number): Readable {
  let at = 0;
  return new Readable({
    read() {
      if (failAfter !== undefined && at >= failAfter) return this.destroy(new Error('source failed'));
      if (at >= data.length) return this.push(null);
      this.push(data.subarray(at, at + 256 * 1024));
      at += 256 * 1024;
    },
  });
}

describe('MultipartWriter on the stack S3 server', () => {
  let store: ObjectStore;
  const folder = `test/multipart-writer/${Date.now()}/`;

  before(async () => {
    const stack = await ensureStack();
    store = createObjectStore(stack.plan.storage.primary, stack.env);
  });

  after(async () => {
    for (const u of await store.listMultipartUploads(folder))
      await store.abortMultipartUpload(u.key, u.uploadId);
    for (const o of await store.list(folder)) await store.delete(o.key);
  });

  it('uploads part by part and completes an object with the sha256 it computed', async () => {
    const data = randomBytes(12 * MiB + 123);
    const key = `${folder}ok`;
    const writer = new MultipartWriter({
      store,
      key,
      uploadId: await store.createMultipartUpload(key),
      firstPartBytes: 5 * MiB,
    });
    await pipeline(source(data), writer);
    assert.equal(writer.completed, true);
    assert.equal(writer.sha256, createHash('sha256').update(data).digest('hex'));
    assert.equal(writer.partsUploaded, 3);
    assert.deepEqual(await store.head(key).then((h) => h?.size), data.length);
    const back = Buffer.from(await store.get(key));
    assert.ok(back.equals(data));
    assert.deepEqual(await store.listMultipartUploads(folder), []);
  });

  it('aborts the upload when the stream fails after parts were uploaded: no object, no upload', async () => {
    const key = `${folder}failed`;
    const writer = new MultipartWriter({
      store,
      key,
      uploadId: await store.createMultipartUpload(key),
      firstPartBytes: 5 * MiB,
    });
    await assert.rejects(pipeline(source(randomBytes(20 * MiB), 11 * MiB), writer), /source failed/);
    assert.ok(writer.partsUploaded >= 2, `${writer.partsUploaded} parts uploaded before the failure`);
    assert.equal(await store.head(key), undefined);
    assert.deepEqual(
      (await store.listMultipartUploads(folder)).filter((u) => u.key === key),
      [],
    );
  });

  it('never completes when the producer reports failure, even though its stream ended', async () => {
    const key = `${folder}producer-failed`;
    const writer = new MultipartWriter({
      store,
      key,
      uploadId: await store.createMultipartUpload(key),
      firstPartBytes: 5 * MiB,
      beforeComplete: () => Promise.reject(new Error('pg_basebackup exited with 1')),
    });
    await assert.rejects(pipeline(source(randomBytes(6 * MiB)), writer), /pg_basebackup exited with 1/);
    assert.equal(await store.head(key), undefined);
    assert.deepEqual(
      (await store.listMultipartUploads(folder)).filter((u) => u.key === key),
      [],
    );
  });
});
