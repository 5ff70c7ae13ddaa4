// The audit record every Lifeboat workflow run leaves in the repository: who asked, who approved
// (or rejected) and when, which steps ran with their times and outcomes, how the run ended. It is
// written once under audit/<yyyy>/<mm>/ so the evidence outlives Temporal's retention period.
// Fields are picked one by one (never a workflow's input as a whole), so no credential or
// connection string can slip in.
import { z } from 'zod';
import { repository } from './repository.ts';

export const AUDIT_RECORD_VERSION = 'lifeboat.audit/v1';

/** How a run ended. A terminated run or one that timed out runs no code: it leaves no record. */
export const auditOutcomes = ['completed', 'failed', 'cancelled', 'continued-as-new'] as const;
export type AuditOutcome = (typeof auditOutcomes)[number];

const text = (max: number) => z.string().max(max);
const isoTime = z.iso.datetime();

export const auditStepSchema = z.strictObject({
  kind: z.enum(['activity', 'local-activity', 'child-workflow']),
  /** Activity type or child workflow type. */
  name: text(200),
  /** Child workflow id; absent for activities. */
  workflowId: text(400).optional(),
  /** The task queue it ran on when it is a region's queue (where it ran). */
  taskQueue: text(200).optional(),
  startedAt: isoTime,
  /** Absent when the run ended with the step still in flight (e.g. cancelled mid-step). */
  endedAt: isoTime.optional(),
  outcome: z.enum(['completed', 'failed', 'cancelled', 'in-flight']),
  /** The failure's message, cut to 500 characters. */
  error: text(500).optional(),
});
export type AuditStep = z.infer<typeof auditStepSchema>;

export const auditApprovalSchema = z.strictObject({
  approver: text(200),
  decision: z.enum(['approved', 'rejected']),
  at: isoTime,
  comment: text(2000).optional(),
});

export const auditRecordSchema = z.strictObject({
  version: z.literal(AUDIT_RECORD_VERSION),
  workflowId: text(1000),
  runId: text(100),
  /** The first run of a continue-as-new chain. */
  firstExecutionRunId: text(100),
  workflowType: text(200),
  taskQueue: text(200),
  namespace: text(200),
  /** Who asked: the input's requestedBy, the schedule that started it, or the parent workflow. */
  requestedBy: text(200).optional(),
  scheduledBy: text(400).optional(),
  parent: z.strictObject({ workflowId: text(1000), runId: text(100) }).optional(),
  kind: text(100).optional(),
  database: text(200).optional(),
  region: text(200).optional(),
  targetRegion: text(200).optional(),
  /** The run's start (this run, after a continue-as-new) and end, from the workflow's clock. */
  startedAt: isoTime,
  endedAt: isoTime,
  outcome: z.enum(auditOutcomes),
  /** The workflow's own outcome label (its LifeboatOutcome search attribute), e.g. `healthy`. */
  result: text(200).optional(),
  failure: z.strictObject({ type: text(200).optional(), message: text(2000) }).optional(),
  approvals: z.array(
    z.strictObject({
      requestedBy: text(200),
      request: text(4000).optional(),
      outcome: z.enum(['approved', 'rejected', 'not-approved', 'automatic']).optional(),
      decisions: z.array(auditApprovalSchema),
      /** Signals refused by the gate's rules (an Update refused by its validator never reaches history). */
      refused: z.array(text(2000)),
    }),
  ),
  steps: z.array(auditStepSchema),
  /** Steps beyond the cap (long-running workflows): counted, not listed. */
  stepsOmitted: z.number().int().min(0),
});
export type AuditRecord = z.infer<typeof auditRecordSchema>;
export type AuditApprovalGate = AuditRecord['approvals'][number];

/** Steps listed per record: a monitor run checks up to 500 times, a record stays small (~40 kB). */
export const MAX_AUDIT_STEPS = 200;

/** The record's key (repository.auditRecord): the run's start month, time, workflow id, run id. */
export function auditRecordKey(
  prefix: string,
  record: Pick<AuditRecord, 'startedAt' | 'workflowId' | 'runId'>,
): string {
  return repository.auditRecord(prefix, new Date(record.startedAt), record.workflowId, record.runId);
}

/** The month folders that hold records of runs started in [since, until], oldest first. */
export function auditMonthPrefixes(prefix: string, since: Date, until: Date): string[] {
  const out: string[] = [];
  const cursor = new Date(Date.UTC(since.getUTCFullYear(), since.getUTCMonth(), 1));
  while (cursor.getTime() <= until.getTime()) {
    out.push(repository.auditMonth(prefix, cursor) + '/');
    cursor.setUTCMonth(cursor.getUTCMonth() + 1);
  }
  return out;
}

/** Deterministic bytes: a retry serializes the same record to the same text. */
export function serializeAuditRecord(record: AuditRecord): string {
  return `${JSON.stringify(auditRecordSchema.parse(record), null, 2)}\n`;
}

export function truncate(value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max - 1)}…`;
}
