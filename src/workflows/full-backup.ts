// A full backup: PostgreSQL's base backup streamed from the primary into the repository, read
// back and checked, then named by a manifest written last. Crash-safe by construction: a lost
// worker's attempt restarts from scratch under a new attempt folder, what earlier attempts left
// is removed before the manifest is written, and a backup that fails leaves nothing behind.
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  fullBackupInputSchema,
  type BaseBackupResult,
  type FullBackupInput,
  type FullBackupPhase,
  type FullBackupProgress,
  type FullBackupResult,
} from '../domain/backup.ts';
import { NON_RETRYABLE_ERROR_TYPES } from '../domain/errors.ts';
import { fullBackupManifest } from '../domain/manifest.ts';
import { regionTaskQueue, type Plan } from '../domain/plan.ts';
import { backupId as makeBackupId } from '../domain/repository.ts';
import { searchAttributeKeys } from '../domain/search-attributes.ts';
import type { SecondCopyReport } from '../domain/second-copy.ts';
import { parseWorkflowInput } from './input.ts';
import { exportKubernetes } from './kubernetes-export.ts';
import { copyToSecondary } from './second-copy.ts';
import type { Activities } from '../activities/index.ts';

/** Short storage calls. */
const apiCall = {
  startToCloseTimeout: '1m',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 6,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
} as const;

/**
 * Storage must answer before PostgreSQL is asked for a checkpoint: retried with backoff for about
 * two minutes (2+4+8+16+30+30 s plus the calls), then the backup fails saying storage is down.
 */
const storageCheck = {
  startToCloseTimeout: '20s',
  retry: {
    initialInterval: '2s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 7,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
} as const;

/**
 * The data copy: as long as the database takes; heartbeats every second, so a worker that died
 * (SIGKILL, lost machine) is noticed within 15 s and the copy restarts from scratch elsewhere.
 */
const dataCopy = {
  startToCloseTimeout: '24h',
  heartbeatTimeout: '15s',
  // A cancelled backup waits for the activity to abort its upload before cleaning up.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: {
    initialInterval: '2s',
    backoffCoefficient: 2,
    maximumInterval: '1m',
    maximumAttempts: 6,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
} as const;

/** Reading the stored objects back: like the data copy, never staged. */
const readBack = { ...dataCopy, startToCloseTimeout: '12h' } as const;

const { describePlan, cleanUpBackup, discardUnfinishedBackup, writeBackupManifest } =
  proxyActivities<Activities>(apiCall);
const { checkBackupStorage } = proxyActivities<Activities>(storageCheck);
const { verifyBackup } = proxyActivities<Activities>(readBack);

/** Waiting this long for a worker of the primary region (none running) fails the backup, saying so. */
const NO_WORKER_AFTER = '10m';

function primaryRegionActivities(plan: Plan, region: string) {
  return proxyActivities<Activities>({
    ...dataCopy,
    taskQueue: regionTaskQueue(plan, region),
    scheduleToStartTimeout: NO_WORKER_AFTER,
  });
}

/** The workflow's phase and what it knows so far; live byte counts are the activity's heartbeats. */
export const progressQuery = defineQuery<FullBackupProgress>('progress');

export async function fullBackupWorkflow(
  rawInput: FullBackupInput,
): Promise<FullBackupResult & { secondCopy?: SecondCopyReport }> {
  const input = parseWorkflowInput(fullBackupInputSchema, rawInput ?? {}, 'fullBackupWorkflow');
  const info = workflowInfo();
  const startedAt = new Date(info.startTime.getTime());
  const backupId = makeBackupId(input.database, 'full', startedAt);
  const state: FullBackupProgress = {
    backupId,
    database: input.database,
    phase: 'starting',
    phaseSince: startedAt.toISOString(),
    startedAt: startedAt.toISOString(),
  };
  setHandler(progressQuery, () => state);
  const enter = (phase: FullBackupPhase, details: string) => {
    state.phase = phase;
    state.phaseSince = new Date().toISOString();
    setCurrentDetails(`**${phase}** — ${details}`);
  };
  upsertSearchAttributes([
    { key: searchAttributeKeys.kind, value: 'backup-full' },
    { key: searchAttributeKeys.database, value: input.database },
    ...(input.requestedBy ? [{ key: searchAttributeKeys.requestedBy, value: input.requestedBy }] : []),
  ]);

  enter('starting', `backup ${backupId}: reading the plan`);
  const plan = await describePlan();
  const db = plan.databases[input.database];
  if (!db) {
    state.phase = 'failed';
    state.error = `database "${input.database}" is not in the plan "${plan.name}"; declared: ${Object.keys(plan.databases).join(', ')}`;
    upsertSearchAttributes([{ key: searchAttributeKeys.outcome, value: 'failed' }]);
    throw ApplicationFailure.create({ type: 'UnknownReference', nonRetryable: true, message: state.error });
  }
  state.region = db.primaryRegion;
  upsertSearchAttributes([{ key: searchAttributeKeys.region, value: db.primaryRegion }]);

  let base: BaseBackupResult | undefined;
  try {
    enter('checking-storage', `${plan.storage.primary.url} reachable`);
    await checkBackupStorage();

    enter('streaming', `pg_basebackup → zstd → age → ${plan.storage.primary.url} from ${db.primaryRegion}`);
    base = await primaryRegionActivities(plan, db.primaryRegion).streamBaseBackup({
      database: input.database,
      backupId,
      options: input,
    });
    state.rawBytes = base.rawBytes;
    state.storedBytes = base.object.bytes;

    enter('cleaning-up', 'removing what earlier attempts left');
    const cleaned = await cleanUpBackup({ database: input.database, backupId, keep: [base.object.key] });
    if (cleaned.abortedUploads || cleaned.deletedObjects)
      log.info('removed what earlier attempts left', { backupId, ...cleaned });

    enter('verifying', `reading ${base.object.bytes} stored bytes back`);
    const verifyStarted = Date.now();
    const verification = await verifyBackup({
      objects: [base.object],
      timeline: base.postgres.timeline,
      startLsn: base.startLsn,
      stopLsn: base.stopLsn,
      walSegmentSize: base.postgres.walSegmentSize,
      fileChecksums: base.fileChecksums,
      streamCheck: base.streamCheck,
    });
    const verifiedAt = new Date();
    const kubernetes = await exportKubernetes(plan, input.database, backupId);

    enter('writing-manifest', 'the manifest is written last');
    const manifest = fullBackupManifest({
      id: backupId,
      database: input.database,
      plan: plan.name,
      workflowId: info.workflowId,
      runId: info.runId,
      requestedBy: input.requestedBy,
      recipients: base.recipients,
      base,
      verification,
      startedAt,
      verifiedAt,
      finishedAt: verifiedAt,
      verifyMs: verifiedAt.getTime() - verifyStarted,
    });
    if (kubernetes) manifest.kubernetes = kubernetes;
    const { key } = await writeBackupManifest({ manifest });
    if (plan.storage.secondary) enter('writing-manifest', `second copy to ${plan.storage.secondary.url}`);
    const secondCopy = await copyToSecondary(plan, input.database, backupId);

    enter(
      'completed',
      `${backupId}: ${base.rawBytes} bytes stored as ${base.object.bytes}, LSN ${base.startLsn}–${base.stopLsn}, verified (${verification.method})`,
    );
    upsertSearchAttributes([{ key: searchAttributeKeys.outcome, value: 'completed' }]);
    return {
      backupId,
      database: input.database,
      manifestKey: key,
      startLsn: base.startLsn,
      stopLsn: base.stopLsn,
      timeline: base.postgres.timeline,
      rawBytes: base.rawBytes,
      storedBytes: base.object.bytes,
      attempts: base.attempt,
      durationMs: manifest.timings.totalMs,
      streamMs: base.timings.streamMs,
      verification: { method: verification.method, detail: verification.detail },
      ...(kubernetes ? { kubernetes } : {}),
      ...(secondCopy ? { secondCopy } : {}),
    };
  } catch (err) {
    const failedIn = state.phase;
    state.phase = 'failed';
    state.phaseSince = new Date().toISOString();
    state.error = noWorker(err)
      ? `no worker of ${db.primaryRegion} took the backup within ${NO_WORKER_AFTER}: start one with lifeboat worker --region ${db.primaryRegion}`
      : rootMessage(err);
    setCurrentDetails(`**failed** while ${failedIn}: ${state.error}`);
    upsertSearchAttributes([
      { key: searchAttributeKeys.outcome, value: isCancellation(err) ? 'cancelled' : 'failed' },
    ]);
    // Nothing of an unfinished backup may stay behind, even when the run is being cancelled.
    // Before streaming nothing was written (and storage may be the very thing that is down).
    if (failedIn !== 'checking-storage')
      await CancellationScope.nonCancellable(() =>
        discardUnfinishedBackup({ database: input.database, backupId }),
      ).catch((cleanupErr: unknown) =>
        log.error('could not remove the unfinished backup', { backupId, error: rootMessage(cleanupErr) }),
      );
    if (isCancellation(err)) throw err;
    throw ApplicationFailure.create({
      type: failureType(err),
      nonRetryable: true,
      message: `full backup ${backupId} failed while ${failedIn}: ${state.error}`,
      cause: err instanceof Error ? err : undefined,
    });
  }
}

/** The innermost message of a failure chain: what actually went wrong. */
function rootMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e && typeof e.cause === 'object' && e.cause !== null) e = e.cause;
  return e?.message ?? String(err);
}

function noWorker(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof TimeoutFailure &&
    err.cause.timeoutType === 'SCHEDULE_TO_START'
  );
}

function failureType(err: unknown): string {
  for (let e = err as { type?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e)
    if (e instanceof ApplicationFailure && e.type) return e.type;
  return 'BackupFailed';
}
