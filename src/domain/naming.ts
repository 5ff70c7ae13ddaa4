// One module owns every workflow id (and, as backups arrive, every storage key). Ids derive from
// business names so that a repeated start is recognised as the same operation.

export const workflowIds = {
  /**
   * Full and incremental backups of a database share one id: with the conflict policy FAIL, two
   * backups of one database never run at once, and a new one may start once the last has closed.
   */
  backup: (database: string) => `backup-${database}`,
  /** One failover of a database at a time: the id is the lock (a second start is refused while one runs). */
  failover: (database: string) => `failover-${database}`,
  /** One WAL archiver per database, long-running: a second start finds the one that runs. */
  walArchiver: (database: string) => `wal-archiver-${database}`,
  /** One region health monitor per database, long-running: a second start finds the one that runs. */
  monitor: (database: string) => `monitor-${database}`,
  /** Restores are independent (several targets may be tried side by side); the time keeps them apart. */
  restore: (database: string, at: Date) =>
    `restore-${database}-${at
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}Z$/, 'Z')}`,
  /** One discard per restore: a second start while one runs is refused, a later one may run again. */
  discardRestore: (restoreId: string) => `discard-${restoreId}`,
  /** Drills are independent runs; the time keeps them apart and sortable (and names the report's folder). */
  drill: (database: string, at: Date) =>
    `drill-${database}-${at
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}Z$/, 'Z')}`,
  /** One retention run per database at a time: two would race to delete the same objects. */
  retention: (database: string) => `retention-${database}`,
  /** Doctor runs are independent; the time keeps them apart and sortable. */
  doctor: (plan: string, at: Date) => `doctor-${plan}-${at.toISOString().replace(/[:.]/g, '-')}`,
};

/** Key of the object the doctor writes and deletes to prove a bucket is writable. */
export function doctorProbeKey(prefix: string, runId: string): string {
  return joinKey(prefix, '.lifeboat-doctor', `${runId}.probe`);
}

export function joinKey(...parts: string[]): string {
  return parts
    .map((p) => p.replace(/^\/+|\/+$/g, ''))
    .filter(Boolean)
    .join('/');
}

/** Bucket and prefix of an `s3://bucket/prefix` URL. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!m) throw new Error(`not an s3:// URL: ${url}`);
  return { bucket: m[1]!, prefix: m[2]!.replace(/\/+$/, '') };
}

/**
 * Ids of the Temporal Schedules `lifeboat apply` owns, one per plan policy (and per database for
 * retention): stable across applies, so a second apply finds and compares them instead of adding more.
 */
export const scheduleIds = {
  backupFull: (policy: string) => `lifeboat-backup-full-${policy}`,
  backupIncremental: (policy: string) => `lifeboat-backup-incremental-${policy}`,
  retention: (database: string) => `lifeboat-retention-${database}`,
  drill: (policy: string) => `lifeboat-drill-${policy}`,
};
