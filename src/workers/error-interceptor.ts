// Typed errors become ApplicationFailures at the activity boundary: their code is the failure
// type the retry policies name, and non-retryable codes stop retries at once.
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { ActivityInboundCallsInterceptor, ActivityExecuteInput, Next } from '@temporalio/worker';
import { ERROR_CODES, LifeboatError } from '../domain/errors.ts';
import { BACKUP_WORKFLOW_KINDS, backupMetrics } from '../activities/backup-metrics.ts';

export class TypedErrorInterceptor implements ActivityInboundCallsInterceptor {
  async execute(
    input: ActivityExecuteInput,
    next: Next<ActivityInboundCallsInterceptor, 'execute'>,
  ): Promise<unknown> {
    try {
      return await next(input);
    } catch (err) {
      countBackupFailure(input, err);
      if (err instanceof LifeboatError) {
        throw ApplicationFailure.create({
          type: err.code,
          message: err.message,
          nonRetryable: !ERROR_CODES[err.code].retryable,
          details: [err.context],
        });
      }
      throw err;
    }
  }
}

/** A failed step of a full or incremental backup counts in lifeboat_backup_failed by its type. */
function countBackupFailure(input: ActivityExecuteInput, err: unknown): void {
  const metrics = backupMetrics();
  // A cancelled step is the run being stopped, not a failure of the backup.
  if (!metrics || err instanceof CancelledFailure) return;
  const info = Context.current().info;
  const kind = info.workflowType ? BACKUP_WORKFLOW_KINDS[info.workflowType] : undefined;
  // The audit record every run writes at its end is not a step of the backup: its failure after a
  // failed step would count the one failed backup twice.
  if (!kind || info.activityType === 'writeAuditRecord') return;
  // Most steps name their database; the rest run in a workflow whose id is backup-<database>.
  const named = (input.args[0] as { database?: unknown } | undefined)?.database;
  const database =
    typeof named === 'string' ? named : (info.workflowExecution?.workflowId ?? '').replace(/^backup-/, '');
  metrics.failed(database, kind, failureType(err));
}

function failureType(err: unknown): string {
  if (err instanceof LifeboatError) return err.code;
  if (err instanceof ApplicationFailure && err.type) return err.type;
  return err instanceof Error ? err.name : 'Error';
}
