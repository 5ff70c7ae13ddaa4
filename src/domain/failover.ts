// Regional failover: its input, its phases and steps, and the figures it reports. Pure, shared by
// the workflow (which decides) and the CLI (which shows progress).
import { z } from 'zod';
import type { ApprovalState } from './approval.ts';
import { parseDuration } from './duration.ts';

export const failoverInputSchema = z.strictObject({
  database: z.string().min(1),
  /** The region whose replica becomes the primary. */
  targetRegion: z.string().min(1),
  reason: z.string().trim().min(1).max(2000),
  requestedBy: z.string().trim().min(1).max(200),
  /**
   * A planned switchover: the source is healthy and is fenced first; promotion waits until the
   * target has replayed the source's final LSN, so nothing is lost. No detection wait.
   */
  planned: z.boolean().default(false),
  /** Proceed with an unplanned failover although detection found the source healthy. */
  force: z.boolean().default(false),
  /** Wait less than the policy's approval timeout (never longer). */
  approvalTimeout: z
    .string()
    .refine((s) => parseDuration(s) !== undefined, 'expected a duration such as 30s or 10m')
    .optional(),
});
export type FailoverInput = z.input<typeof failoverInputSchema>;
export type ParsedFailoverInput = z.output<typeof failoverInputSchema>;

/**
 * Where the failover coordinator is (`reattaching`: after a planned switchover is verified, the old
 * primary is rewound and re-attached as a streaming replica of the new one). Each phase is a state an operator may find it in:
 * - `validating`: input and plan checked; which region holds the primary now is established.
 * - `detecting`: N consecutive health checks of the source, from the target region.
 * - `awaiting-approval`: the approval gate is open; the measured lag is in the request.
 * - `fencing`: the old primary, if reachable, is made to refuse writes; a fencing epoch is recorded.
 * - `promoting`: the target replica catches up as far as it can, then `pg_promote()`.
 * - `switching-dns`: the plan's records are UPSERTed to the target's values and read back in sync.
 * - `moving-traffic`: deployments scaled up in the target, down in the source; endpoint updated.
 * - `verifying`: write-and-read probe on the new primary, the target's health checks, DNS.
 * - `compensating`: a failure or cancellation before promotion is being undone.
 * - `completed`: verified; RTO and RPO are in the result.
 * - `stopped`: ended without failing over (source healthy, not approved, rejected, compensated).
 * - `failed`: a step after promotion could not finish; the operator actions say what to do.
 */
export type FailoverPhase =
  | 'validating'
  | 'detecting'
  | 'awaiting-approval'
  | 'fencing'
  | 'promoting'
  | 'switching-dns'
  | 'moving-traffic'
  | 'verifying'
  | 'reattaching'
  | 'compensating'
  | 'completed'
  | 'stopped'
  | 'failed';

export const FAILOVER_STEPS = ['detect', 'promote', 'dns', 'traffic', 'verify'] as const;
export type FailoverStepName = (typeof FAILOVER_STEPS)[number];

export interface StepProgress {
  name: FailoverStepName;
  state: 'pending' | 'running' | 'done' | 'skipped' | 'failed';
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
  detail?: string;
}

export type FailoverOutcome =
  | 'failed-over'
  | 'switched-over'
  | 'source-healthy'
  | 'not-approved'
  | 'rejected'
  | 'compensated'
  | 'failed-after-promotion';

export interface ReplicationLag {
  /** Bytes of WAL the source wrote that the target had not replayed; null when the source is unreachable. */
  bytes: number | null;
  /** Seconds since the target replayed its last transaction (null when it never did). */
  lastReplaySeconds: number | null;
  sourceLsn?: string;
  targetReplayLsn?: string;
  targetReceiveLsn?: string;
}

export interface FencingRecord {
  /** Whether the old primary was reached and made read-only. */
  fenced: boolean;
  /** Fencing epoch recorded in the database (`lifeboat.failover_epochs`); increases with each failover. */
  epoch?: number;
  /** The old primary's WAL position once it refused writes: promotion waits for it when it can. */
  finalLsn?: string;
  detail: string;
}

export interface FailoverProgress {
  workflowId: string;
  database: string;
  sourceRegion?: string;
  targetRegion: string;
  planned: boolean;
  phase: FailoverPhase;
  steps: StepProgress[];
  startedAt: string;
  lag?: ReplicationLag;
  fencing?: FencingRecord;
  approval?: ApprovalState;
  /** The point of no return: once set, nothing is compensated automatically. */
  promotedAt?: string;
  /** Planned switchover: the old primary re-attached as a streaming replica of the new one. */
  reattach?: { ok: boolean; detail: string };
  outcome?: FailoverOutcome;
  message?: string;
}

export interface FailoverResult extends FailoverProgress {
  outcome: FailoverOutcome;
  /** Milliseconds from the start of detection (or of the run, when planned) to verified. */
  rtoMs?: number;
  /** Estimated data at risk, from the lag measured before promotion. */
  rpo?: { bytes: number | null; seconds: number | null; estimate: string };
  /** What an operator must still do by hand. */
  operatorActions: string[];
}

export function initialSteps(): StepProgress[] {
  return FAILOVER_STEPS.map((name) => ({ name, state: 'pending' }));
}

/** The RPO estimate from the lag measured before promotion (and the catch-up that followed). */
export function rpoEstimate(
  lag: ReplicationLag | undefined,
  caughtUp: boolean,
): NonNullable<FailoverResult['rpo']> {
  if (caughtUp)
    return {
      bytes: 0,
      seconds: 0,
      estimate: 'none: the target replayed the fenced source to its final LSN',
    };
  if (!lag) return { bytes: null, seconds: null, estimate: 'unknown: lag was not measured' };
  if (lag.bytes !== null)
    return {
      bytes: lag.bytes,
      seconds: lag.lastReplaySeconds,
      estimate: `up to ${lag.bytes} bytes of WAL not replayed by the target`,
    };
  return {
    bytes: null,
    seconds: lag.lastReplaySeconds,
    estimate:
      lag.lastReplaySeconds === null
        ? 'unknown: the source was unreachable and the target never replayed a transaction'
        : `unknown bytes (source unreachable); the target's last replayed transaction was ${lag.lastReplaySeconds.toFixed(1)}s before promotion`,
  };
}

/** What the operator must do once the target was promoted: there is no automatic way back. */
export function afterPromotionActions(database: string, source: string, target: string): string[] {
  return [
    `Never start the old primary in ${source} as a primary again: it would be a second, diverged primary (split-brain).`,
    `Rebuild ${database}@${source} as a streaming replica of ${target}: pg_rewind against the new primary (or a fresh pg_basebackup), standby.signal, primary_conninfo pointing at ${target}, then start it.`,
    `Then a planned switchback is: lifeboat failover --database ${database} --to ${source} --planned --reason "switchback"`,
    `Update the plan (databases.${database}.primaryRegion: ${target}, replicas) so doctor and backups follow the new primary.`,
  ];
}
