// Retention's storage side: the inventory a plan is computed from (catalog, legal-hold markers,
// archived WAL) and the deletions, each checked against S3 Object Lock first. Deletions are
// idempotent (deleting a missing key succeeds), so a retried activity just finishes the job.
import { parseDuration } from '../domain/duration.ts';
import { LifeboatError } from '../domain/errors.ts';
import { repository } from '../domain/repository.ts';
import type { LegalHoldEvent, LockedObject, RetentionInventory } from '../domain/retention.ts';
import { parseWalFileName } from '../domain/wal.ts';
import type { Plan } from '../domain/plan.ts';
import { readCatalog } from './catalog.ts';
import type { ObjectHead, ObjectStore } from './ports/object-store.ts';
import type { StorageLocationName } from './storage.ts';

export interface RetentionDeps {
  plan: Plan;
  stores: Partial<Record<StorageLocationName, ObjectStore>>;
  /** The clock, for Object Lock retain-until dates. */
  now?: () => Date;
}

/** Why Object Lock forbids deleting an object now, or undefined when it may go. */
export function lockReason(head: ObjectHead, now: Date): string | undefined {
  if (head.legalHold) return 'S3 Object Lock legal hold';
  if (head.lock && Date.parse(head.lock.retainUntil) > now.getTime())
    return `S3 Object Lock ${head.lock.mode} retention until ${head.lock.retainUntil}`;
  return undefined;
}

/** Every legal-hold marker of a database. */
export async function readHoldEvents(store: ObjectStore, database: string): Promise<LegalHoldEvent[]> {
  const objects = (await store.list(repository.legalHoldsPrefix('', database))).filter((o) =>
    o.key.endsWith('.json'),
  );
  const events: LegalHoldEvent[] = [];
  for (const o of objects) {
    const parsed = JSON.parse(Buffer.from(await store.get(o.key)).toString('utf8')) as LegalHoldEvent;
    events.push(parsed);
  }
  return events;
}

export function createRetentionActivities(deps: RetentionDeps) {
  const store = (): ObjectStore => {
    const s = deps.stores.primary;
    if (!s) throw new LifeboatError('InvalidInput', 'the plan has no primary storage location');
    return s;
  };
  const now = () => (deps.now ? deps.now() : new Date());

  /** The keys among `keys` Object Lock protects now. */
  async function lockedAmong(keys: string[]): Promise<LockedObject[]> {
    const locked: LockedObject[] = [];
    for (const key of keys) {
      const head = await store().head(key);
      const why = head && lockReason(head, now());
      if (why) locked.push({ key, why });
    }
    return locked;
  }

  return {
    /** The catalog, legal holds and archived WAL of a database, and its backup policy. */
    async readRetentionInventory(input: { database: string }): Promise<RetentionInventory> {
      const { database } = input;
      const policy = deps.plan.backup.policies.find((p) => p.database === database);
      if (!policy)
        throw new LifeboatError('InvalidInput', `no backup policy in the plan names database "${database}"`);
      const s = store();
      const catalog = await readCatalog(s, database);
      const holdEvents = await readHoldEvents(s, database);
      const walObjects = await s.list(repository.walPrefix('', database));
      const bySegment = new Map<string, string[]>();
      for (const o of walObjects) {
        const base = o.key.slice(o.key.lastIndexOf('/') + 1);
        const file = parseWalFileName(base.split('.')[0]!);
        // Segments and their partial uploads; timeline history files are never pruned.
        if (!file || file.kind === 'history' || base.includes('.history')) continue;
        const list = bySegment.get(file.name) ?? [];
        list.push(o.key);
        bySegment.set(file.name, list);
      }
      const backupPrefix = (id: string) => repository.backupFolder('', database, id) + '/';
      return {
        database,
        policy: {
          daily: policy.retention.daily,
          weekly: policy.retention.weekly,
          monthly: policy.retention.monthly,
          yearly: policy.retention.yearly,
          minAgeMs: parseDuration(policy.retention.minAge) ?? 0,
        },
        backups: catalog.manifests.map((m) => ({
          id: m.id,
          kind: m.kind,
          parent: m.parent,
          time: m.stop.time,
          startLsn: m.start.lsn,
          stopLsn: m.stop.lsn,
          verified: m.verification.verified,
          // Only the backup's own folder: an incremental's WAL objects belong to the archive and
          // go with WAL pruning, when no kept backup needs them.
          objectKeys: m.objects.map((o) => o.key).filter((k) => k.startsWith(backupPrefix(m.id))),
        })),
        holdEvents,
        wal: [...bySegment.entries()].sort().map(([segment, keys]) => ({ segment, keys })),
        walSegmentSize: catalog.manifests[0]?.postgres.walSegmentSize ?? null,
        problems: catalog.problems.map((p) => `${p.key}: ${p.problems.join('; ')}`),
      };
    },

    /**
     * Deletes one backup: its manifest first, so the catalog never lists a half-deleted backup,
     * then its objects and anything else left under its folder (earlier attempts). Nothing is
     * deleted when Object Lock protects any of its objects.
     */
    async deleteBackup(input: {
      database: string;
      id: string;
      objectKeys: string[];
    }): Promise<{ deleted: boolean; locked: LockedObject[] }> {
      const manifestKey = repository.manifest('', input.database, input.id);
      const s = store();
      const folder = await s.list(repository.backupFolder('', input.database, input.id) + '/');
      const keys = [...new Set([...input.objectKeys, ...folder.map((o) => o.key)])];
      const locked = await lockedAmong([manifestKey, ...keys]);
      if (locked.length) return { deleted: false, locked };
      await s.delete(manifestKey);
      for (const key of keys) await s.delete(key);
      return { deleted: true, locked: [] };
    },

    /** Deletes archived WAL objects no kept backup needs; locked ones are left and reported. */
    async deleteWalObjects(input: { keys: string[] }): Promise<{ deleted: number; locked: LockedObject[] }> {
      const locked = await lockedAmong(input.keys);
      const skip = new Set(locked.map((l) => l.key));
      let deleted = 0;
      for (const key of input.keys) {
        if (skip.has(key)) continue;
        await store().delete(key);
        deleted++;
      }
      return { deleted, locked };
    },
  };
}
