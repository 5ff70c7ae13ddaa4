// Retention's deletions on the stack's real S3 server, in a bucket with S3 Object Lock: whole
// backups go, locked objects (GOVERNANCE retention, legal hold) are skipped and reported.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createRetentionActivities, lockReason } from '../../src/activities/retention.ts';
import { createObjectStore, type ObjectStore } from '../../src/activities/ports/object-store.ts';
import { stackS3Client } from '../../src/stack/aws-clients.ts';
import { deleteLockedBucket } from '../support/lock-bucket.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import type { Plan } from '../../src/domain/plan.ts';
import { repository } from '../../src/domain/repository.ts';

const NOW = new Date('2026-11-22T12:00:00Z');

// A bucket created with S3 Object Lock on the stack's real S3 server (SeaweedFS), so locks,
// legal holds and deletions are the server's, not a stand-in's.
let stack: TestStack;
let s3: S3Client;
let store: ObjectStore;
const bucket = `lifeboat-lock-test-${Date.now().toString(36)}`;
// S3 keeps retention dates to the second.
const future = new Date(Math.ceil((Date.now() + 3_600_000) / 1000) * 1000);

before(async () => {
  stack = await ensureStack();
  s3 = stackS3Client(stack.layout, stack.secrets);
  await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
  store = createObjectStore(
    {
      url: `s3://${bucket}`,
      endpoint: stack.layout.s3.endpoint,
      region: stack.layout.s3.region,
      forcePathStyle: true,
      caFile: stack.layout.tls.caCert,
      accessKeyIdEnv: 'LIFEBOAT_S3_ACCESS_KEY_ID',
      secretAccessKeyEnv: 'LIFEBOAT_S3_SECRET_ACCESS_KEY',
    },
    stack.secrets,
  );
});

after(async () => {
  await deleteLockedBucket(s3, bucket);
  s3.destroy();
});

const put = (key: string, lock: 'none' | 'governance' | 'legal-hold' = 'none') =>
  s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: key,
      ...(lock === 'governance' ? { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: future } : {}),
      ...(lock === 'legal-hold' ? { ObjectLockLegalHoldStatus: 'ON' } : {}),
    }),
  );
const present = async (prefix: string) => (await store.list(prefix)).map((o) => o.key).sort();

const activities = () =>
  createRetentionActivities({ plan: {} as Plan, stores: { primary: store }, now: () => new Date() });

describe('lockReason', () => {
  const cases = [
    { name: 'no lock: may go', head: { size: 1 }, expect: undefined },
    {
      name: 'retention in the future: locked',
      head: { size: 1, lock: { mode: 'COMPLIANCE', retainUntil: '2027-01-01T00:00:00.000Z' } },
      expect: 'S3 Object Lock COMPLIANCE retention until 2027-01-01T00:00:00.000Z',
    },
    {
      name: 'retention expired: may go',
      head: { size: 1, lock: { mode: 'GOVERNANCE', retainUntil: '2026-01-01T00:00:00.000Z' } },
      expect: undefined,
    },
    {
      name: 'S3 legal hold: locked',
      head: { size: 1, legalHold: true },
      expect: 'S3 Object Lock legal hold',
    },
  ];
  for (const c of cases) it(c.name, () => assert.equal(lockReason(c.head, NOW), c.expect));
});

describe('deleteBackup on the real S3 server', () => {
  const folder = (id: string) => repository.backupFolder('', 'orders', id);
  const keys = (id: string) => ({
    manifest: repository.manifest('', 'orders', id),
    base: repository.backupObject('', 'orders', id, 'attempt-1/base.tar.zst.age'),
    stray: repository.backupObject('', 'orders', id, 'attempt-2/base.tar.zst.age'),
  });

  it('deletes the manifest and every object under the backup folder', async () => {
    const id = 'orders-full-20261101T020000Z';
    const k = keys(id);
    await Promise.all([put(k.manifest), put(k.base), put(k.stray)]);
    const r = await activities().deleteBackup({ database: 'orders', id, objectKeys: [k.base] });
    assert.deepEqual(r, { deleted: true, locked: [], removed: 2 });
    assert.deepEqual(await present(folder(id)), []);
    assert.deepEqual(await present(k.manifest), []);
  });

  it('deletes nothing of a backup one of whose objects is under GOVERNANCE retention', async () => {
    const id = 'orders-full-20261102T020000Z';
    const k = keys(id);
    await Promise.all([put(k.manifest), put(k.base, 'governance')]);
    const r = await activities().deleteBackup({ database: 'orders', id, objectKeys: [k.base] });
    assert.equal(r.deleted, false);
    assert.deepEqual(
      r.locked.map((l) => [l.key, l.why]),
      [[k.base, `S3 Object Lock GOVERNANCE retention until ${future.toISOString()}`]],
    );
    assert.deepEqual(await present(k.manifest), [k.manifest], 'the manifest stays: the backup stays listed');
    assert.deepEqual(await present(folder(id)), [k.base]);
  });

  it('is idempotent: a retry after the manifest went finishes the objects', async () => {
    const id = 'orders-full-20261103T020000Z';
    const k = keys(id);
    await put(k.base);
    const r = await activities().deleteBackup({ database: 'orders', id, objectKeys: [k.base] });
    assert.equal(r.deleted, true);
    assert.deepEqual(await present(folder(id)), []);
  });
});

describe('deleteWalObjects on the real S3 server', () => {
  it('deletes the unlocked and reports the ones under legal hold', async () => {
    const a = repository.walSegment('', 'orders', '000000010000000000000001');
    const b = repository.walSegment('', 'orders', '000000010000000000000002');
    await Promise.all([put(a), put(b, 'legal-hold')]);
    const r = await activities().deleteWalObjects({ keys: [a, b] });
    assert.equal(r.deleted, 1);
    assert.deepEqual(r.locked, [{ key: b, why: 'S3 Object Lock legal hold' }]);
    assert.deepEqual(await present(repository.walPrefix('', 'orders')), [b]);
  });
});
