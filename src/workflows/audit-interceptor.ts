// Every Lifeboat workflow run leaves a write-once audit record in the repository: who asked,
// approvals with names and times, each activity and child workflow with its start, end and
// outcome, and how the run ended — so the evidence outlives Temporal's retention period.
// A workflow interceptor (registered by the worker's bundle and by the replay test) observes the
// run without any workflow knowing, and at the end schedules one activity, writeAuditRecord.
//
// That activity is a new command at the end of every workflow, so it is guarded by
// patched('audit-record'): histories recorded before it (test/replay/) replay unchanged.
// A run that is terminated or times out runs no more workflow code: it cannot leave a record.
import {
  CancellationScope,
  ContinueAsNew,
  TemporalFailure,
  isCancellation,
  log,
  patched,
  proxyActivities,
  workflowInfo,
  type ActivityInput,
  type LocalActivityInput,
  type Next,
  type StartChildWorkflowExecutionInput,
  type WorkflowExecuteInput,
  type WorkflowInboundCallsInterceptor,
  type WorkflowInterceptorsFactory,
  type WorkflowOutboundCallsInterceptor,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import {
  AUDIT_RECORD_VERSION,
  truncate,
  type AuditOutcome,
  type AuditRecord,
  type AuditStep,
} from '../domain/audit.ts';
import { NON_RETRYABLE_ERROR_TYPES } from '../domain/errors.ts';
import { searchAttributeKeys } from '../domain/search-attributes.ts';
import { beginStep, closeTrail, endStep, failureMessage } from './audit-trail.ts';

export const AUDIT_PATCH = 'audit-record';

/**
 * A few attempts, then the run ends with its own outcome: a storage outage must not hold a WAL
 * archiver's continue-as-new or turn a finished backup into a failure. A record that could not
 * be written stays in history as the failed activity's input and in the worker's error log.
 */
const { writeAuditRecord } = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumAttempts: 5,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
});

class AuditInbound implements WorkflowInboundCallsInterceptor {
  async execute(input: WorkflowExecuteInput, next: Next<WorkflowInboundCallsInterceptor, 'execute'>) {
    let value: unknown;
    try {
      value = await next(input);
    } catch (err) {
      const outcome = endedBy(err);
      // Any other error fails the workflow *task*, not the run: the SDK retries the task (after a
      // fix is deployed), so the run is not over and nothing is recorded yet.
      if (outcome) await recordRun(input, outcome, outcome === 'continued-as-new' ? undefined : err);
      throw err;
    }
    await recordRun(input, 'completed');
    return value;
  }
}

class AuditOutbound implements WorkflowOutboundCallsInterceptor {
  scheduleActivity(input: ActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>) {
    return track(
      beginStep({ kind: 'activity', name: input.activityType, ...regionQueue(input.options.taskQueue) }),
      next(input),
    );
  }

  scheduleLocalActivity(
    input: LocalActivityInput,
    next: Next<WorkflowOutboundCallsInterceptor, 'scheduleLocalActivity'>,
  ) {
    return track(beginStep({ kind: 'local-activity', name: input.activityType }), next(input));
  }

  async startChildWorkflowExecution(
    input: StartChildWorkflowExecutionInput,
    next: Next<WorkflowOutboundCallsInterceptor, 'startChildWorkflowExecution'>,
  ): Promise<[Promise<string>, Promise<unknown>]> {
    const step = beginStep({
      kind: 'child-workflow',
      name: input.workflowType,
      workflowId: input.options.workflowId,
      ...regionQueue(input.options.taskQueue),
    });
    let started: Promise<[Promise<string>, Promise<unknown>]>;
    try {
      started = next(input);
    } catch (err) {
      endStep(step, 'failed', err);
      throw err;
    }
    const [whenStarted, completed] = await started.catch((err: unknown) => {
      endStep(step, isCancellation(err) ? 'cancelled' : 'failed', err);
      throw err;
    });
    return [whenStarted, track(step, completed)];
  }
}

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [new AuditInbound()],
  outbound: [new AuditOutbound()],
});

function track<T>(step: AuditStep | undefined, promise: Promise<T>): Promise<T> {
  // Observes without changing what the workflow sees: the workflow still awaits `promise` itself.
  void promise.then(
    () => endStep(step, 'completed'),
    (err: unknown) => endStep(step, isCancellation(err) ? 'cancelled' : 'failed', err),
  );
  return promise;
}

/** Only the region queues are worth naming; the shared `lifeboat` queue is the default. */
function regionQueue(taskQueue: string | undefined): { taskQueue?: string } {
  return taskQueue && taskQueue !== workflowInfo().taskQueue ? { taskQueue } : {};
}

function endedBy(err: unknown): AuditOutcome | undefined {
  if (err instanceof ContinueAsNew) return 'continued-as-new';
  if (isCancellation(err)) return 'cancelled';
  if (err instanceof TemporalFailure) return 'failed';
  return undefined;
}

async function recordRun(input: WorkflowExecuteInput, outcome: AuditOutcome, err?: unknown): Promise<void> {
  const trail = closeTrail();
  if (!patched(AUDIT_PATCH)) return;
  let record: AuditRecord;
  try {
    record = buildRecord(input, outcome, trail, err);
  } catch (buildErr) {
    // Never let the audit turn a finished run into a workflow task that fails forever.
    log.error('audit record not built', { error: failureMessage(buildErr) });
    return;
  }
  try {
    // A cancelled run still records that it was cancelled and what it had done.
    await CancellationScope.nonCancellable(() => writeAuditRecord({ record }));
  } catch (writeErr) {
    log.error('audit record not written; it stays in this history as the activity input', {
      error: failureMessage(writeErr),
    });
  }
}

function buildRecord(
  input: WorkflowExecuteInput,
  outcome: AuditOutcome,
  trail: ReturnType<typeof closeTrail>,
  err: unknown,
): AuditRecord {
  const info = workflowInfo();
  const sa = info.typedSearchAttributes;
  const given = pickInput(input.args[0]);
  const scheduledBy = stringAttribute(info.searchAttributes?.TemporalScheduledById);
  const requestedBy =
    sa.get(searchAttributeKeys.requestedBy) ??
    given.requestedBy ??
    (scheduledBy ? `schedule:${scheduledBy}` : undefined) ??
    (info.parent ? `workflow:${info.parent.workflowId}` : undefined);
  const optional = <K extends string>(key: K, value: string | undefined) =>
    value ? ({ [key]: truncate(value, 200) } as Record<K, string>) : {};
  return {
    version: AUDIT_RECORD_VERSION,
    workflowId: info.workflowId,
    runId: info.runId,
    firstExecutionRunId: info.firstExecutionRunId,
    workflowType: info.workflowType,
    taskQueue: info.taskQueue,
    namespace: info.namespace,
    ...optional('requestedBy', requestedBy),
    ...(scheduledBy ? { scheduledBy: truncate(scheduledBy, 400) } : {}),
    ...(info.parent ? { parent: { workflowId: info.parent.workflowId, runId: info.parent.runId } } : {}),
    ...optional('kind', sa.get(searchAttributeKeys.kind)),
    ...optional('database', sa.get(searchAttributeKeys.database) ?? given.database),
    ...optional('region', sa.get(searchAttributeKeys.region) ?? given.region),
    ...optional('targetRegion', sa.get(searchAttributeKeys.targetRegion) ?? given.targetRegion),
    startedAt: info.runStartTime.toISOString(),
    endedAt: new Date().toISOString(),
    outcome,
    ...optional('result', sa.get(searchAttributeKeys.outcome)),
    ...(err !== undefined ? { failure: failureOf(err) } : {}),
    approvals: trail.gates.map(({ state, refused }) => ({
      requestedBy: truncate(state.requestedBy, 200),
      ...(state.request ? { request: truncate(state.request, 4000) } : {}),
      ...(state.outcome ? { outcome: state.outcome } : {}),
      decisions: state.decisions.map((d) => ({
        approver: d.approver,
        decision: d.decision,
        at: d.at,
        ...(d.comment ? { comment: d.comment } : {}),
      })),
      refused: refused.map((r) => truncate(r, 2000)),
    })),
    steps: trail.steps,
    stepsOmitted: trail.stepsOmitted,
  };
}

/**
 * The few input fields a record may carry, each only when it is a short string. Never the input
 * as a whole: inputs name secrets by reference today, but a record is kept for years.
 */
function pickInput(raw: unknown): {
  requestedBy?: string;
  database?: string;
  region?: string;
  targetRegion?: string;
} {
  if (!raw || typeof raw !== 'object') return {};
  const r = raw as Record<string, unknown>;
  const pick = (v: unknown) => (typeof v === 'string' && v.length > 0 && v.length <= 200 ? v : undefined);
  return {
    requestedBy: pick(r.requestedBy),
    database: pick(r.database),
    region: pick(r.region),
    targetRegion: pick(r.targetRegion),
  };
}

function failureOf(err: unknown): { type?: string; message: string } {
  let type: string | undefined;
  for (let e = err as { type?: unknown; cause?: unknown } | undefined; e && typeof e === 'object';) {
    if (typeof e.type === 'string') type = e.type;
    e = e.cause as typeof e;
  }
  return { ...(type ? { type: truncate(type, 200) } : {}), message: truncate(failureMessage(err), 2000) };
}

function stringAttribute(value: unknown): string | undefined {
  const first: unknown = Array.isArray(value) ? (value as unknown[])[0] : value;
  return typeof first === 'string' && first ? first : undefined;
}
