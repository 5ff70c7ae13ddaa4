// The DR drill report: what a drill did and measured, as written (write-once) into the repository
// under drills/<database>/<drill id>/report.json beside its HTML rendering. It is the evidence an
// auditor reads, long after Temporal's retention has dropped the history, so it says everything
// itself: who asked, which backup chain, every phase with its times, targets against measured,
// every validation, and that the scratch instance was torn down. `lifeboat drill report` and
// `lifeboat compliance` read it back through drillReportSchema.
import { z } from 'zod';

/** Recovery objectives per tier, in milliseconds (tier 1 RTO < 15 min, RPO < 5 min … tier 5). */
export const TIER_TARGETS: Record<number, { rtoMs: number; rpoMs: number }> = {
  1: { rtoMs: 15 * 60_000, rpoMs: 5 * 60_000 },
  2: { rtoMs: 60 * 60_000, rpoMs: 15 * 60_000 },
  3: { rtoMs: 4 * 3600_000, rpoMs: 3600_000 },
  4: { rtoMs: 24 * 3600_000, rpoMs: 4 * 3600_000 },
  5: { rtoMs: 72 * 3600_000, rpoMs: 24 * 3600_000 },
};

export function tierTargets(tier: number): { rtoMs: number; rpoMs: number } {
  const t = TIER_TARGETS[tier];
  if (!t) throw new Error(`tier ${tier} is not 1…5`);
  return t;
}

/**
 * The phases of a drill, in order. `restoring` covers resolve, download and replay; `comparing`
 * is the data comparison with the source; `tearing-down` always runs. A failover drill adds
 * `switching-over` and `switching-back` instead of the restore phases.
 */
export const DRILL_PHASES = [
  'preparing',
  'restoring',
  'validating',
  'comparing',
  'switching-over',
  'switching-back',
  'tearing-down',
  'reporting',
] as const;
export type DrillPhase = (typeof DRILL_PHASES)[number];

const isoTime = z.iso.datetime({ offset: true });
const verdict = z.enum(['met', 'missed', 'unknown']);

const phaseRecord = z.strictObject({
  name: z.enum(DRILL_PHASES),
  startedAt: isoTime,
  /** Null when the phase never ended (the drill was cancelled or failed in it). */
  endedAt: isoTime.nullable(),
  outcome: z.enum(['completed', 'failed', 'cancelled']),
  detail: z.string().default(''),
});

const check = z.strictObject({ name: z.string(), ok: z.boolean(), detail: z.string() });

const tableComparison = z.strictObject({
  table: z.string(),
  sourceRows: z.number().int().nonnegative().nullable(),
  restoredRows: z.number().int().nonnegative().nullable(),
  sourceChecksum: z.string().nullable(),
  restoredChecksum: z.string().nullable(),
  ok: z.boolean(),
  detail: z.string().default(''),
});

export const drillReportSchema = z.strictObject({
  /** Report format version: a reader refuses what it does not know instead of guessing. */
  version: z.literal(1),
  drillId: z.string().min(1),
  workflowId: z.string().min(1),
  runId: z.string().min(1),
  /** Link to the run in the Temporal Web UI (null when the UI address is unknown to the worker). */
  webUiUrl: z.string().nullable(),
  plan: z.strictObject({ name: z.string(), environment: z.enum(['production', 'staging', 'development']) }),
  database: z.string().min(1),
  region: z.string().min(1),
  mode: z.enum(['restore', 'failover']),
  requestedBy: z.string().nullable(),
  /** The restore target asked for (`latest`, a time, `lsn:…`, `name:…`); null for failover drills. */
  target: z.string().nullable(),
  startedAt: isoTime,
  endedAt: isoTime,
  outcome: z.enum(['passed', 'failed', 'cancelled']),
  /** Why the drill did not pass, each reason a sentence an auditor can read; empty when passed. */
  reasons: z.array(z.string()),
  tier: z.number().int().min(1).max(5),
  targets: z.strictObject({ rtoMs: z.number().int().positive(), rpoMs: z.number().int().positive() }),
  measured: z.strictObject({
    /** Request to validated instance (restore drill) or the switchover's RTO (failover drill). */
    rtoMs: z.number().int().nonnegative().nullable(),
    /** Source's last commit when the drill started minus the restored instance's last transaction. */
    rpoMs: z.number().int().nonnegative().nullable(),
    /** RTO by phase (download, start, replay, validate… or switchover, switchback). */
    rtoBreakdownMs: z.record(z.string(), z.number().int().nonnegative()),
  }),
  verdicts: z.strictObject({ rto: verdict, rpo: verdict }),
  phases: z.array(phaseRecord),
  source: z.strictObject({ lastCommitTime: isoTime.nullable(), lsn: z.string() }).nullable(),
  restore: z
    .strictObject({
      restoreWorkflowId: z.string(),
      backupId: z.string(),
      backupTime: isoTime,
      firstSegment: z.string(),
      lastSegment: z.string(),
      archiveEndLsn: z.string(),
      achievedLsn: z.string(),
      lastTransactionTime: isoTime.nullable(),
      timeline: z.number().int().positive(),
      reachedEndOfArchive: z.boolean(),
    })
    .nullable(),
  validation: z.array(check),
  comparisons: z.array(tableComparison),
  failover: z
    .strictObject({
      switchover: z.strictObject({
        workflowId: z.string(),
        outcome: z.string(),
        rtoMs: z.number().nullable(),
      }),
      switchback: z
        .strictObject({ workflowId: z.string(), outcome: z.string(), rtoMs: z.number().nullable() })
        .nullable(),
    })
    .nullable(),
  /** The scratch instance's end: always attempted; `done` false means something is left and says what. */
  teardown: z.strictObject({ done: z.boolean(), detail: z.string() }),
});

export type DrillReport = z.output<typeof drillReportSchema>;
export type DrillPhaseRecord = DrillReport['phases'][number];
export type DrillTableComparison = DrillReport['comparisons'][number];

/** A verdict against a target: unknown when nothing was measured. */
export function judge(measuredMs: number | null, targetMs: number): 'met' | 'missed' | 'unknown' {
  if (measuredMs === null) return 'unknown';
  return measuredMs < targetMs ? 'met' : 'missed';
}
