// Human approval of a dangerous step (a promotion, a restore over live data). Pure rules shared by
// every workflow that asks for approval: who may decide, how many distinct approvers it takes,
// and what the decision was. The workflow part (Update + Signal alias) is src/workflows/approval.ts.
import { z } from 'zod';

/** What an approver sends: `{"approver": "bob"}`, or a rejection with its reason. */
export const approvalDecisionSchema = z.strictObject({
  approver: z.string().trim().min(1).max(200),
  /** Reject instead of approve; one rejection ends the wait. */
  reject: z.boolean().optional(),
  /** Why: required with a rejection, optional with an approval. */
  reason: z.string().max(2000).optional(),
  comment: z.string().max(2000).optional(),
});
export type ApprovalDecisionInput = z.input<typeof approvalDecisionSchema>;

export interface ApprovalPolicy {
  approvers: string[];
  minApprovals: number;
}

export interface ApprovalRecord {
  approver: string;
  decision: 'approved' | 'rejected';
  /** ISO time from the workflow's clock, recorded in history. */
  at: string;
  comment?: string;
}

export type ApprovalOutcome = 'approved' | 'rejected' | 'not-approved' | 'automatic';

export interface ApprovalState {
  /** Whether the gate is open for decisions. */
  waiting: boolean;
  requestedBy: string;
  policy: ApprovalPolicy;
  /** What the approver is asked to accept, e.g. the measured lag (data at risk). */
  request?: string;
  deadline?: string;
  decisions: ApprovalRecord[];
  outcome?: ApprovalOutcome;
}

/**
 * Why a decision must be refused, or undefined when it may be accepted. Refusals are answered to
 * the caller by the Update's validator and never enter history.
 */
export function approvalRefusal(state: ApprovalState, raw: unknown): string | undefined {
  const parsed = approvalDecisionSchema.safeParse(raw);
  if (!parsed.success)
    return `invalid decision: ${parsed.error.issues.map((i) => `${['input', ...i.path].join('.')}: ${i.message}`).join('; ')}`;
  const d = parsed.data;
  if (!state.waiting)
    return state.outcome
      ? `no approval is pending: the request was already decided (${state.outcome})`
      : 'no approval is pending yet';
  if (!state.policy.approvers.includes(d.approver))
    return `${d.approver} is not an approver of this policy; approvers: ${state.policy.approvers.join(', ') || '(none)'}`;
  if (d.approver === state.requestedBy)
    return `${d.approver} requested this operation and cannot approve or reject it`;
  if (state.decisions.some((r) => r.approver === d.approver))
    return `${d.approver} has already decided on this request`;
  if (d.reject && !d.reason?.trim()) return 'a rejection needs a reason';
  return undefined;
}

/** The record a valid decision adds. */
export function approvalRecord(raw: unknown, at: Date): ApprovalRecord {
  const d = approvalDecisionSchema.parse(raw);
  const comment = d.reject ? d.reason : (d.comment ?? d.reason);
  return {
    approver: d.approver,
    decision: d.reject ? 'rejected' : 'approved',
    at: at.toISOString(),
    ...(comment ? { comment } : {}),
  };
}

/** The outcome once decisions are in: a rejection ends it, minApprovals distinct approvals pass it. */
export function approvalOutcome(state: ApprovalState): ApprovalOutcome | undefined {
  if (state.decisions.some((d) => d.decision === 'rejected')) return 'rejected';
  const approvals = new Set(state.decisions.filter((d) => d.decision === 'approved').map((d) => d.approver));
  return approvals.size >= state.policy.minApprovals ? 'approved' : undefined;
}

/** One line for the CLI and the Web UI: who approved, who is still needed. */
export function describeApprovals(state: ApprovalState): string {
  const approved = state.decisions.filter((d) => d.decision === 'approved').map((d) => d.approver);
  const rejected = state.decisions.find((d) => d.decision === 'rejected');
  if (rejected) return `rejected by ${rejected.approver}: ${rejected.comment ?? ''}`.trim();
  return `${approved.length} of ${state.policy.minApprovals} approvals${approved.length ? ` (${approved.join(', ')})` : ''}`;
}
