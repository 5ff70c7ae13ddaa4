// The region health monitor of one database, for months: checks the primary's region every
// interval from the failover target's region (so it sees what the target sees), and after N
// consecutive failed checks starts the regional failover as a child under the workflow id
// `failover-<database>` — the id is the lock, so a failover an operator already started is found
// running, never doubled. Pause/resume are signals; `lifeboat monitor stop` cancels it. Continue-
// as-new every `continueAsNewAfter` checks carries the state and keeps the history small.
import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowCancellationType,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  isCancellation,
  log,
  ParentClosePolicy,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Activities } from '../activities/index.ts';
import { parseDuration } from '../domain/duration.ts';
import { NON_RETRYABLE_ERROR_TYPES } from '../domain/errors.ts';
import type { FailoverResult } from '../domain/failover.ts';
import {
  addEvent,
  afterFailover,
  monitorInputSchema,
  monitorSummary,
  recordCheck,
  type MonitorInput,
  type MonitorStatus,
  type PauseInput,
} from '../domain/monitor.ts';
import { workflowIds } from '../domain/naming.ts';
import { regionTaskQueue } from '../domain/plan.ts';
import { searchAttributeKeys } from '../domain/search-attributes.ts';
import { parseWorkflowInput } from './input.ts';
import type { regionalFailoverWorkflow } from './regional-failover.ts';

/** Short API calls: the plan. */
const apiCall = {
  startToCloseTimeout: '20s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumAttempts: 3,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
} as const;
/** One attempt: a failed check is an answer, and the next one comes at the next interval. */
const probe = { startToCloseTimeout: '20s', retry: { maximumAttempts: 1 } } as const;

const { describePlan } = proxyActivities<Activities>(apiCall);

/** The monitor's state: phase, regions, failure count, last check, last failover. */
export const monitorStatusQuery = defineQuery<MonitorStatus>('monitorStatus');
/** Stop checking (a maintenance window, a known outage handled by hand) until resumed. */
export const pauseSignal = defineSignal<[PauseInput]>('pause');
/** Check again; the failure count starts from zero. */
export const resumeSignal = defineSignal<[PauseInput]>('resume');

export async function regionHealthMonitorWorkflow(raw: MonitorInput): Promise<MonitorStatus> {
  const input = parseWorkflowInput(monitorInputSchema, raw, 'regionHealthMonitorWorkflow');
  const now = () => new Date().toISOString();
  const plan = await describePlan();
  const db = plan.databases[input.database];
  if (!db)
    throw ApplicationFailure.create({
      type: 'UnknownReference',
      nonRetryable: true,
      message: `database "${input.database}" is not in the plan; declared: ${Object.keys(plan.databases).join(', ')}`,
    });
  const policy = plan.failover.policies.find((p) => p.database === input.database);
  const firstReplica = db.replicas[0]?.region;
  if (!policy || !firstReplica)
    throw ApplicationFailure.create({
      type: 'InvalidInput',
      nonRetryable: true,
      message: `${input.database} cannot be failed over: ${policy ? 'it has no replica' : 'the plan has no failover policy for it'}`,
    });
  const checks = input.checks ?? policy.detection.checks;
  const intervalMs = parseDuration(input.interval ?? policy.detection.interval)!;
  const status: MonitorStatus = input.carried
    ? { ...input.carried, checks, intervalMs, generations: input.carried.generations + 1 }
    : {
        database: input.database,
        phase: 'watching',
        watchedRegion: db.primaryRegion,
        targetRegion: firstReplica,
        checks,
        intervalMs,
        consecutiveFailures: 0,
        checksRun: 0,
        failuresSeen: 0,
        failoversStarted: 0,
        generations: 1,
        startedAt: now(),
        events: [],
      };
  let paused = status.phase === 'paused';
  setHandler(monitorStatusQuery, () => status);
  setHandler(pauseSignal, (p) => {
    if (paused) return;
    paused = true;
    status.pausedBy = { by: p.by ?? 'unknown', at: now(), ...(p.reason ? { reason: p.reason } : {}) };
    addEvent(status, now(), `paused by ${status.pausedBy.by}${p.reason ? `: ${p.reason}` : ''}`);
  });
  setHandler(resumeSignal, (p) => {
    if (!paused) return;
    paused = false;
    delete status.pausedBy;
    addEvent(status, now(), `resumed by ${p.by ?? 'unknown'}`);
  });
  const report = () => {
    if (status.phase !== 'failing-over' && status.phase !== 'stopped')
      status.phase = paused ? 'paused' : 'watching';
    setCurrentDetails(monitorSummary(status));
    upsertSearchAttributes([
      { key: searchAttributeKeys.region, value: status.watchedRegion },
      { key: searchAttributeKeys.targetRegion, value: status.targetRegion },
      { key: searchAttributeKeys.outcome, value: status.phase },
    ]);
  };
  upsertSearchAttributes([
    { key: searchAttributeKeys.kind, value: 'monitor' },
    { key: searchAttributeKeys.database, value: input.database },
    ...(input.requestedBy ? [{ key: searchAttributeKeys.requestedBy, value: input.requestedBy }] : []),
  ]);
  report();

  try {
    for (let checksThisRun = 0; ;) {
      if (paused) {
        status.consecutiveFailures = 0;
        report();
        await condition(() => !paused);
        report();
      }
      const trigger = await check(plan, status, now());
      checksThisRun++;
      if (trigger) await failover(status, now);
      report();
      if (checksThisRun >= input.continueAsNewAfter || workflowInfo().continueAsNewSuggested)
        await continueAsNew<typeof regionHealthMonitorWorkflow>({ ...input, carried: status });
      // A pause takes effect at once, not after the interval.
      await condition(() => paused, status.intervalMs);
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    return CancellationScope.nonCancellable(async () => {
      status.phase = 'stopped';
      addEvent(status, now(), 'stopped by an operator');
      report();
      return Promise.resolve(status);
    });
  }
}

/** One check of the watched region from the target's task queue; true when a failover must start. */
async function check(
  plan: Awaited<ReturnType<Activities['describePlan']>>,
  status: MonitorStatus,
  at: string,
): Promise<boolean> {
  const { probeRegion } = proxyActivities<Activities>({
    ...probe,
    taskQueue: regionTaskQueue(plan, status.targetRegion),
  });
  let health;
  try {
    health = await probeRegion({ region: status.watchedRegion, database: status.database });
  } catch (err) {
    if (isCancellation(err)) throw err;
    // The probe itself could not run (no worker in the target region, a missing secret): that
    // says nothing about the watched region, so it is not counted as a failed check.
    const why = ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message;
    addEvent(status, at, `check not run: ${why}`);
    log.warn(`monitor of ${status.database}: check not run: ${why}`);
    return false;
  }
  const detail = health.healthy
    ? 'ok'
    : health.checks
        .filter((c) => !c.ok)
        .map((c) => `${c.name}: ${c.detail}`)
        .join('; ');
  const trigger = recordCheck(status, { healthy: health.healthy, detail }, at);
  if (!health.healthy)
    log.warn(
      `monitor of ${status.database}: ${status.watchedRegion} failed check ${status.consecutiveFailures}/${status.checks}: ${detail}`,
    );
  return trigger;
}

/** Starts the failover as a child and waits for it; a failover already running is left alone. */
async function failover(status: MonitorStatus, now: () => string): Promise<void> {
  const workflowId = workflowIds.failover(status.database);
  const reason = `region health monitor: ${status.consecutiveFailures} consecutive failed checks of ${status.watchedRegion} (${status.lastCheck?.detail ?? ''})`;
  let child;
  try {
    child = await startChild<typeof regionalFailoverWorkflow>('regionalFailoverWorkflow', {
      workflowId,
      args: [
        {
          database: status.database,
          targetRegion: status.targetRegion,
          reason: reason.slice(0, 2000),
          requestedBy: 'region-health-monitor',
        },
      ],
      // The failover outlives the monitor: stopping or continuing the monitor as new must never
      // cancel a failover that may be past its point of no return.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      cancellationType: ChildWorkflowCancellationType.ABANDON,
      staticSummary: `failover of ${status.database} to ${status.targetRegion}, started by its monitor`,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    addEvent(
      status,
      now(),
      `a failover of ${status.database} already runs (${workflowId}); not starting another`,
    );
    status.consecutiveFailures = 0;
    return;
  }
  status.failoversStarted++;
  status.phase = 'failing-over';
  status.lastFailover = { workflowId, runId: child.firstExecutionRunId, startedAt: now() };
  addEvent(status, now(), `started ${workflowId}: ${reason}`);
  setCurrentDetails(monitorSummary(status));
  upsertSearchAttributes([{ key: searchAttributeKeys.outcome, value: status.phase }]);
  try {
    const result: FailoverResult = await child.result();
    afterFailover(status, result.outcome, result.message ?? '', now());
  } catch (err) {
    if (isCancellation(err)) throw err;
    const cause = (err as Error).cause as ApplicationFailure | undefined;
    // Past promotion the target holds the primary even when a later step failed.
    const outcome = cause?.type === 'FailoverIncomplete' ? 'failed-after-promotion' : 'failed';
    afterFailover(status, outcome, cause?.message ?? (err as Error).message, now());
  } finally {
    status.phase = 'watching';
  }
}
