// The second-copy step shared by the backup workflows: after the manifest is written on the
// primary, the backup is copied to the plan's secondary location (manifest last there too).
// Guarded by patched('second-copy'): histories recorded before it replay unchanged.
import { isCancellation, log, patched, proxyActivities } from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from '../domain/errors.ts';
import type { Plan } from '../domain/plan.ts';
import type { SecondCopyReport } from '../domain/second-copy.ts';
import type { Activities } from '../activities/index.ts';

export const SECOND_COPY_PATCH = 'second-copy';

/**
 * A copy streams the whole backup once more and reads it back: long, with heartbeats. Retried with
 * backoff for about an hour (a secondary endpoint down for a while), then reported as missing.
 */
const secondCopy = {
  startToCloseTimeout: '24h',
  heartbeatTimeout: '30s',
  retry: {
    initialInterval: '5s',
    backoffCoefficient: 2,
    maximumInterval: '10m',
    maximumAttempts: 10,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
} as const;

const { replicateBackup } = proxyActivities<Activities>(secondCopy);

/** Copies the backup to storage.secondary; undefined when the plan has none (or an old history). */
export async function copyToSecondary(
  plan: Plan,
  database: string,
  backupId: string,
): Promise<SecondCopyReport | undefined> {
  const secondary = plan.storage.secondary;
  if (!secondary || !patched(SECOND_COPY_PATCH)) return undefined;
  try {
    return await replicateBackup({ database, backupId });
  } catch (err) {
    if (isCancellation(err)) throw err;
    const error = rootMessage(err);
    log.error('the second copy of the backup failed; the primary copy is whole and verified', {
      backupId,
      location: secondary.url,
      error,
    });
    return { location: secondary.url, error };
  }
}

function rootMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e && typeof e.cause === 'object' && e.cause !== null) e = e.cause;
  return e?.message ?? String(err);
}
