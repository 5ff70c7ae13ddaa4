// Counts backup runs that end failed, once per run, on the worker's Prometheus endpoint
// (`lifeboat_backup_runs_failed{database, kind, type}`): the activity counter sees only failed
// attempts, and a run can fail with no activity failing at all (no parent for an incremental, a
// WAL gap, the archiver not storing a segment). Metrics are not commands, so histories replay
// unchanged, and the SDK does not emit them again during replay.
import {
  ApplicationFailure,
  isCancellation,
  metricMeter,
  workflowInfo,
  type Next,
  type WorkflowExecuteInput,
  type WorkflowInboundCallsInterceptor,
  type WorkflowInterceptorsFactory,
} from '@temporalio/workflow';

const KIND_OF: Record<string, 'full' | 'incremental'> = {
  fullBackupWorkflow: 'full',
  incrementalBackupWorkflow: 'incremental',
};

class BackupRunMetrics implements WorkflowInboundCallsInterceptor {
  async execute(input: WorkflowExecuteInput, next: Next<WorkflowInboundCallsInterceptor, 'execute'>) {
    const kind = KIND_OF[workflowInfo().workflowType];
    if (!kind) return next(input);
    try {
      return await next(input);
    } catch (err) {
      if (!isCancellation(err)) {
        const database = (input.args[0] as { database?: unknown } | undefined)?.database;
        metricMeter
          .createCounter(
            'lifeboat_backup_runs_failed',
            'runs',
            'backup runs that ended failed, by error type',
          )
          .add(1, { database: typeof database === 'string' ? database : 'unknown', kind, type: typeOf(err) });
      }
      throw err;
    }
  }
}

/** The failure's own type, else the type of the innermost application failure in its causes. */
function typeOf(err: unknown): string {
  for (let e = err; e; e = (e as { cause?: unknown }).cause)
    if (e instanceof ApplicationFailure && e.type) return e.type;
  return 'Unknown';
}

export const interceptors: WorkflowInterceptorsFactory = () => ({ inbound: [new BackupRunMetrics()] });
