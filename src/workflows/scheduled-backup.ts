// What a Temporal Schedule starts for a backup policy. Schedules append the scheduled time to the
// workflow id, which would lose the one-backup-per-database lock (workflow id backup-<db>); so this
// wrapper starts the real backup as a child under that id and records what happened: done,
// skipped (another backup holds the lock), missed (no start inside the start window), cancelled
// (past the completion window, after its clean-up) or failed — the last three also notify webhooks.
import {
  ApplicationFailure,
  CancellationScope,
  ParentClosePolicy,
  WorkflowIdReusePolicy,
  defineQuery,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { formatDuration, parseDuration } from '../domain/duration.ts';
import { NON_RETRYABLE_ERROR_TYPES } from '../domain/errors.ts';
import {
  lockIdOf,
  scheduledBackupInputSchema,
  scheduledStartTime,
  type ScheduledBackupInput,
  type ScheduledBackupOutcome,
  type ScheduledBackupResult,
} from '../domain/schedules.ts';
import { searchAttributeKeys } from '../domain/search-attributes.ts';
import { parseWorkflowInput } from './input.ts';
import type { Activities } from '../activities/index.ts';

/** Reading the plan and posting to a webhook: short calls, retried with backoff. */
const apiCall = {
  startToCloseTimeout: '30s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 5,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
} as const;
const { describePlan, notify } = proxyActivities<Activities>(apiCall);

/** While the lock is held inside a start window, the next attempt comes this long later (at most). */
const LOCK_RETRY_MS = 30_000;

export const scheduledBackupStatusQuery = defineQuery<ScheduledBackupResult>('scheduledBackupStatus');

/** The backup (or retention) workflow started under the lock id; its input is built by childArgs. */
type ChildWorkflow = (input: Record<string, unknown>) => Promise<unknown>;

const CHILD_TYPE = {
  full: 'fullBackupWorkflow',
  incremental: 'incrementalBackupWorkflow',
  retention: 'retentionWorkflow',
} as const;

export async function scheduledBackupWorkflow(raw: ScheduledBackupInput): Promise<ScheduledBackupResult> {
  const input = parseWorkflowInput(scheduledBackupInputSchema, raw ?? {}, 'scheduledBackupWorkflow');
  const info = workflowInfo();
  const scheduled = info.typedSearchAttributes.get(scheduledStartTime) ?? info.startTime;
  const scheduledMs = scheduled.getTime();
  const lockId = lockIdOf(input.kind, input.database);
  const state: ScheduledBackupResult = {
    outcome: 'completed',
    database: input.database,
    kind: input.kind,
    policy: input.policy,
    childWorkflowId: lockId,
    scheduledAt: scheduled.toISOString(),
    endedAt: scheduled.toISOString(),
    attempts: 0,
  };
  setHandler(scheduledBackupStatusQuery, () => state);
  upsertSearchAttributes([
    { key: searchAttributeKeys.kind, value: `scheduled-${input.kind}` },
    { key: searchAttributeKeys.database, value: input.database },
    ...(input.requestedBy ? [{ key: searchAttributeKeys.requestedBy, value: input.requestedBy }] : []),
  ]);
  const what =
    input.kind === 'retention'
      ? `retention of ${input.database}`
      : `${input.kind} backup of ${input.database}`;
  const startWindowMs = input.startWindow ? parseDuration(input.startWindow)! : undefined;
  const completionWindowMs = input.completionWindow ? parseDuration(input.completionWindow)! : undefined;

  // Taking the lock: the child's id. Held by another run: skipped, or retried until the window closes.
  const scope = new CancellationScope();
  let child: ChildWorkflowHandle<ChildWorkflow> | undefined;
  for (;;) {
    const now = Date.now();
    if (startWindowMs !== undefined && now > scheduledMs + startWindowMs) {
      const reason =
        state.attempts === 0
          ? `${what} started ${formatDuration(now - scheduledMs)} after its scheduled time ${state.scheduledAt}, past its start window of ${input.startWindow}`
          : `${what} could not start inside its start window of ${input.startWindow}: another run held ${lockId} all along (${state.attempts} attempts)`;
      return finish(state, 'missed', reason, input.requestedBy);
    }
    state.attempts += 1;
    try {
      child = await scope.run(() =>
        startChild<ChildWorkflow>(CHILD_TYPE[input.kind], {
          workflowId: lockId,
          args: [childArgs(input)],
          workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
          // A wrapper terminated by hand asks its backup to stop cleanly rather than killing it.
          parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
          staticSummary: `${what} (scheduled: ${input.policy})`,
        }),
      );
      break;
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      if (startWindowMs === undefined)
        return finish(
          state,
          'skipped',
          input.kind === 'retention'
            ? `skipped: a retention run of ${input.database} is running (${lockId})`
            : `skipped: a backup of ${input.database} is running (${lockId}); this run took no backup`,
          input.requestedBy,
        );
      const left = scheduledMs + startWindowMs - Date.now();
      setCurrentDetails(
        `waiting for ${lockId} to close (attempt ${state.attempts}); start window closes in ${formatDuration(Math.max(left, 0))}`,
      );
      await sleep(Math.max(1, Math.min(LOCK_RETRY_MS, Math.ceil(startWindowMs / 6), left + 1)));
    }
  }
  state.childRunId = child.firstExecutionRunId;
  const startedMs = Date.now();
  state.startedAt = new Date(startedMs).toISOString();
  setCurrentDetails(`**running** ${what} as ${lockId}`);

  let pastWindow = false;
  if (completionWindowMs !== undefined)
    void CancellationScope.nonCancellable(async () => {
      await sleep(completionWindowMs);
      pastWindow = true;
      scope.cancel();
    });
  try {
    const result = (await scope.run(() => child.result())) as Record<string, unknown> | undefined;
    if (typeof result?.backupId === 'string') state.backupId = result.backupId;
    const unchanged = input.kind === 'incremental' && result?.outcome === 'unchanged';
    return finish(state, unchanged ? 'unchanged' : 'completed', undefined, input.requestedBy);
  } catch (err) {
    if (pastWindow && isCancellation(err))
      return finish(
        state,
        'cancelled',
        `${what} was still running ${formatDuration(Date.now() - startedMs)} after it started, past its completion window of ${input.completionWindow}; it was cancelled and cleaned up`,
        input.requestedBy,
      );
    if (isCancellation(err)) throw err;
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    return finish(state, 'failed', `${what} failed: ${cause}`, input.requestedBy);
  }
}

function childArgs(input: ReturnType<typeof scheduledBackupInputSchema.parse>): Record<string, unknown> {
  const by = input.requestedBy ? { requestedBy: input.requestedBy } : {};
  if (input.kind === 'retention') return { database: input.database };
  if (input.kind === 'incremental') return { database: input.database, ...by };
  return { database: input.database, ...by, ...(input.maxRate ? { maxRate: input.maxRate } : {}) };
}

/** Records the outcome; missed, cancelled and failed notify the plan's webhooks and fail the run. */
async function finish(
  state: ScheduledBackupResult,
  outcome: ScheduledBackupOutcome,
  reason: string | undefined,
  requestedBy: string | undefined,
): Promise<ScheduledBackupResult> {
  state.outcome = outcome;
  state.endedAt = new Date().toISOString();
  if (reason) state.reason = reason;
  upsertSearchAttributes([{ key: searchAttributeKeys.outcome, value: outcome }]);
  setCurrentDetails(`**${outcome}**${reason ? ` — ${reason}` : ''}`);
  if (outcome === 'completed' || outcome === 'unchanged' || outcome === 'skipped') {
    log.info(`scheduled ${state.kind} of ${state.database}: ${outcome}${reason ? ` (${reason})` : ''}`);
    return state;
  }
  await notifyFailure(state, requestedBy);
  throw ApplicationFailure.create({
    type:
      outcome === 'missed'
        ? 'ScheduledBackupMissed'
        : outcome === 'cancelled'
          ? 'CompletionWindowExceeded'
          : 'ScheduledBackupFailed',
    nonRetryable: true,
    message: reason ?? outcome,
    details: [state],
  });
}

/** A webhook that cannot be reached must not hide the outcome: logged, and the run still ends as recorded. */
async function notifyFailure(state: ScheduledBackupResult, requestedBy: string | undefined): Promise<void> {
  try {
    const plan = await describePlan();
    const hooks = plan.notifications.webhooks.filter((w) => w.events.includes('failure'));
    for (const hook of hooks)
      await notify({
        webhook: hook.name,
        message: {
          event: 'failure',
          title: `Scheduled ${state.kind} of ${state.database}: ${state.outcome}`,
          text: state.reason ?? state.outcome,
          workflowId: workflowInfo().workflowId,
          fields: {
            database: state.database,
            policy: state.policy,
            scheduledAt: state.scheduledAt,
            ...(requestedBy ? { requestedBy } : {}),
          },
        },
      });
  } catch (err) {
    if (isCancellation(err)) throw err;
    log.warn(
      `could not notify about the ${state.outcome} ${state.kind} of ${state.database}: ${(err as Error).message}`,
    );
  }
}
