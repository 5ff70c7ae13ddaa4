// What one workflow run did, gathered as it happens for its audit record: the steps the audit
// interceptor observes and the approval gates the run opened. Module state is per run: the SDK
// gives every workflow execution its own module instances (its own webpack module cache), and
// everything here is only ever touched from workflow code, so it is deterministic on replay.
import type { ApprovalState } from '../domain/approval.ts';
import { MAX_AUDIT_STEPS, truncate, type AuditStep } from '../domain/audit.ts';

interface Gate {
  state: ApprovalState;
  refused: readonly string[];
}

const steps: AuditStep[] = [];
const gates: Gate[] = [];
let omitted = 0;
let closed = false;

/** Called by every ApprovalGate: its live state (decisions with names and times) goes in the record. */
export function auditApprovalGate(state: ApprovalState, refused: readonly string[]): void {
  gates.push({ state, refused });
}

/** Starts a step at the workflow's clock; the returned step is completed by `endStep`. */
export function beginStep(
  step: Pick<AuditStep, 'kind' | 'name' | 'workflowId' | 'taskQueue'>,
): AuditStep | undefined {
  if (closed) return undefined;
  if (steps.length >= MAX_AUDIT_STEPS) {
    omitted++;
    return undefined;
  }
  const entry: AuditStep = { ...step, startedAt: new Date().toISOString(), outcome: 'in-flight' };
  steps.push(entry);
  return entry;
}

export function endStep(
  step: AuditStep | undefined,
  outcome: 'completed' | 'failed' | 'cancelled',
  error?: unknown,
): void {
  if (!step || step.outcome !== 'in-flight') return;
  step.endedAt = new Date().toISOString();
  step.outcome = outcome;
  if (error !== undefined) step.error = truncate(failureMessage(error), 500);
}

/** Stops recording: the audit write itself is not one of the run's steps. */
export function closeTrail(): {
  steps: AuditStep[];
  stepsOmitted: number;
  gates: Gate[];
} {
  closed = true;
  return { steps: steps.map((s) => ({ ...s })), stepsOmitted: omitted, gates };
}

/** The innermost cause's message: an ActivityFailure says only "Activity task failed". */
export function failureMessage(error: unknown): string {
  let e = error as { message?: string; cause?: unknown } | undefined;
  const parts: string[] = [];
  while (e && typeof e === 'object') {
    if (e.message) parts.push(e.message);
    e = e.cause as typeof e;
  }
  return parts.at(-1) ?? String(error);
}
