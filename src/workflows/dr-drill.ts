// DR drill: proof that a database restores, with measured RTO and RPO against its targets.
// preparing  — the source primary's commit time, WAL position and table digests in one snapshot;
//              a scratch directory and port on the DR region's worker, apart from the live replica;
//              with target `latest`, the archive given a moment to reach the snapshot's position.
// restoring  — the point-in-time restore workflow as a child, into the scratch directory/port.
// validating — the restore's own validation results (the plan's queries, connections, writes).
// comparing  — row counts and checksums, source snapshot against the restored instance.
// tearing-down — always, even when cancelled: the scratch server stopped, its folder deleted.
// reporting  — report.json and report.html, write-once, under drills/<database>/<drill id>/.
import {
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  executeChild,
  isCancellation,
  metricMeter,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import {
  compareDigests,
  comparability,
  drillInputSchema,
  drillPolicyOf,
  drillReasons,
  drillTargets,
  failoverDrillProblems,
  measureRpo,
  summarizeDrill,
  type DrillInput,
  type DrillOptions,
  type DrillProgress,
  type Scratch,
  type SourceSnapshot,
} from '../domain/drill.ts';
import {
  judge,
  type DrillPhase,
  type DrillPhaseRecord,
  type DrillReport,
  type DrillTableComparison,
} from '../domain/drill-report.ts';
import { parseDuration } from '../domain/duration.ts';
import { NON_RETRYABLE_ERROR_TYPES } from '../domain/errors.ts';
import type { FailoverResult } from '../domain/failover.ts';
import { workflowIds } from '../domain/naming.ts';
import { regionTaskQueue, type Plan } from '../domain/plan.ts';
import { repository } from '../domain/repository.ts';
import type { RestoreResult } from '../domain/restore.ts';
import { searchAttributeKeys } from '../domain/search-attributes.ts';
import { parseWorkflowInput } from './input.ts';
import type { pointInTimeRestoreWorkflow } from './point-in-time-restore.ts';
import type { regionalFailoverWorkflow } from './regional-failover.ts';

/** Storage listings, report writes, short server calls. */
const apiCall = {
  startToCloseTimeout: '2m',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 6,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
} as const;

/** Table digests read whole tables; teardown waits for a server to stop. */
const tableScan = { ...apiCall, startToCloseTimeout: '30m' } as const;

/** Waiting this long for a worker of a region fails the step, saying so. */
const NO_WORKER_AFTER = '10m';
/** How often the archive is asked whether it reaches the drill's start point. */
const ARCHIVE_POLL = '3s';

const { describePlan, drillWebUiUrl, drillArchiveReach, writeDrillReport } =
  proxyActivities<Activities>(apiCall);

function regionActivities(plan: Plan, region: string) {
  return proxyActivities<Activities>({
    ...tableScan,
    taskQueue: regionTaskQueue(plan, region),
    scheduleToStartTimeout: NO_WORKER_AFTER,
  });
}

/** Phase, scratch instance and restore child, for `lifeboat status` / `lifeboat drill`. */
export const drillProgressQuery = defineQuery<DrillProgress>('progress');

export async function drDrillWorkflow(rawInput: DrillInput): Promise<DrillReport> {
  const input = parseWorkflowInput(drillInputSchema, rawInput ?? {}, 'drDrillWorkflow');
  const info = workflowInfo();
  const drillId = info.workflowId;
  const requestedAt = info.startTime.getTime();
  const iso = (ms: number) => new Date(ms).toISOString();
  const state: DrillProgress = {
    drillId,
    database: input.database,
    region: input.region,
    target: input.target,
    phase: 'preparing',
    phaseSince: iso(requestedAt),
    startedAt: iso(requestedAt),
  };
  setHandler(drillProgressQuery, () => state);
  upsertSearchAttributes([
    { key: searchAttributeKeys.kind, value: 'drill' },
    { key: searchAttributeKeys.database, value: input.database },
    { key: searchAttributeKeys.region, value: input.region },
    ...(input.requestedBy ? [{ key: searchAttributeKeys.requestedBy, value: input.requestedBy }] : []),
  ]);

  const plan = await describePlan();
  const refuse = (message: string): never => {
    upsertSearchAttributes([{ key: searchAttributeKeys.outcome, value: 'failed' }]);
    setCurrentDetails(`**refused** — ${message}`);
    throw ApplicationFailure.create({ type: 'InvalidInput', nonRetryable: true, message });
  };
  const db = plan.databases[input.database];
  if (!db)
    return refuse(
      `database "${input.database}" is not in the plan; declared: ${Object.keys(plan.databases).join(', ')}`,
    );
  if (!plan.regions[input.region])
    return refuse(
      `region "${input.region}" is not in the plan; declared: ${Object.keys(plan.regions).join(', ')}`,
    );
  const policy = drillPolicyOf(plan, input);
  if (!policy.ok) return refuse(policy.problem);
  const targets = drillTargets(plan, input.database);
  const dr = regionActivities(plan, input.region);
  const sourceRegion = db.primaryRegion;
  const src = regionActivities(plan, sourceRegion);

  // The drill's record, built as it goes: the report is its final form.
  const phases: DrillPhaseRecord[] = [];
  const open = (name: DrillPhase, detail: string) => {
    phases.push({ name, startedAt: iso(Date.now()), endedAt: null, outcome: 'completed', detail });
    state.phase = name;
    state.phaseSince = iso(Date.now());
    setCurrentDetails(
      `**${name}** — ${detail}\n\ntargets: RTO ${secs(targets.rtoMs)}, RPO ${secs(targets.rpoMs)}`,
    );
  };
  const close = (outcome: DrillPhaseRecord['outcome'], detail?: string) => {
    const p = phases.at(-1);
    if (!p || p.endedAt !== null) return;
    p.endedAt = iso(Date.now());
    p.outcome = outcome;
    if (detail !== undefined) p.detail = detail;
  };
  const openPhaseEnds = (outcome: 'failed' | 'cancelled', err: unknown) => {
    const p = phases.at(-1);
    if (p && p.endedAt === null) {
      // A cancelled or failed phase never ended: endedAt stays null, as the report's contract says.
      p.outcome = outcome;
      p.detail = `${p.detail}; ${outcome}: ${messageOf(err)}`;
    }
  };

  if (input.mode === 'failover') {
    const problems = failoverDrillProblems(plan, input);
    if (problems.length) return refuse(`failover drill refused: ${problems.join('; ')}`);
  }
  const webUiUrl = await drillWebUiUrl({ workflowId: drillId });
  if (input.mode === 'failover')
    return failoverDrill({ input, plan, webUiUrl, targets, state, phases, open, close, openPhaseEnds });
  let source: SourceSnapshot | undefined;
  let scratch: Scratch | undefined;
  let restored: RestoreResult | undefined;
  let restoreError: string | undefined;
  let restoreWorkflowId: string | undefined;
  let restoredToSourceLsn = false;
  let archiveWaitMs = 0;
  let preparingMs = 0;
  let validatedAt: number | undefined;
  let rpo: { rpoMs: number; detail: string } | undefined;
  let comparisons: DrillTableComparison[] = [];
  let cancelled: Error | undefined;
  let failure: unknown;

  try {
    open(
      'preparing',
      `snapshot of ${input.database} on its primary in ${sourceRegion}; scratch instance in ${input.region}`,
    );
    const compareTables = policy.policy?.compareTables ?? [];
    source = await src.captureDrillSource({
      database: input.database,
      region: sourceRegion,
      tables: compareTables,
      allTables: policy.policy?.compareAllTables ?? false,
    });
    scratch = await dr.prepareDrillScratch({ drillId, database: input.database, region: input.region });
    state.scratch = scratch;
    let restoreTarget = input.target;
    let archiveNote = '';
    if (input.target === 'latest') {
      // The archive trails the primary by up to one partial-upload interval: give it that (twice,
      // and a margin) to reach the snapshot's position, so the restore stops exactly there.
      const backupPolicy = plan.backup.policies.find((p) => p.database === input.database);
      const budget = 2 * (parseDuration(backupPolicy?.walPartialUpload ?? '60s') ?? 60_000) + 15_000;
      const waitStarted = Date.now();
      let reach = await drillArchiveReach({ database: input.database, lsn: source.lsn });
      while (!reach.reaches && Date.now() - waitStarted < budget) {
        await sleep(ARCHIVE_POLL);
        reach = await drillArchiveReach({ database: input.database, lsn: source.lsn });
      }
      archiveWaitMs = Date.now() - waitStarted;
      if (reach.reaches) {
        restoreTarget = `lsn:${source.lsn}`;
        restoredToSourceLsn = true;
        archiveNote = `the archive reached the snapshot's lsn ${source.lsn} after ${secs(archiveWaitMs)} (excluded from RTO)`;
      } else
        archiveNote = `the archive did not reach the snapshot's lsn ${source.lsn} within ${secs(budget)} (it ends at ${reach.archiveEndLsn ?? 'nothing'}): restoring to the end of the archive`;
    }
    state.target = restoreTarget;
    const tracking = source.trackCommitTimestamp
      ? `last commit ${source.lastCommitTime ?? 'none since the server started'}`
      : 'track_commit_timestamp is off on the source: no last commit time, RPO is bounded by the drill start';
    close(
      'completed',
      [
        `source ${sourceRegion}: lsn ${source.lsn}, ${tracking}; ${source.tables.length} table(s) digested in the same snapshot`,
        `scratch ${scratch.dataDir} on port ${scratch.port}`,
        archiveNote,
      ]
        .filter(Boolean)
        .join('; '),
    );
    preparingMs = Date.now() - requestedAt;

    // From the database and the drill's start, not its workflow id: a replayed history (whose
    // workflow id the replayer chooses) must issue the same child id.
    restoreWorkflowId = `${workflowIds.restore(input.database, new Date(requestedAt))}-drill`;
    state.restoreWorkflowId = restoreWorkflowId;
    open('restoring', `${restoreWorkflowId}: ${restoreTarget} into ${scratch.dataDir}`);
    const restoringStarted = Date.now();
    try {
      restored = await executeChild<typeof pointInTimeRestoreWorkflow>('pointInTimeRestoreWorkflow', {
        workflowId: restoreWorkflowId,
        args: [
          {
            database: input.database,
            region: input.region,
            target: restoreTarget,
            port: scratch.port,
            dataDir: scratch.dataDir,
            action: 'promote',
            // Stop just before the snapshot's position: exactly the transactions it saw.
            inclusive: !restoredToSourceLsn,
            ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}),
          },
        ],
        staticSummary: `restore for drill ${drillId}`,
      });
    } catch (err) {
      if (isCancellation(err)) throw err;
      restoreError = messageOf(err);
      close('failed', `${restoreWorkflowId}: ${restoreError}`);
      restoredToSourceLsn = false;
    }
    if (restored) {
      validatedAt = Date.now();
      // The child validated inside its run: its own measurement splits the time between the two.
      const p = phases.at(-1)!;
      const restoreEnd = restoringStarted + restored.rto.totalMs - restored.rto.validateMs;
      p.endedAt = iso(Math.min(restoreEnd, validatedAt));
      p.detail = `${restoreWorkflowId}: backup ${restored.chain.backupId}, WAL ${restored.chain.firstSegment}…${restored.chain.lastSegment}, reached lsn ${restored.achieved.lsn}${restored.note ? `; ${restored.note}` : ''}`;
      phases.push({
        name: 'validating',
        startedAt: p.endedAt,
        endedAt: iso(validatedAt),
        outcome: 'completed',
        detail: `${restored.validation.filter((v) => v.ok).length}/${restored.validation.length} checks passed (run by the restore on the scratch instance)`,
      });
      rpo = measureRpo({
        source,
        restoredLastTransaction: restored.achieved.lastTransactionTime,
        backupTime: restored.chain.backupTime,
        reachedSourceLsn: restoredToSourceLsn,
      });

      open('comparing', `${source.tables.length} table(s), source snapshot against the restored instance`);
      const comparable = comparability({
        target: input.target,
        restoredToSourceLsn,
        achievedLsn: restored.achieved.lsn,
        sourceLsn: source.lsn,
      });
      const restoredDigests = source.tables.length
        ? await dr.digestRestoredTables({
            database: input.database,
            port: restored.instance.port,
            tables: source.tables.map((t) => t.table),
          })
        : [];
      comparisons = compareDigests(source.tables, restoredDigests, comparable);
      close(
        comparisons.every((c) => c.ok) ? 'completed' : 'failed',
        source.tables.length
          ? `${comparisons.filter((c) => c.ok).length}/${comparisons.length} table(s) match${comparable.ok ? '' : `; ${comparable.why}`}`
          : 'no tables to compare (the drill policy names none)',
      );
    }
  } catch (err) {
    if (isCancellation(err)) {
      cancelled = err as Error;
      openPhaseEnds('cancelled', err);
    } else {
      failure = err;
      openPhaseEnds('failed', err);
    }
  }

  // Always, whatever happened above, and even while the drill is being cancelled.
  const report = await CancellationScope.nonCancellable(async () => {
    open(
      'tearing-down',
      scratch ? `stopping the scratch server and deleting ${scratch.root}` : 'nothing to tear down',
    );
    let teardown: DrillReport['teardown'];
    if (!scratch) teardown = { done: true, detail: 'no scratch instance was prepared' };
    else
      try {
        teardown = await dr.teardownDrillScratch({ root: scratch.root, dataDir: scratch.dataDir });
      } catch (err) {
        teardown = {
          done: false,
          detail: `teardown failed: ${messageOf(err)}; check ${scratch.root} on the ${input.region} worker`,
        };
      }
    close(teardown.done ? 'completed' : 'failed', teardown.detail);

    open('reporting', 'report.json and report.html, write-once');
    const rtoMs = validatedAt === undefined ? null : Math.max(0, validatedAt - requestedAt - archiveWaitMs);
    const rtoBreakdownMs: Record<string, number> = {};
    if (restored && rtoMs !== null) {
      const parts = {
        prepare: Math.max(0, preparingMs - archiveWaitMs),
        resolve: restored.rto.resolveMs,
        download: restored.rto.downloadMs,
        start: restored.rto.startMs,
        replay: restored.rto.replayMs,
        validate: restored.rto.validateMs,
      };
      Object.assign(rtoBreakdownMs, parts);
      const sum = Object.values(parts).reduce((a, b) => a + b, 0);
      rtoBreakdownMs.orchestration = Math.max(0, rtoMs - sum);
    }
    const measured = { rtoMs, rpoMs: rpo?.rpoMs ?? null, rtoBreakdownMs };
    const verdicts = { rto: judge(measured.rtoMs, targets.rtoMs), rpo: judge(measured.rpoMs, targets.rpoMs) };
    const validation = restored?.validation ?? [];
    const reasons = cancelled
      ? [
          `The drill was cancelled during ${phases.find((p) => p.outcome === 'cancelled')?.name ?? 'its run'}.`,
        ]
      : [
          ...(failure ? [`The drill failed: ${messageOf(failure)}.`] : []),
          ...drillReasons({
            ...(restoreError ? { restoreError } : {}),
            validation,
            comparisons,
            measured,
            targets,
            verdicts,
            teardown,
          }),
        ];
    if (rpo) {
      const p = phases.find((x) => x.name === 'comparing') ?? phases.find((x) => x.name === 'validating');
      if (p) p.detail = `${p.detail}; RPO: ${rpo.detail}`;
    }
    const outcome: DrillReport['outcome'] = cancelled ? 'cancelled' : reasons.length ? 'failed' : 'passed';
    const endedAt = Date.now();
    const keys = ['report.json', 'report.html'].map((f) =>
      repository.drillReport('', input.database, drillId, f),
    );
    close('completed', `${keys.join(', ')} in ${plan.storage.primary.url}`);
    const report: DrillReport = {
      version: 1,
      drillId,
      workflowId: drillId,
      runId: info.runId,
      webUiUrl,
      plan: { name: plan.name, environment: plan.environment },
      database: input.database,
      region: input.region,
      mode: 'restore',
      requestedBy: input.requestedBy ?? null,
      target: input.target,
      startedAt: iso(requestedAt),
      endedAt: iso(endedAt),
      outcome,
      reasons,
      tier: targets.tier,
      targets: { rtoMs: targets.rtoMs, rpoMs: targets.rpoMs },
      measured,
      verdicts,
      phases,
      source: source ? { lastCommitTime: source.lastCommitTime, lsn: source.lsn } : null,
      restore: restored
        ? {
            restoreWorkflowId: restoreWorkflowId!,
            backupId: restored.chain.backupId,
            backupTime: restored.chain.backupTime,
            firstSegment: restored.chain.firstSegment,
            lastSegment: restored.chain.lastSegment,
            archiveEndLsn: restored.chain.archiveEndLsn,
            achievedLsn: restored.achieved.lsn,
            lastTransactionTime: restored.achieved.lastTransactionTime,
            timeline: restored.achieved.timeline,
            reachedEndOfArchive: restored.achieved.reachedEndOfArchive,
          }
        : null,
      validation,
      comparisons,
      failover: null,
      teardown,
    };
    await writeDrillReport({ report });
    return report;
  });

  state.phase = 'completed';
  state.phaseSince = report.endedAt;
  state.outcome = report.outcome;
  if (report.reasons.length) state.error = report.reasons.join(' ');
  upsertSearchAttributes([{ key: searchAttributeKeys.outcome, value: report.outcome }]);
  setCurrentDetails(summarizeDrill(report));
  recordMetrics(report);
  if (cancelled) throw cancelled;
  return report;
}

/**
 * Failover drill: a planned switchover of the live primary to the drill's region and the
 * switchback, each a regionalFailoverWorkflow child under the database's failover lock, each
 * through the failover policy's approval gate (`lifeboat approve failover-<db>`), each RTO measured
 * by the failover itself. Nothing is restored, so there is no scratch instance; what "torn down"
 * means here is that the primary is back where it started.
 */
async function failoverDrill(d: {
  input: DrillOptions;
  plan: Plan;
  webUiUrl: string | null;
  targets: { rtoMs: number; rpoMs: number; tier: number };
  state: DrillProgress;
  phases: DrillPhaseRecord[];
  open: (name: DrillPhase, detail: string) => void;
  close: (outcome: DrillPhaseRecord['outcome'], detail?: string) => void;
  openPhaseEnds: (outcome: 'failed' | 'cancelled', err: unknown) => void;
}): Promise<DrillReport> {
  const { input, plan, targets, state, phases, open, close } = d;
  const info = workflowInfo();
  const drillId = info.workflowId;
  const requestedAt = info.startTime.getTime();
  const iso = (ms: number) => new Date(ms).toISOString();
  const home = plan.databases[input.database]!.primaryRegion;
  const lockId = workflowIds.failover(input.database);
  type Leg = { workflowId: string; outcome: string; rtoMs: number | null; result?: FailoverResult };
  let over: Leg | undefined;
  let back: Leg | undefined;
  let cancelled: Error | undefined;
  let failure: unknown;
  const leg = async (to: string, what: string): Promise<Leg> => {
    state.failoverWorkflowId = lockId;
    try {
      const result = await executeChild<typeof regionalFailoverWorkflow>('regionalFailoverWorkflow', {
        workflowId: lockId,
        args: [
          {
            database: input.database,
            targetRegion: to,
            planned: true,
            reason: `DR drill ${drillId}: ${what}`,
            requestedBy: input.requestedBy ?? 'dr-drill',
          },
        ],
        staticSummary: `${what} for drill ${drillId}`,
      });
      return { workflowId: lockId, outcome: result.outcome, rtoMs: result.rtoMs ?? null, result };
    } catch (err) {
      if (isCancellation(err)) throw err;
      return { workflowId: lockId, outcome: `failed: ${messageOf(err)}`, rtoMs: null };
    }
  };

  try {
    open('preparing', `planned switchover of ${input.database} from ${home} to ${input.region} and back`);
    close('completed', `failover policy found; approvals through ${lockId}`);
    open('switching-over', `${lockId}: ${home} → ${input.region}; approve with lifeboat approve ${lockId}`);
    over = await leg(input.region, `planned switchover to ${input.region}`);
    close(
      over.outcome === 'switched-over' ? 'completed' : 'failed',
      `${over.outcome}; RTO ${over.rtoMs ?? 'not measured'} ms${over.result?.message ? `; ${over.result.message}` : ''}`,
    );
    if (over.outcome === 'switched-over') {
      open('switching-back', `${lockId}: ${input.region} → ${home}; approve with lifeboat approve ${lockId}`);
      back = await leg(home, `switchback to ${home}`);
      close(
        back.outcome === 'switched-over' ? 'completed' : 'failed',
        `${back.outcome}; RTO ${back.rtoMs ?? 'not measured'} ms${back.result?.message ? `; ${back.result.message}` : ''}`,
      );
    }
  } catch (err) {
    if (isCancellation(err)) {
      cancelled = err as Error;
      d.openPhaseEnds('cancelled', err);
    } else {
      failure = err;
      d.openPhaseEnds('failed', err);
    }
  }

  const report = await CancellationScope.nonCancellable(async () => {
    const switchedOver = over?.outcome === 'switched-over';
    const home_ = back?.outcome === 'switched-over' || !switchedOver;
    open('tearing-down', 'no scratch instance in a failover drill: checking the primary is home');
    const teardown = home_
      ? {
          done: true,
          detail: switchedOver
            ? `no scratch instance; the switchback put the primary back in ${home}`
            : `no scratch instance; the primary never left ${home}`,
        }
      : {
          done: false,
          detail: `the primary is in ${input.region}, not ${home}: switch back with lifeboat failover --database ${input.database} --to ${home} --planned`,
        };
    close(teardown.done ? 'completed' : 'failed', teardown.detail);
    open('reporting', 'report.json and report.html, write-once');
    const rpoMs = over?.result?.rpo?.seconds != null ? Math.round(over.result.rpo.seconds * 1000) : null;
    const measured = {
      rtoMs: over?.rtoMs ?? null,
      rpoMs,
      rtoBreakdownMs: Object.fromEntries(
        [
          ['switchover', over?.rtoMs],
          ['switchback', back?.rtoMs],
        ].filter((e): e is [string, number] => typeof e[1] === 'number'),
      ),
    };
    const verdicts = { rto: judge(measured.rtoMs, targets.rtoMs), rpo: judge(measured.rpoMs, targets.rpoMs) };
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    const reasons: string[] = [];
    if (cancelled)
      reasons.push(
        `The drill was cancelled during ${phases.find((p) => p.outcome === 'cancelled')?.name ?? 'its run'}.`,
      );
    else {
      if (failure) reasons.push(`The drill failed: ${messageOf(failure)}.`);
      if (over && !switchedOver) reasons.push(`The switchover did not complete: ${over.outcome}.`);
      if (back && back.outcome !== 'switched-over')
        reasons.push(`The switchback did not complete: ${back.outcome}.`);
      if (verdicts.rto === 'missed')
        reasons.push(`RTO ${s(measured.rtoMs!)} missed the target of ${s(targets.rtoMs)}.`);
      if (verdicts.rto === 'unknown') reasons.push('RTO was not measured: the switchover did not complete.');
      if (verdicts.rpo === 'missed')
        reasons.push(`RPO ${s(measured.rpoMs!)} missed the target of ${s(targets.rpoMs)}.`);
      if (verdicts.rpo === 'unknown') reasons.push('RPO was not measured: the switchover did not complete.');
      if (!teardown.done) reasons.push(`The primary is not back where it started: ${teardown.detail}.`);
    }
    const outcome: DrillReport['outcome'] = cancelled ? 'cancelled' : reasons.length ? 'failed' : 'passed';
    close(
      'completed',
      `${['report.json', 'report.html'].map((f) => repository.drillReport('', input.database, drillId, f)).join(', ')} in ${plan.storage.primary.url}`,
    );
    const report: DrillReport = {
      version: 1,
      drillId,
      workflowId: drillId,
      runId: info.runId,
      webUiUrl: d.webUiUrl,
      plan: { name: plan.name, environment: plan.environment },
      database: input.database,
      region: input.region,
      mode: 'failover',
      requestedBy: input.requestedBy ?? null,
      target: null,
      startedAt: iso(requestedAt),
      endedAt: iso(Date.now()),
      outcome,
      reasons,
      tier: targets.tier,
      targets: { rtoMs: targets.rtoMs, rpoMs: targets.rpoMs },
      measured,
      verdicts,
      phases,
      source: null,
      restore: null,
      validation: [],
      comparisons: [],
      failover: over
        ? {
            switchover: { workflowId: over.workflowId, outcome: over.outcome, rtoMs: over.rtoMs },
            switchback: back
              ? { workflowId: back.workflowId, outcome: back.outcome, rtoMs: back.rtoMs }
              : null,
          }
        : null,
      teardown,
    };
    await writeDrillReport({ report });
    return report;
  });
  state.phase = 'completed';
  state.phaseSince = report.endedAt;
  state.outcome = report.outcome;
  upsertSearchAttributes([{ key: searchAttributeKeys.outcome, value: report.outcome }]);
  setCurrentDetails(summarizeDrill(report));
  recordMetrics(report);
  if (cancelled) throw cancelled;
  return report;
}

/** Per-database gauges on the worker's Prometheus endpoint (emitted once, never on replay). */
function recordMetrics(r: DrillReport): void {
  const meter = metricMeter.withTags({ database: r.database });
  meter
    .createGauge('lifeboat_drill_last_end_seconds', 'float', 's', 'end of the last DR drill (unix time)')
    .set(Date.parse(r.endedAt) / 1000);
  meter
    .createGauge(
      'lifeboat_drill_passed',
      'int',
      '',
      '1 when the last DR drill passed, 0 when it failed or was cancelled',
    )
    .set(r.outcome === 'passed' ? 1 : 0);
  if (r.measured.rtoMs !== null)
    meter
      .createGauge('lifeboat_drill_rto_seconds', 'float', 's', 'RTO measured by the last DR drill')
      .set(r.measured.rtoMs / 1000);
  if (r.measured.rpoMs !== null)
    meter
      .createGauge('lifeboat_drill_rpo_seconds', 'float', 's', 'RPO measured by the last DR drill')
      .set(r.measured.rpoMs / 1000);
}

function secs(ms: number): string {
  return ms >= 120_000 ? `${(ms / 60_000).toFixed(0)} min` : `${(ms / 1000).toFixed(1)} s`;
}

function messageOf(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string; cause?: { message?: string } } };
  // A child's or an activity's failure wraps the cause that says what went wrong.
  return e?.cause?.cause?.message ?? e?.cause?.message ?? e?.message ?? String(err);
}
