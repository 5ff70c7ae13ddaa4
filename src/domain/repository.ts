// The repository layout: every key Lifeboat writes to storage, in one place. Objects are written
// once under keys that name them and never overwritten; the catalog is derived by listing
// manifests. Data objects are tar/zstd/age; manifests are plain JSON (no secrets, so the catalog
// can be read without the decryption key).
import { joinKey } from './naming.ts';
import type { Plan } from './plan.ts';

/** Backup ids sort by time: `<database>-<kind>-<yyyymmddThhmmssZ>`. */
export function backupId(database: string, kind: 'full' | 'incremental', at: Date): string {
  return `${database}-${kind}-${compactTime(at)}`;
}

export function compactTime(at: Date): string {
  return at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

/** The base backup of a full backup: PostgreSQL's tar (backup_manifest and WAL inside), zstd, age. */
export const BASE_BACKUP_FILE = 'base.tar.zst.age';

export const repository = {
  databaseRoot: (prefix: string, database: string) => joinKey(prefix, 'databases', database),
  /** The database a key (relative to the location's prefix) belongs to: its backups, WAL, drills. */
  databaseOfKey: (key: string): string | undefined => /^(?:databases|drills)\/([^/]+)\//.exec(key)?.[1],

  /** One folder per base backup; its manifest lives apart so that listing manifests lists backups. */
  backupFolder: (prefix: string, database: string, id: string) =>
    joinKey(prefix, 'databases', database, 'backups', id),
  backupObject: (prefix: string, database: string, id: string, file: string) =>
    joinKey(prefix, 'databases', database, 'backups', id, file),
  /**
   * An object written by one attempt of a backup (the activity's attempt number): a retry after a
   * crash writes under its own folder, so it never overwrites what an earlier attempt may have
   * completed; the workflow deletes every other attempt's objects before the manifest is written.
   */
  backupAttemptObject: (prefix: string, database: string, id: string, attempt: number, file: string) =>
    joinKey(prefix, 'databases', database, 'backups', id, `attempt-${attempt}`, file),
  manifestsPrefix: (prefix: string, database: string) =>
    joinKey(prefix, 'databases', database, 'manifests') + '/',
  /** Written last: a backup without a manifest is incomplete by definition. */
  manifest: (prefix: string, database: string, id: string) =>
    joinKey(prefix, 'databases', database, 'manifests', `${id}.json`),

  /** Legal-hold markers of a database, one folder per backup. */
  legalHoldsPrefix: (prefix: string, database: string) =>
    joinKey(prefix, 'databases', database, 'holds') + '/',
  /** One write-once marker per hold or release: the latest decides (releasing never edits the hold). */
  legalHoldEvent: (prefix: string, database: string, id: string, at: Date, action: 'hold' | 'release') =>
    joinKey(prefix, 'databases', database, 'holds', id, `${compactTime(at)}-${action}.json`),

  walPrefix: (prefix: string, database: string) => joinKey(prefix, 'databases', database, 'wal') + '/',
  /** A completed WAL segment, e.g. 000000010000000000000003. */
  walSegment: (prefix: string, database: string, segment: string) =>
    joinKey(prefix, 'databases', database, 'wal', segment.slice(0, 8), `${segment}.zst.age`),
  /** The partial segment as of an LSN: each upload is a new object, never a rewrite. */
  walPartial: (prefix: string, database: string, segment: string, upToLsn: string) =>
    joinKey(
      prefix,
      'databases',
      database,
      'wal',
      segment.slice(0, 8),
      `${segment}.partial.${upToLsn.replace('/', '-')}.zst.age`,
    ),
  timelineHistory: (prefix: string, database: string, timeline: number) =>
    joinKey(
      prefix,
      'databases',
      database,
      'wal',
      'history',
      `${timeline.toString(16).toUpperCase().padStart(8, '0')}.history.age`,
    ),

  /**
   * Kubernetes objects, content-addressed by a hex digest of their normalised JSON: a keyed hash
   * (HMAC-SHA256) since snapshot v2, the plain sha256 in v1 snapshots.
   */
  clusterObject: (prefix: string, cluster: string, digest: string) =>
    joinKey(prefix, 'clusters', cluster, 'objects', digest.slice(0, 2), `${digest}.json.zst.age`),
  clusterObjectsPrefix: (prefix: string, cluster: string) =>
    joinKey(prefix, 'clusters', cluster, 'objects') + '/',
  clusterSnapshotsPrefix: (prefix: string, cluster: string) =>
    joinKey(prefix, 'clusters', cluster, 'snapshots') + '/',
  clusterSnapshot: (prefix: string, cluster: string, id: string) =>
    joinKey(prefix, 'clusters', cluster, 'snapshots', `${id}.json`),

  drillReport: (prefix: string, database: string, drillId: string, file: string) =>
    joinKey(prefix, 'drills', database, drillId, file),
  /** The audit records of runs started in one month (at's year and month, UTC). */
  auditMonth: (prefix: string, at: Date) =>
    joinKey(prefix, 'audit', at.toISOString().slice(0, 4), at.toISOString().slice(5, 7)),
  /**
   * One run's audit record. A workflow id is reused (failover-orders is a lock; continue-as-new
   * keeps it) but a run id never is, so no two runs share a key; the start time first sorts a
   * month's listing by time.
   */
  auditRecord: (prefix: string, at: Date, workflowId: string, runId: string) =>
    joinKey(
      prefix,
      'audit',
      at.toISOString().slice(0, 4),
      at.toISOString().slice(5, 7),
      `${compactTime(at)}-${workflowId.replace(/[/\\]/g, '_')}-${runId}.json`,
    ),
};

/**
 * The storage class the plan's backup policies give an object, by its key: a policy's
 * storageClass covers every object of its database (at every location); other keys get none here
 * (the location's own storageClass then applies).
 */
export function policyStorageClass(plan: Plan): (key: string) => string | undefined {
  const byDatabase = new Map<string, string>();
  for (const p of plan.backup.policies) if (p.storageClass) byDatabase.set(p.database, p.storageClass);
  return (key) => {
    const database = repository.databaseOfKey(key);
    return database === undefined ? undefined : byDatabase.get(database);
  };
}
