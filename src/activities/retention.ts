// Retention's storage side: the inventory a plan is computed from (catalog, legal-hold markers,
// archived WAL) and the deletions, each checked against S3 Object Lock first. Deletions are
// idempotent (deleting a missing key succeeds), so a retried activity just finishes the job.
import { Context } from '@temporalio/activity';
import { parseDuration } from '../domain/duration.ts';
import { LifeboatError } from '../domain/errors.ts';
import { kubernetesSelection, parseSnapshot, snapshotKeys } from '../domain/kubernetes-snapshot.ts';
import type { BackupManifest } from '../domain/manifest.ts';
import { repository } from '../domain/repository.ts';
import type { LegalHoldEvent, LockedObject, RetentionInventory } from '../domain/retention.ts';
import {
  sweepCandidates,
  unionBackups,
  type KubernetesSweep,
  type LocationInventory,
} from '../domain/retention-repository.ts';
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

/** The same marker read from both locations, once. */
function dedupeHoldEvents(events: LegalHoldEvent[]): LegalHoldEvent[] {
  const seen = new Map<string, LegalHoldEvent>();
  for (const e of events) seen.set(`${e.backupId} ${e.at} ${e.action}`, e);
  return [...seen.values()];
}

export function createRetentionActivities(deps: RetentionDeps) {
  const storeAt = (location: StorageLocationName = 'primary'): ObjectStore => {
    const s = deps.stores[location];
    if (!s) throw new LifeboatError('InvalidInput', `the plan has no ${location} storage location`);
    return s;
  };
  const now = () => (deps.now ? deps.now() : new Date());
  /**
   * The manifest keys of a database at either location (the primary may have lost one the
   * secondary still lists), listed once per database however many indexes ask.
   */
  const manifestKeysOf = async (cache: Map<string, Set<string>>, database: string) => {
    let keys = cache.get(database);
    if (!keys) {
      keys = new Set();
      for (const store of [deps.stores.primary, deps.stores.secondary])
        if (store)
          for (const o of await store.list(repository.manifestsPrefix('', database))) keys.add(o.key);
      cache.set(database, keys);
    }
    return keys;
  };
  const urlOf = (s: ObjectStore) => `s3://${s.bucket}${s.prefix ? `/${s.prefix}` : ''}`;

  /** The keys among `keys` Object Lock protects now at a location. */
  async function lockedAmong(keys: string[], location?: StorageLocationName): Promise<LockedObject[]> {
    const locked: LockedObject[] = [];
    for (const key of keys) {
      const head = await storeAt(location).head(key);
      const why = head && lockReason(head, now());
      if (why) locked.push({ key, why, ...(location ? { location } : {}) });
    }
    return locked;
  }

  /** What one location holds of a database: manifests (and what they name there), WAL by segment. */
  async function readLocation(location: StorageLocationName, database: string) {
    const s = storeAt(location);
    const catalog = await readCatalog(s, database);
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
    // Only the backup's own folder: an incremental's WAL objects belong to the archive and go
    // with WAL pruning, when no kept backup needs them.
    const ownObjects = (m: BackupManifest) =>
      m.objects.map((o) => o.key).filter((k) => k.startsWith(backupPrefix(m.id)));
    const inventory: LocationInventory = {
      location,
      url: urlOf(s),
      backups: catalog.manifests.map((m) => ({
        id: m.id,
        objectKeys: ownObjects(m),
        ...(m.kubernetes ? { snapshot: m.kubernetes.snapshot } : {}),
      })),
      wal: [...bySegment.entries()].sort().map(([segment, keys]) => ({ segment, keys })),
      problems: catalog.problems.map((p) => `${location} ${p.key}: ${p.problems.join('; ')}`),
    };
    return { catalog, inventory, ownObjects };
  }

  return {
    /** The catalog, legal holds and archived WAL of a database, and its backup policy. */
    async readRetentionInventory(input: { database: string }): Promise<RetentionInventory> {
      const { database } = input;
      const policy = deps.plan.backup.policies.find((p) => p.database === database);
      if (!policy)
        throw new LifeboatError('InvalidInput', `no backup policy in the plan names database "${database}"`);
      const primary = await readLocation('primary', database);
      const secondary = deps.stores.secondary ? await readLocation('secondary', database) : undefined;
      // Holds from both locations: a marker only the secondary still has still holds.
      const holdEvents = dedupeHoldEvents([
        ...(await readHoldEvents(storeAt('primary'), database)),
        ...(deps.stores.secondary ? await readHoldEvents(storeAt('secondary'), database) : []),
      ]);
      const describe = (m: BackupManifest, own: (m: BackupManifest) => string[]) => ({
        id: m.id,
        kind: m.kind,
        parent: m.parent,
        time: m.stop.time,
        startLsn: m.start.lsn,
        stopLsn: m.stop.lsn,
        verified: m.verification.verified,
        objectKeys: own(m),
      });
      // Decided from the union: a backup only the secondary still holds is judged like any other,
      // never taken for deleted because the primary lost it.
      const backups = unionBackups(
        primary.catalog.manifests.map((m) => describe(m, primary.ownObjects)),
        (secondary?.catalog.manifests ?? []).map((m) => describe(m, secondary!.ownObjects)),
      );
      const manifests = [...primary.catalog.manifests, ...(secondary?.catalog.manifests ?? [])];
      const selection = kubernetesSelection(deps.plan, database);
      const clusters = [
        ...new Set([
          ...manifests.flatMap((m) => (m.kubernetes ? [m.kubernetes.cluster] : [])),
          ...(selection ? [selection.region] : []),
        ]),
      ].sort();
      return {
        database,
        policy: {
          daily: policy.retention.daily,
          weekly: policy.retention.weekly,
          monthly: policy.retention.monthly,
          yearly: policy.retention.yearly,
          minAgeMs: parseDuration(policy.retention.minAge) ?? 0,
        },
        backups,
        holdEvents,
        wal: primary.inventory.wal,
        walSegmentSize: manifests[0]?.postgres.walSegmentSize ?? null,
        problems: [...primary.inventory.problems, ...(secondary?.inventory.problems ?? [])].map((p) =>
          secondary ? p : p.replace(/^primary /, ''),
        ),
        locations: [primary.inventory, ...(secondary ? [secondary.inventory] : [])],
        clusters,
      };
    },

    /**
     * Deletes one backup at a location: its manifest first, so the catalog never lists a
     * half-deleted backup, then its objects and anything else left under its folder (earlier
     * attempts), then its Kubernetes snapshot index. Nothing is deleted when Object Lock protects
     * any of them there.
     */
    async deleteBackup(input: {
      database: string;
      id: string;
      objectKeys: string[];
      location?: StorageLocationName;
      snapshot?: string;
    }): Promise<{ deleted: boolean; locked: LockedObject[]; snapshot?: string; removed: number }> {
      const manifestKey = repository.manifest('', input.database, input.id);
      const s = storeAt(input.location);
      const folder = await s.list(repository.backupFolder('', input.database, input.id) + '/');
      const keys = [...new Set([...input.objectKeys, ...folder.map((o) => o.key)])];
      const snapshot = input.snapshot && (await s.head(input.snapshot)) ? [input.snapshot] : [];
      const locked = await lockedAmong([manifestKey, ...keys, ...snapshot], input.location);
      if (locked.length) return { deleted: false, locked, removed: 0 };
      await s.delete(manifestKey);
      for (const key of [...keys, ...snapshot]) await s.delete(key);
      // The index only where it was stored (the second copy does not copy indexes today).
      return {
        deleted: true,
        locked: [],
        // What was stored under its folder and its index: 0 when nothing of it was here.
        removed: folder.length + snapshot.length,
        ...(snapshot.length ? { snapshot: snapshot[0] } : {}),
      };
    },

    /** Deletes archived WAL objects no kept backup needs; locked ones are left and reported. */
    async deleteWalObjects(input: {
      keys: string[];
      location?: StorageLocationName;
    }): Promise<{ deleted: number; locked: LockedObject[] }> {
      const locked = await lockedAmong(input.keys, input.location);
      const skip = new Set(locked.map((l) => l.key));
      let deleted = 0;
      for (const key of input.keys) {
        if (skip.has(key)) continue;
        await storeAt(input.location).delete(key);
        deleted++;
      }
      return { deleted, locked };
    },

    /**
     * Mark and sweep of one cluster's Kubernetes objects at a location: every snapshot index that
     * remains (of every database: clusters are shared) is read, and an object none of them names
     * is deleted once older than the grace age. An index that cannot be read stops the sweep (it
     * may name anything). In a dry run, `deleting` are the indexes the run would delete and
     * nothing is deleted. Afterwards the indexes are listed again: one written meanwhile that
     * names a swept object (a backup that found it stored just before it went) is reported.
     */
    async sweepKubernetesObjects(input: {
      location: StorageLocationName;
      cluster: string;
      graceMs: number;
      dryRun: boolean;
      deleting?: string[];
    }): Promise<KubernetesSweep> {
      const s = storeAt(input.location);
      const sweep: KubernetesSweep = {
        cluster: input.cluster,
        snapshots: 0,
        objects: 0,
        unreferenced: 0,
        young: 0,
        deleted: 0,
        snapshotsDeleted: 0,
        locked: [],
        problems: [],
      };
      const snapshotsPrefix = repository.clusterSnapshotsPrefix('', input.cluster);
      const objectsPrefix = repository.clusterObjectsPrefix('', input.cluster);
      const deleting = new Set(input.deleting ?? []);
      const nowMs = now().getTime();
      // A large repository takes a while: say how far the sweep is (the workflow waits on this).
      const beat = (phase: string) => Context.current().heartbeat({ phase, ...sweep });
      const orphans: string[] = [];
      const manifestKeys = new Map<string, Set<string>>();
      const readIndexes = async (keys: string[], modified = new Map<string, number>()) => {
        const referenced = new Set<string>();
        for (const key of keys) {
          beat('reading snapshot indexes');
          const parsed = parseSnapshot(Buffer.from(await s.get(key)).toString('utf8'));
          if (!parsed.ok) {
            sweep.problems.push(`${input.location} ${key}: ${parsed.problems.join('; ')}: not swept`);
            continue;
          }
          // The index of a backup that never got its manifest at any location (and never will,
          // past the grace age: no backup runs that long) keeps nothing alive.
          const { database, id } = parsed.snapshot;
          const age = nowMs - (modified.get(key) ?? nowMs);
          if (
            age >= input.graceMs &&
            !(await manifestKeysOf(manifestKeys, database)).has(repository.manifest('', database, id))
          ) {
            orphans.push(key);
            continue;
          }
          for (const k of snapshotKeys(parsed.snapshot)) referenced.add(k);
        }
        return referenced;
      };
      const listedIndexes = (await s.list(snapshotsPrefix)).filter((o) => o.key.endsWith('.json'));
      const allIndexKeys = listedIndexes.map((o) => o.key);
      const indexKeys = allIndexKeys.filter((k) => !deleting.has(k));
      // Objects are listed after the indexes: one uploaded in between is young, so it stays.
      const referenced = await readIndexes(
        indexKeys,
        new Map(listedIndexes.flatMap((o) => (o.lastModified ? [[o.key, o.lastModified.getTime()]] : []))),
      );
      if (orphans.length) sweep.orphanSnapshots = orphans;
      sweep.snapshots = indexKeys.length - orphans.length;
      // In a dry run: the indexes the run would delete, of those stored here.
      sweep.snapshotsDeleted = allIndexKeys.filter((k) => deleting.has(k)).length;
      const objects = await s.list(objectsPrefix);
      sweep.objects = objects.length;
      if (sweep.problems.length) return sweep;
      const { old, young } = sweepCandidates(
        objects.map((o) => ({ key: o.key, lastModified: o.lastModified?.toISOString() })),
        referenced,
        nowMs,
        input.graceMs,
      );
      sweep.unreferenced = old.length + young.length;
      sweep.young = young.length;
      if (input.dryRun || (old.length === 0 && orphans.length === 0)) return sweep;
      sweep.locked = await lockedAmong([...old, ...orphans], input.location);
      const skip = new Set(sweep.locked.map((l) => l.key));
      const swept = new Set<string>();
      for (const key of old) {
        if (skip.has(key)) continue;
        beat('deleting unreferenced objects');
        await s.delete(key);
        swept.add(key);
      }
      sweep.deleted = swept.size;
      // The orphan indexes last: were the sweep cut short, they would still keep nothing alive.
      for (const key of orphans) if (!skip.has(key)) await s.delete(key);
      const seen = new Set(indexKeys);
      const late = (await s.list(snapshotsPrefix))
        .map((o) => o.key)
        .filter((k) => k.endsWith('.json') && !seen.has(k));
      for (const key of late) {
        const gone = [...(await readIndexes([key]))].filter((k) => swept.has(k));
        if (gone.length)
          sweep.problems.push(
            `${input.location} ${key} was written during the sweep and names ${gone.length} object(s) it deleted (${gone.join(', ')}): that backup's Kubernetes export is incomplete; the next backup stores them again`,
          );
      }
      return sweep;
    },
  };
}
