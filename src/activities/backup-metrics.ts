// Backup metrics per database and kind on the worker's Prometheus endpoint. They use the Temporal
// runtime's meter (the registry `--metrics-address` serves) rather than an activity's meter, so
// a series set by an activity and the same series refreshed by the worker's timer carry the same
// labels: {database, kind} (and `type` for failures), no activity_type/task_queue.
import type { MetricCounter, MetricGauge, MetricMeter } from '@temporalio/common';
import type { BackupManifest } from '../domain/manifest.ts';
import { ManifestCache } from './manifest-cache.ts';
import type { ObjectStore } from './ports/object-store.ts';

export type BackupKind = BackupManifest['kind'];
export const BACKUP_KINDS: readonly BackupKind[] = ['full', 'incremental'];

/** Workflow types whose failed activities count as failures of a backup of that kind. */
export const BACKUP_WORKFLOW_KINDS: Record<string, BackupKind> = {
  fullBackupWorkflow: 'full',
  incrementalBackupWorkflow: 'incremental',
};

interface Instruments {
  duration: MetricGauge;
  storedBytes: MetricGauge;
  succeeded: MetricCounter;
  failed: MetricCounter;
  newestVerified: MetricGauge;
  newestVerifiedAge: MetricGauge;
}

export class BackupMetrics {
  private readonly m: Instruments;
  /** Newest verified backup time (ms) per `database\0kind`, for the age gauge. */
  private readonly newest = new Map<string, number>();
  /** What the catalog held at the last refresh (and manifests written since): only new keys are read. */
  private readonly manifests = new ManifestCache();

  constructor(meter: MetricMeter) {
    this.m = {
      duration: meter.createGauge(
        'lifeboat_backup_duration_seconds',
        'float',
        's',
        'last backup: from its start to its verification (manifest timings.totalMs)',
      ),
      storedBytes: meter.createGauge(
        'lifeboat_backup_stored_bytes',
        'int',
        'By',
        'last backup: bytes stored (compressed and encrypted; WAL segments for an incremental)',
      ),
      succeeded: meter.createCounter(
        'lifeboat_backup_succeeded',
        'backups',
        'backups whose manifest was written',
      ),
      failed: meter.createCounter(
        'lifeboat_backup_failed',
        'failures',
        'failed activity attempts of backup runs, by error type (a retried step counts per attempt)',
      ),
      newestVerified: meter.createGauge(
        'lifeboat_backup_newest_verified_timestamp_seconds',
        'float',
        's',
        'verification time of the newest verified backup (Unix seconds)',
      ),
      newestVerifiedAge: meter.createGauge(
        'lifeboat_backup_newest_verified_age_seconds',
        'float',
        's',
        'age of the newest verified backup, refreshed by the worker every few seconds',
      ),
    };
  }

  /** A backup completed: its manifest (the source of every figure) was written. */
  succeeded(manifest: BackupManifest): void {
    this.m.succeeded.add(1, { database: manifest.database, kind: manifest.kind });
    this.manifests.note(manifest);
    this.last(manifest);
  }

  failed(database: string, kind: BackupKind, type: string): void {
    this.m.failed.add(1, { database, kind, type });
  }

  /**
   * Sets the gauges from the catalog: after a worker restart the last backup's figures and the
   * newest verified backup are what storage says, not absent until the next backup; a backup
   * another worker took shows up, and a deleted (pruned) one leaves the figures. Each refresh
   * reads only the manifests it has not read before.
   */
  async readCatalog(store: ObjectStore, databases: string[]): Promise<void> {
    for (const database of databases) {
      const manifests = await this.manifests.refresh(store, database);
      for (const kind of BACKUP_KINDS) {
        const ofKind = manifests.filter((m) => m.kind === kind);
        const newest = ofKind.at(-1);
        if (newest) this.last(newest);
        const verified = ofKind
          .filter((m) => m.verification.verified)
          .reduce<BackupManifest | undefined>(
            (a, m) => (!a || Date.parse(m.verification.at) >= Date.parse(a.verification.at) ? m : a),
            undefined,
          );
        // The catalog is the truth here: a newest verified backup since deleted may lower the time.
        if (verified) this.verified(database, kind, verified.verification.at, true);
        // The gauges have no removal: with no verified backup left, the age stops being refreshed.
        else this.newest.delete(`${database}\0${kind}`);
      }
    }
  }

  /** Sets every age gauge from the remembered verification times. */
  refreshAges(now = Date.now()): void {
    for (const [key, at] of this.newest) {
      const [database, kind] = key.split('\0') as [string, BackupKind];
      this.m.newestVerifiedAge.set(Math.max(0, (now - at) / 1000), { database, kind });
    }
  }

  private last(manifest: BackupManifest): void {
    const tags = { database: manifest.database, kind: manifest.kind };
    this.m.duration.set(manifest.timings.totalMs / 1000, tags);
    this.m.storedBytes.set(manifest.sizes.stored, tags);
    if (manifest.verification.verified)
      this.verified(manifest.database, manifest.kind, manifest.verification.at);
  }

  private verified(database: string, kind: BackupKind, at: string, fromCatalog = false): void {
    const key = `${database}\0${kind}`;
    const ms = Date.parse(at);
    if (!fromCatalog && (this.newest.get(key) ?? 0) > ms) return;
    this.newest.set(key, ms);
    this.m.newestVerified.set(ms / 1000, { database, kind });
    this.refreshAges();
  }
}

let installed: BackupMetrics | undefined;

/** The worker installs the metrics once its Temporal runtime (and so its meter) exists. */
export function installBackupMetrics(meter: MetricMeter): BackupMetrics {
  installed = new BackupMetrics(meter);
  return installed;
}

/** The installed metrics; undefined outside a worker (activities then record nothing). */
export function backupMetrics(): BackupMetrics | undefined {
  return installed;
}
