// Object Lock set as objects are written (storage.<location>.objectLock), on the stack's real S3
// server: a single PUT and a multipart upload both come back locked until write time + retain; a
// bucket without Object Lock is named as the problem by doctor's storage check and the backup's.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { createObjectStore } from '../../src/activities/ports/object-store.ts';
import { lockReason } from '../../src/activities/retention.ts';
import { createStorageActivities } from '../../src/activities/storage.ts';
import type { StorageLocation } from '../../src/domain/plan.ts';
import { stackS3Client } from '../../src/stack/aws-clients.ts';
import { deleteLockedBucket } from '../support/lock-bucket.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';

const DAY = 86_400_000;
let stack: TestStack;
let s3: S3Client;
const bucket = `lifeboat-lock-write-${Date.now().toString(36)}`;
const location = (b: string, objectLock?: StorageLocation['objectLock']): StorageLocation => ({
  url: `s3://${b}/backups`,
  endpoint: stack.layout.s3.endpoint,
  region: stack.layout.s3.region,
  forcePathStyle: true,
  caFile: stack.layout.tls.caCert,
  accessKeyIdEnv: 'LIFEBOAT_S3_ACCESS_KEY_ID',
  secretAccessKeyEnv: 'LIFEBOAT_S3_SECRET_ACCESS_KEY',
  ...(objectLock ? { objectLock } : {}),
});

before(async () => {
  stack = await ensureStack();
  s3 = stackS3Client(stack.layout, stack.secrets);
  await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
});

after(async () => {
  await deleteLockedBucket(s3, bucket);
  s3.destroy();
});

describe('Object Lock at write', () => {
  it('a PUT and a multipart upload are locked until write time + retain; without objectLock, not locked', async () => {
    const store = createObjectStore(location(bucket, { mode: 'GOVERNANCE', retain: '2d' }), stack.secrets);
    assert.equal(await store.objectLockProblem(), undefined);
    const before = Date.now();
    await store.put('databases/orders/wal/small.json', '{"a":1}');
    const uploadId = await store.createMultipartUpload('databases/orders/backups/b1/base.tar.zst.age');
    const etag = await store.uploadPart(
      'databases/orders/backups/b1/base.tar.zst.age',
      uploadId,
      1,
      Buffer.alloc(1024, 7),
    );
    await store.completeMultipartUpload('databases/orders/backups/b1/base.tar.zst.age', uploadId, [
      { partNumber: 1, etag },
    ]);
    const afterWrites = Date.now();
    for (const key of ['databases/orders/wal/small.json', 'databases/orders/backups/b1/base.tar.zst.age']) {
      const head = await store.head(key);
      assert.equal(head?.lock?.mode, 'GOVERNANCE', `${key}: ${JSON.stringify(head)}`);
      const until = Date.parse(head.lock.retainUntil);
      // S3 keeps retention dates to the second.
      assert.ok(
        until >= before + 2 * DAY - 1000 && until <= afterWrites + 2 * DAY + 1000,
        head.lock.retainUntil,
      );
      // Retention sees it as locked, and will not try to delete it before then.
      assert.match(lockReason(head, new Date(afterWrites + DAY)) ?? '', /GOVERNANCE retention until/);
    }

    const unlocked = createObjectStore(location(bucket), stack.secrets);
    await unlocked.put('databases/orders/wal/plain.json', '{}');
    assert.equal((await unlocked.head('databases/orders/wal/plain.json'))?.lock, undefined);
  });

  it('a bucket without Object Lock is named as the problem: doctor fails the storage check', async () => {
    const plain = stack.plan.storage.primary.url.replace(/^s3:\/\//, '').split('/')[0]!;
    const store = createObjectStore(location(plain, { mode: 'COMPLIANCE', retain: '30d' }), stack.secrets);
    const problem = await store.objectLockProblem();
    assert.match(
      problem ?? '',
      new RegExp(`Object Lock \\(COMPLIANCE, 30d\\) but bucket ${plain} has no Object Lock enabled`),
    );
    const finding = await createStorageActivities({ stores: { primary: store } }).checkStorage({
      location: 'primary',
      probeId: 'lock-test',
    });
    assert.equal(finding.ok, false);
    assert.equal(finding.detail, problem);
  });
});
