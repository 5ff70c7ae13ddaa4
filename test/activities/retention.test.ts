// Retention's deletions against an in-memory store that records every call: the manifest goes
// first, Object Lock is honoured (retention until a future date, legal hold), WAL keys grouped.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRetentionActivities, lockReason } from '../../src/activities/retention.ts';
import type { ObjectHead, ObjectStore } from '../../src/activities/ports/object-store.ts';
import type { Plan } from '../../src/domain/plan.ts';
import { repository } from '../../src/domain/repository.ts';

const NOW = new Date('2026-11-22T12:00:00Z');

function memoryStore(objects: Record<string, Partial<ObjectHead>>) {
  const calls: string[] = [];
  const store = {
    bucket: 'b',
    prefix: '',
    head: (key: string) => Promise.resolve(objects[key] ? { size: 1, ...objects[key] } : undefined),
    list: (p: string) =>
      Promise.resolve(
        Object.keys(objects)
          .filter((k) => k.startsWith(p))
          .map((key) => ({ key, size: 1 })),
      ),
    delete: (key: string) => {
      calls.push(`delete ${key}`);
      delete objects[key];
      return Promise.resolve();
    },
  } as unknown as ObjectStore;
  return { store, calls, objects };
}

const activities = (store: ObjectStore) =>
  createRetentionActivities({ plan: {} as Plan, stores: { primary: store }, now: () => NOW });

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

describe('deleteBackup', () => {
  const id = 'orders-full-20261101T020000Z';
  const manifest = repository.manifest('', 'orders', id);
  const base = repository.backupObject('', 'orders', id, 'attempt-1/base.tar.zst.age');
  const stray = repository.backupObject('', 'orders', id, 'attempt-2/base.tar.zst.age');

  it('deletes the manifest first, then every object under the backup folder', async () => {
    const { store, calls } = memoryStore({ [manifest]: {}, [base]: {}, [stray]: {} });
    const r = await activities(store).deleteBackup({ database: 'orders', id, objectKeys: [base] });
    assert.deepEqual(r, { deleted: true, locked: [] });
    assert.deepEqual(calls, [`delete ${manifest}`, `delete ${base}`, `delete ${stray}`]);
  });

  it('deletes nothing of a backup one of whose objects is under Object Lock', async () => {
    const lock = { mode: 'GOVERNANCE', retainUntil: '2027-01-01T00:00:00.000Z' };
    const { store, calls } = memoryStore({ [manifest]: {}, [base]: { lock } });
    const r = await activities(store).deleteBackup({ database: 'orders', id, objectKeys: [base] });
    assert.equal(r.deleted, false);
    assert.deepEqual(
      r.locked.map((l) => l.key),
      [base],
    );
    assert.deepEqual(calls, []);
  });

  it('is idempotent: a retry after the manifest went finishes the objects', async () => {
    const { store, calls } = memoryStore({ [base]: {} });
    const r = await activities(store).deleteBackup({ database: 'orders', id, objectKeys: [base] });
    assert.equal(r.deleted, true);
    assert.ok(calls.includes(`delete ${base}`));
  });
});

describe('deleteWalObjects', () => {
  it('deletes the unlocked and reports the locked', async () => {
    const a = repository.walSegment('', 'orders', '000000010000000000000001');
    const b = repository.walSegment('', 'orders', '000000010000000000000002');
    const { store, objects } = memoryStore({ [a]: {}, [b]: { legalHold: true } });
    const r = await activities(store).deleteWalObjects({ keys: [a, b] });
    assert.equal(r.deleted, 1);
    assert.deepEqual(r.locked, [{ key: b, why: 'S3 Object Lock legal hold' }]);
    assert.deepEqual(Object.keys(objects), [b]);
  });
});
