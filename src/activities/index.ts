// Every activity, grouped by the external system it touches, merged for registration.
// Workflows `import type { Activities }` and call them through proxyActivities.
import type { Plan } from '../domain/plan.ts';
import { createAuditActivities } from './audit.ts';
import { createBackupActivities } from './backup.ts';
import { createDnsActivities } from './dns.ts';
import { createDrillActivities } from './drill.ts';
import { createHealthActivities } from './health.ts';
import { createKubernetesActivities } from './kubernetes.ts';
import { createKubernetesExportActivities } from './kubernetes-export.ts';
import { createNotifyActivities } from './notify.ts';
import { createPlanActivities } from './plan.ts';
import type { DnsZone } from './ports/dns-zone.ts';
import type { Environment } from './ports/environment.ts';
import type { KubernetesCluster } from './ports/kubernetes-cluster.ts';
import type { ObjectStore } from './ports/object-store.ts';
import { createPostgresActivities } from './postgres.ts';
import { createPostgresFailoverActivities } from './postgres-failover.ts';
import { createPostgresRejoinActivities } from './postgres-rejoin.ts';
import { createStorageActivities, type StorageLocationName } from './storage.ts';
import { createWalActivities } from './wal.ts';
import { createReplicateActivities } from './replicate.ts';
import { createRestoreActivities } from './restore.ts';
import { createRetentionActivities } from './retention.ts';
import { createWorkerToolActivities } from './worker-tools.ts';

export interface ActivityDeps {
  plan: Plan;
  env: Environment;
  stores: Partial<Record<StorageLocationName, ObjectStore>>;
  zone?: DnsZone;
  clusters: Record<string, KubernetesCluster>;
  fetch?: typeof fetch;
  /** Root of the worker-local WAL spools (LIFEBOAT_SPOOL). */
  spoolDir?: string;
  /** Aborted when the worker begins to shut down (SIGINT/SIGTERM): endless activities return. */
  shutdown?: AbortSignal;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createPlanActivities(deps),
    ...createPostgresActivities(deps),
    ...createStorageActivities(deps),
    ...createBackupActivities(deps),
    ...createDnsActivities(deps),
    ...createKubernetesActivities(deps),
    ...createKubernetesExportActivities(deps),
    ...createNotifyActivities(deps),
    ...createHealthActivities(deps),
    ...createPostgresFailoverActivities(deps),
    ...createPostgresRejoinActivities(deps),
    ...createWalActivities(deps),
    ...createRestoreActivities(deps),
    ...createRetentionActivities(deps),
    ...createDrillActivities(deps),
    ...createAuditActivities(deps),
    ...createReplicateActivities(deps),
    ...createWorkerToolActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
