// A restore drill as data: its input (the contract `lifeboat drill` and `lifeboat apply` start it
// with), the progress it shows, and the pure judgements it makes — which tables it compares,
// what RPO and RTO it measured, and why it did not pass. The report it writes is drill-report.ts.
import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { lsnDistance } from './lsn.ts';
import type { DrillPhase, DrillReport, DrillTableComparison } from './drill-report.ts';
import { tierTargets } from './drill-report.ts';
import type { Plan } from './plan.ts';
import { parseRestoreTarget } from './restore.ts';

export const drillInputSchema = z.strictObject({
  /** A database of the plan. */
  database: z.string().min(1),
  /** The DR region whose worker restores into a scratch instance. */
  region: z.string().min(1),
  /** As `lifeboat restore --to` takes it; `latest` restores to the source's position at drill start. */
  target: z
    .string()
    .min(1)
    .default('latest')
    .refine((t) => parseRestoreTarget(t).ok, {
      message: 'expected an ISO-8601 time with offset, lsn:<LSN>, name:<restore point> or latest',
    }),
  requestedBy: z.string().min(1).max(200).optional(),
  /** The plan's drill policy this run belongs to (its compareTables); none: no table comparison. */
  policy: z.string().min(1).optional(),
  /**
   * `restore` (a scratch instance) or `failover`: a planned switchover of the live primary to
   * `region` and back, each through regionalFailoverWorkflow and its approval gate.
   */
  mode: z.enum(['restore', 'failover']).default('restore'),
  /** A failover drill against a plan marked production: the operator said they mean it. */
  acknowledgeProduction: z.boolean().default(false),
});
export type DrillInput = z.input<typeof drillInputSchema>;
export type DrillOptions = z.output<typeof drillInputSchema>;

/** Row count and checksum of one table, as one side of a comparison sees it. */
export interface TableDigest {
  table: string;
  /** Null when the table does not exist on that side. */
  rows: number | null;
  checksum: string | null;
  detail?: string;
}

/** The source primary at drill start, read in one REPEATABLE READ snapshot. */
export interface SourceSnapshot {
  /** pg_current_wal_insert_lsn() inside the snapshot: the restore stops just before it. */
  lsn: string;
  /** pg_last_committed_xact(); null when track_commit_timestamp is off (or nothing committed). */
  lastCommitTime: string | null;
  trackCommitTimestamp: boolean;
  /** The server's clock inside the snapshot. */
  at: string;
  region: string;
  tables: TableDigest[];
}

/** Where the scratch instance lives on the DR region's worker. */
export interface Scratch {
  /** Removed whole at teardown: holds the data directory and its sidecar. */
  root: string;
  dataDir: string;
  port: number;
}

export interface DrillProgress {
  drillId: string;
  database: string;
  region: string;
  target: string;
  phase: DrillPhase | 'completed';
  phaseSince: string;
  startedAt: string;
  restoreWorkflowId?: string;
  /** Failover drill: the switchover's or switchback's workflow (approve it with `lifeboat approve`). */
  failoverWorkflowId?: string;
  scratch?: Scratch;
  /** Set once the drill is over. */
  outcome?: DrillReport['outcome'];
  error?: string;
}

/**
 * The one rule for what a database must meet: the plan's own objectives, else its tier's.
 * `fromPlan` says whether the plan states either objective (compliance names where targets came from).
 */
export function databaseObjectives(db: Plan['databases'][string]): {
  tier: number;
  rtoMs: number;
  rpoMs: number;
  fromPlan: boolean;
} {
  const tier = tierTargets(db.tier);
  const rto = db.objectives?.rto ? parseDuration(db.objectives.rto) : undefined;
  const rpo = db.objectives?.rpo ? parseDuration(db.objectives.rpo) : undefined;
  return {
    tier: db.tier,
    rtoMs: rto ?? tier.rtoMs,
    rpoMs: rpo ?? tier.rpoMs,
    fromPlan: rto !== undefined || rpo !== undefined,
  };
}

/** The recovery objectives a drill is judged against (kept to these three fields: drill reports carry them). */
export function drillTargets(plan: Plan, database: string): { rtoMs: number; rpoMs: number; tier: number } {
  const { tier, rtoMs, rpoMs } = databaseObjectives(plan.databases[database]!);
  return { tier, rtoMs, rpoMs };
}

/** The drill policy named by the input, or a problem in words. */
export function drillPolicyOf(
  plan: Plan,
  input: DrillOptions,
): { ok: true; policy?: Plan['drills']['policies'][number] } | { ok: false; problem: string } {
  if (!input.policy) return { ok: true };
  const policy = plan.drills.policies.find((p) => p.name === input.policy);
  if (!policy)
    return {
      ok: false,
      problem: `drill policy "${input.policy}" is not in the plan; declared: ${plan.drills.policies.map((p) => p.name).join(', ') || 'none'}`,
    };
  if (policy.database !== input.database)
    return {
      ok: false,
      problem: `drill policy "${policy.name}" is for ${policy.database}, not ${input.database}`,
    };
  return { ok: true, policy };
}

/**
 * RPO: the source's last commit at drill start minus the restored instance's last transaction.
 * When the restore replayed everything before the source's drill-start LSN, nothing committed
 * before the drill started is missing, whatever the clocks say. Without commit timestamps on the
 * source, the drill-start clock stands in for its last commit: an upper bound, said so.
 */
export function measureRpo(input: {
  source: SourceSnapshot;
  restoredLastTransaction: string | null;
  backupTime: string;
  /** The restore replayed every WAL record before source.lsn. */
  reachedSourceLsn: boolean;
}): { rpoMs: number; detail: string } {
  const restored = input.restoredLastTransaction ?? input.backupTime;
  const restoredWhat = input.restoredLastTransaction
    ? `the restored instance's last transaction (${restored})`
    : `the backup's end (${restored}; no transaction was replayed after it)`;
  if (input.reachedSourceLsn) {
    if (input.source.lastCommitTime) {
      const gap = Math.max(0, Date.parse(input.source.lastCommitTime) - Date.parse(restored));
      return {
        rpoMs: gap,
        detail: `every WAL record before the source's drill-start lsn ${input.source.lsn} was replayed; the source's last commit (${input.source.lastCommitTime}) minus ${restoredWhat} is ${gap} ms`,
      };
    }
    return {
      rpoMs: 0,
      detail: `every WAL record before the source's drill-start lsn ${input.source.lsn} was replayed, so no commit before the drill started is missing (track_commit_timestamp is off on the source: no commit time to compare)`,
    };
  }
  if (input.source.lastCommitTime) {
    const gap = Math.max(0, Date.parse(input.source.lastCommitTime) - Date.parse(restored));
    return {
      rpoMs: gap,
      detail: `the archive ends before the source's drill-start lsn ${input.source.lsn}; the source's last commit (${input.source.lastCommitTime}) minus ${restoredWhat} is ${gap} ms`,
    };
  }
  const gap = Math.max(0, Date.parse(input.source.at) - Date.parse(restored));
  return {
    rpoMs: gap,
    detail: `the archive ends before the source's drill-start lsn ${input.source.lsn}; track_commit_timestamp is off on the source, so the drill's start (${input.source.at}) stands in for its last commit: ${gap} ms is an upper bound`,
  };
}

/** Source against restored, table by table: equal only when both row count and checksum are. */
export function compareDigests(
  source: TableDigest[],
  restored: TableDigest[],
  comparable: { ok: true } | { ok: false; why: string },
): DrillTableComparison[] {
  return source.map((s) => {
    const r = restored.find((x) => x.table === s.table);
    const base = {
      table: s.table,
      sourceRows: s.rows,
      restoredRows: r?.rows ?? null,
      sourceChecksum: s.checksum,
      restoredChecksum: r?.checksum ?? null,
    };
    if (!comparable.ok) return { ...base, ok: false, detail: `not compared: ${comparable.why}` };
    if (s.rows === null) return { ...base, ok: false, detail: s.detail ?? 'missing on the source' };
    if (!r || r.rows === null)
      return { ...base, ok: false, detail: r?.detail ?? 'missing on the restored instance' };
    const ok = s.rows === r.rows && s.checksum === r.checksum;
    return {
      ...base,
      ok,
      detail: ok
        ? `${s.rows} rows, checksums equal`
        : s.rows !== r.rows
          ? `${s.rows} rows on the source, ${r.rows} restored`
          : 'same row count, checksums differ',
    };
  });
}

/** Whether the restored point is the point the source's checksums were taken at. */
export function comparability(input: {
  target: string;
  restoredToSourceLsn: boolean;
  achievedLsn: string;
  sourceLsn: string;
}): { ok: true } | { ok: false; why: string } {
  if (input.target !== 'latest')
    return {
      ok: false,
      why: `the drill restored to ${input.target}, not to the source's drill-start lsn ${input.sourceLsn}, where its checksums were taken`,
    };
  if (!input.restoredToSourceLsn)
    return {
      ok: false,
      why: `the archive ends before the source's drill-start lsn ${input.sourceLsn} (restored to ${input.achievedLsn}, ${lsnDistance(input.sourceLsn, input.achievedLsn)} bytes short)`,
    };
  return { ok: true };
}

/**
 * Why a failover drill may not run, every reason: it moves the live primary, so it needs the
 * plan's failover policy with a human approval gate, a replica region to move to, and — against a
 * plan marked production — the operator's explicit acknowledgement.
 */
export function failoverDrillProblems(plan: Plan, input: DrillOptions): string[] {
  const problems: string[] = [];
  const db = plan.databases[input.database];
  if (!db) return [`database "${input.database}" is not in the plan`];
  if (input.target !== 'latest') problems.push('a failover drill has no restore target (--to)');
  if (input.region === db.primaryRegion)
    problems.push(
      `${input.region} is ${input.database}'s primary region: a failover drill switches over to a replica region and back`,
    );
  else if (!db.replicas.some((r) => r.region === input.region))
    problems.push(`${input.region} holds no replica of ${input.database} to switch over to`);
  const policy = plan.failover.policies.find((p) => p.database === input.database);
  if (!policy) problems.push(`no failover policy for ${input.database} in the plan`);
  if (plan.environment === 'production') {
    if (!input.acknowledgeProduction)
      problems.push(
        `plan "${plan.name}" is marked production: a failover drill moves its live primary; pass --i-understand-this-is-production to run it`,
      );
    if (policy && policy.approval.mode !== 'required')
      problems.push(
        `plan "${plan.name}" is marked production and ${input.database}'s failover approval is ${policy.approval.mode}: a failover drill there needs a human approval (mode: required)`,
      );
  }
  return problems;
}

/** Every reason the drill did not pass, each a sentence. */
export function drillReasons(r: {
  restoreError?: string;
  validation: DrillReport['validation'];
  comparisons: DrillReport['comparisons'];
  measured: DrillReport['measured'];
  targets: DrillReport['targets'];
  verdicts: DrillReport['verdicts'];
  teardown: DrillReport['teardown'];
}): string[] {
  const reasons: string[] = [];
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  if (r.restoreError) reasons.push(`The restore did not complete: ${r.restoreError}.`);
  for (const v of r.validation.filter((x) => !x.ok))
    reasons.push(`Validation "${v.name}" failed: ${v.detail}.`);
  for (const c of r.comparisons.filter((x) => !x.ok))
    reasons.push(
      c.detail.startsWith('not compared')
        ? `Table ${c.table} could not be compared with the source (${c.detail}).`
        : `Table ${c.table} does not match the source: ${c.detail}.`,
    );
  if (r.verdicts.rto === 'missed')
    reasons.push(`RTO ${s(r.measured.rtoMs!)} missed the target of ${s(r.targets.rtoMs)}.`);
  if (r.verdicts.rto === 'unknown') reasons.push('RTO was not measured: the restore did not complete.');
  if (r.verdicts.rpo === 'missed')
    reasons.push(`RPO ${s(r.measured.rpoMs!)} missed the target of ${s(r.targets.rpoMs)}.`);
  if (r.verdicts.rpo === 'unknown') reasons.push('RPO was not measured: the restore did not complete.');
  if (!r.teardown.done) reasons.push(`The scratch instance was not fully torn down: ${r.teardown.detail}.`);
  return reasons;
}

/** The Web UI's summary of a drill (also what `lifeboat drill` prints). */
export function summarizeDrill(r: DrillReport): string {
  const s = (ms: number | null) => (ms === null ? 'not measured' : `${(ms / 1000).toFixed(1)} s`);
  return [
    `drill of ${r.database} in ${r.region} (${r.target ?? r.mode}): ${r.outcome.toUpperCase()}`,
    `RTO ${s(r.measured.rtoMs)} (target ${s(r.targets.rtoMs)}, ${r.verdicts.rto}); RPO ${s(r.measured.rpoMs)} (target ${s(r.targets.rpoMs)}, ${r.verdicts.rpo})`,
    ...(r.comparisons.length
      ? [`tables: ${r.comparisons.filter((c) => c.ok).length}/${r.comparisons.length} match the source`]
      : []),
    `teardown: ${r.teardown.done ? 'done' : 'INCOMPLETE'} — ${r.teardown.detail}`,
    ...r.reasons.map((x) => `- ${x}`),
  ].join('\n');
}
