// The approval gate, shared by every workflow that needs a human decision before a step it cannot
// undo. Decisions arrive as the Update `approve` (validated and answered: a refused approver hears
// why and nothing enters history) or as the Signal `approve` for tools that can only signal (a
// refused signal is kept in the state's `refused` list, since a signal cannot be answered).
// Every accepted decision is in history: that is the audit trail.
import { condition, defineQuery, defineSignal, defineUpdate, log, setHandler } from '@temporalio/workflow';
import {
  approvalOutcome,
  approvalRecord,
  approvalRefusal,
  type ApprovalDecisionInput,
  type ApprovalOutcome,
  type ApprovalPolicy,
  type ApprovalState,
} from '../domain/approval.ts';
import { auditApprovalGate } from './audit-trail.ts';

/** Approve or reject: `{"approver": "bob"}` or `{"approver": "bob", "reject": true, "reason": "…"}`. */
export const approveUpdate = defineUpdate<ApprovalState, [ApprovalDecisionInput]>('approve');
/** The same decision for tools that can only signal. */
export const approveSignal = defineSignal<[ApprovalDecisionInput]>('approve');
/** The gate's state: who decided, what is asked, until when. */
export const approvalQuery = defineQuery<ApprovalState & { refused: string[] }>('approval');

export class ApprovalGate {
  readonly state: ApprovalState;
  /** Signals refused by the validator's rules, with why: a signal has no one to answer. */
  readonly refused: string[] = [];

  constructor(requestedBy: string, policy: ApprovalPolicy) {
    this.state = { waiting: false, requestedBy, policy, decisions: [] };
    // The run's audit record lists every decision with its name and time (no command: replay-safe).
    auditApprovalGate(this.state, this.refused);
    setHandler(approveUpdate, (decision) => this.#accept(decision), {
      validator: (decision) => {
        const refusal = approvalRefusal(this.state, decision);
        if (refusal) throw new Error(refusal);
      },
      description:
        'Approve or reject the pending request: {"approver": "bob"[, "reject": true, "reason": "…"]}',
    });
    setHandler(
      approveSignal,
      (decision) => {
        const refusal = approvalRefusal(this.state, decision);
        if (refusal) {
          log.warn(`approval signal refused: ${refusal}`);
          this.refused.push(refusal);
          return;
        }
        this.#accept(decision);
      },
      { description: 'Signal alias of the approve Update (refusals are listed by the approval query)' },
    );
    setHandler(approvalQuery, () => ({ ...this.state, refused: this.refused }));
  }

  /**
   * Opens the gate and waits for the policy's decision or the timeout. `onOpen` runs once the
   * gate accepts decisions (to notify approvers).
   */
  async decide(opts: {
    request: string;
    timeoutMs: number;
    onOpen?: () => Promise<void>;
  }): Promise<ApprovalOutcome> {
    this.state.request = opts.request;
    this.state.deadline = new Date(Date.now() + opts.timeoutMs).toISOString();
    this.state.waiting = true;
    await opts.onOpen?.();
    const decided = await condition(() => approvalOutcome(this.state) !== undefined, opts.timeoutMs);
    this.state.waiting = false;
    this.state.outcome = decided ? approvalOutcome(this.state)! : 'not-approved';
    return this.state.outcome;
  }

  /** Records that no human was needed (policy allows it), so the query still explains why. */
  automatic(request: string): ApprovalOutcome {
    this.state.request = request;
    this.state.outcome = 'automatic';
    return 'automatic';
  }

  #accept(decision: ApprovalDecisionInput): ApprovalState {
    this.state.decisions.push(approvalRecord(decision, new Date()));
    return { ...this.state };
  }
}
