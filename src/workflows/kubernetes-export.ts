// The Kubernetes step shared by the backup workflows: the objects the backup policy selects are
// exported (new hashes only) before the manifest is written, and the manifest names the snapshot.
// Guarded by patched('k8s-export'), and only reached when the policy selects Kubernetes objects:
// histories recorded before it (or of plans without a selection) replay unchanged.
import { patched, proxyActivities } from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from '../domain/errors.ts';
import { kubernetesSelection, type KubernetesExportSummary } from '../domain/kubernetes-snapshot.ts';
import { regionTaskQueue, type Plan } from '../domain/plan.ts';
import type { Activities } from '../activities/index.ts';

export const K8S_EXPORT_PATCH = 'k8s-export';

/** Listing and small uploads: minutes at most; a cluster that does not answer is retried a while. */
const clusterExport = {
  startToCloseTimeout: '30m',
  heartbeatTimeout: '2m',
  // Waiting this long for a worker of the cluster's region fails the backup instead of hanging it.
  scheduleToStartTimeout: '10m',
  retry: {
    initialInterval: '2s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 6,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
} as const;

/** Exports the selected objects; undefined when the policy selects none (or on an old history). */
export async function exportKubernetes(
  plan: Plan,
  database: string,
  backupId: string,
  parent?: { backupId: string; snapshot: string },
): Promise<KubernetesExportSummary | undefined> {
  const selection = kubernetesSelection(plan, database);
  if (!selection || !patched(K8S_EXPORT_PATCH)) return undefined;
  const { exportKubernetesObjects } = proxyActivities<Activities>({
    ...clusterExport,
    taskQueue: regionTaskQueue(plan, selection.region),
  });
  return exportKubernetesObjects({ database, backupId, selection, ...(parent ? { parent } : {}) });
}
