// Retention across the whole repository: both storage locations, the Kubernetes objects and
// snapshot indexes, and superseded WAL partial uploads. Pure, like the GFS plan it applies, so a
// dry run and the real run decide alike and the workflow that calls it stays deterministic.
import type { LockedObject, RetentionBackup } from './retention.ts';

export type LocationName = 'primary' | 'secondary';

/** One backup as stored at one location: its manifest there, and its objects there. */
export interface StoredBackup {
  id: string;
  /** Keys under the backup's own folder that the manifest lists. */
  objectKeys: string[];
  /** The key of its Kubernetes snapshot index (from its manifest), when it exported objects. */
  snapshot?: string;
}

/** What one storage location holds of a database. */
export interface LocationInventory {
  location: LocationName;
  /** `s3://bucket/prefix`, for reports. */
  url: string;
  backups: StoredBackup[];
  /** Archived WAL by segment name: the complete object and every partial upload of it. */
  wal: { segment: string; keys: string[] }[];
  /** Manifests here that could not be read: reported; WAL is then pruned nowhere. */
  problems: string[];
}

/** What retention did, or would do, at one location. */
export interface LocationOutcome {
  location: LocationName;
  url: string;
  /** Backups of the plan's deleted list stored here: what goes here (would go, in a dry run). */
  expired: string[];
  deleted: string[];
  /** Left here because Object Lock protects an object of theirs here, or a backup left here needs them. */
  skipped: { id: string; locked: LockedObject[] }[];
  wal: { expired: number; deleted: number; locked: LockedObject[]; keepFromLsn: string | null };
  /** Partial uploads of segments whose complete object is stored here. */
  partials: { superseded: number; deleted: number; locked: LockedObject[] };
  kubernetes: KubernetesSweep[];
  /** Expired backups without a manifest here (an unfinished copy) whose objects here were deleted. */
  incomplete: string[];
}

/** A mark-and-sweep of one cluster's content-addressed objects at one location. */
export interface KubernetesSweep {
  cluster: string;
  /** Snapshot indexes that remain (in a dry run: would remain), every one of them read. */
  snapshots: number;
  objects: number;
  /** Objects no remaining snapshot index names. */
  unreferenced: number;
  /** Of those, younger than the grace age: left, a running backup may be about to name them. */
  young: number;
  /** Deleted now (0 in a dry run); `unreferenced - young` would go in a dry run. */
  deleted: number;
  /** Snapshot indexes deleted with their backups (counted by the workflow). */
  snapshotsDeleted: number;
  /**
   * Indexes of backups that never got a manifest (the run failed or was terminated after its
   * export), older than the grace age: they name nothing, and are deleted (listed in a dry run).
   */
  orphanSnapshots?: string[];
  locked: LockedObject[];
  /** Why the sweep did not run or what it found afterwards (an index it could not read). */
  problems: string[];
}

/** Every backup in either location, once: the primary's manifest when both hold it. */
export function unionBackups<T extends RetentionBackup>(primary: T[], secondary: T[]): T[] {
  const byId = new Map<string, T>();
  for (const b of [...secondary, ...primary]) byId.set(b.id, b);
  return [...byId.values()].sort(
    (a, b) => Date.parse(a.time) - Date.parse(b.time) || a.id.localeCompare(b.id),
  );
}

/** The file name of a key: what follows its last slash. */
const baseName = (key: string) => key.slice(key.lastIndexOf('/') + 1);

/** Whether a WAL key is a partial upload (`<segment>.partial.<lsn>.zst.age`). */
export function isPartialKey(key: string): boolean {
  return /^[0-9A-F]{24}\.partial\./.test(baseName(key));
}

/**
 * Partial uploads made redundant by their complete segment stored beside them: the complete
 * object holds every byte any partial of it held. A partial whose complete segment is not stored
 * at this location is never returned: it may be the newest WAL there is.
 */
export function supersededPartials(wal: { segment: string; keys: string[] }[]): string[] {
  return wal.flatMap((w) => {
    const complete = w.keys.some((k) => baseName(k) === `${w.segment}.zst.age`);
    return complete ? w.keys.filter(isPartialKey) : [];
  });
}

/**
 * The sweep's decision: of the stored objects, those no remaining index names, split into the
 * ones old enough to go and the ones younger than the grace age (a backup still running may have
 * uploaded them and not yet written the index that names them).
 */
export function sweepCandidates(
  objects: { key: string; lastModified?: string }[],
  referenced: Set<string>,
  nowMs: number,
  graceMs: number,
): { old: string[]; young: string[] } {
  const old: string[] = [];
  const young: string[] = [];
  for (const o of objects) {
    if (referenced.has(o.key)) continue;
    // No modification time means we cannot tell its age: treat it as young.
    const age = o.lastModified ? nowMs - Date.parse(o.lastModified) : -1;
    (age >= graceMs ? old : young).push(o.key);
  }
  return { old, young };
}
