// Regional failover of one database: detect → (approval) → promote → DNS → traffic → verify.
// Every call runs on the target region's task queue: the source region may be dead, worker and
// all. Before promotion everything done is undone on failure or cancellation (fencing lifted);
// promotion is the point of no return, after which the workflow finishes forward or says exactly
// what the operator must do. The workflow id `failover-<database>` is the lock: never two at once.
import {
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { PromoteResult } from '../activities/postgres-failover.ts';
import { describeApprovals } from '../domain/approval.ts';
import type { PostgresFacts } from '../domain/doctor.ts';
import { formatDuration, parseDuration } from '../domain/duration.ts';
import { NON_RETRYABLE_ERROR_TYPES } from '../domain/errors.ts';
import {
  afterPromotionActions,
  failoverInputSchema,
  initialSteps,
  rpoEstimate,
  type FailoverInput,
  type FailoverOutcome,
  type FailoverPhase,
  type FailoverProgress,
  type FailoverResult,
  type FailoverStepName,
  type ParsedFailoverInput,
  type ReplicationLag,
} from '../domain/failover.ts';
import { lsnDistance } from '../domain/lsn.ts';
import { regionTaskQueue, type Plan } from '../domain/plan.ts';
import { searchAttributeKeys } from '../domain/search-attributes.ts';
import { ApprovalGate } from './approval.ts';
import { parseWorkflowInput } from './input.ts';

const retry = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '10s',
  nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
};
/** Short API calls before the point of no return: a few attempts, then compensate. */
const apiCall = { startToCloseTimeout: '20s', retry: { ...retry, maximumAttempts: 4 } } as const;
/** SQL calls that bound their own connection time (3-5 s): a lost worker is noticed at 10 s. */
const sqlCall = { startToCloseTimeout: '10s', retry: { ...retry, maximumAttempts: 4 } } as const;
/**
 * A failed health check is an answer (returned, never thrown), so detection counts real checks;
 * the retries only cover a probe that could not run at all — its worker lost mid-check — which
 * would otherwise fail the run (and after promotion, leave it unfinished).
 */
const probe = { startToCloseTimeout: '12s', retry: { ...retry, maximumAttempts: 3 } } as const;
/** Polls until a system reaches a state; the heartbeat notices a lost worker within seconds. */
const waitFor = {
  startToCloseTimeout: '5m',
  heartbeatTimeout: '5s',
  retry: { ...retry, maximumAttempts: 5 },
} as const;
/** After promotion: keep trying for minutes, since giving up leaves traffic on the fenced source. */
const mustFinish = {
  startToCloseTimeout: '30s',
  heartbeatTimeout: '5s',
  retry: { ...retry, maximumAttempts: 20 },
} as const;
/** Stop, pg_rewind and restart of the old primary, on its own region's worker. */
const reattach = {
  startToCloseTimeout: '10m',
  heartbeatTimeout: '30s',
  retry: { ...retry, maximumAttempts: 3 },
} as const;
/** Best effort in the source region, which may be down: two quick attempts. */
const bestEffort = { startToCloseTimeout: '10s', retry: { ...retry, maximumAttempts: 2 } } as const;

const { describePlan, notify } = proxyActivities<Activities>(apiCall);

/** Progress of the failover: phase, each step's state and timings, lag, approvals. */
export const failoverProgressQuery = defineQuery<FailoverProgress>('progress');

/** The coordinator's state: a typed phase, the five steps, and the compensations pushed so far. */
class Failover {
  readonly progress: FailoverProgress;
  readonly #compensations: { what: string; run: () => Promise<unknown> }[] = [];

  constructor(input: ParsedFailoverInput) {
    this.progress = {
      workflowId: workflowInfo().workflowId,
      database: input.database,
      targetRegion: input.targetRegion,
      planned: input.planned,
      phase: 'validating',
      steps: initialSteps(),
      startedAt: new Date().toISOString(),
    };
    setHandler(failoverProgressQuery, () => this.progress);
  }

  enter(phase: FailoverPhase, details: string): void {
    this.progress.phase = phase;
    setCurrentDetails(`**${phase}**: ${details}`);
    log.info(`failover ${phase}: ${details}`);
  }

  step(name: FailoverStepName) {
    const s = this.progress.steps.find((x) => x.name === name)!;
    return {
      start: () => {
        s.state = 'running';
        s.startedAt = new Date().toISOString();
      },
      end: (state: 'done' | 'skipped' | 'failed', detail: string) => {
        s.state = state;
        s.detail = detail;
        s.endedAt = new Date().toISOString();
        if (s.startedAt) s.durationMs = Date.parse(s.endedAt) - Date.parse(s.startedAt);
      },
    };
  }

  pushCompensation(what: string, run: () => Promise<unknown>): void {
    this.#compensations.push({ what, run });
  }

  /** Runs the compensations in reverse, even when the workflow is being cancelled. */
  async compensate(): Promise<string[]> {
    const done: string[] = [];
    await CancellationScope.nonCancellable(async () => {
      for (const c of this.#compensations.reverse()) {
        try {
          await c.run();
          done.push(c.what);
        } catch (err) {
          done.push(`${c.what} FAILED: ${(err as Error).message}`);
        }
      }
    });
    this.#compensations.length = 0;
    return done;
  }
}

export async function regionalFailoverWorkflow(raw: FailoverInput): Promise<FailoverResult> {
  const input = parseWorkflowInput(failoverInputSchema, raw, 'regionalFailoverWorkflow');
  const f = new Failover(input);
  const { runId, workflowId } = workflowInfo();
  const started = Date.now();
  const plan = await describePlan();
  const { policy, db } = checkAgainstPlan(plan, input);
  // The gate answers queries (and refuses early decisions) from the start.
  const gate = new ApprovalGate(input.requestedBy, policy.approval);
  f.progress.approval = gate.state;
  const target = input.targetRegion;
  const act = proxies(plan, target);
  const ids = { workflowId, runId };

  // Which region holds the primary now: the plan's primaryRegion is only where it started.
  const facts = await inspectRegions(act, input.database, [
    db.primaryRegion,
    ...db.replicas.map((r) => r.region),
  ]);
  const targetFacts = facts[target]!;
  if (!targetFacts.reachable)
    throw failure(
      'TargetUnavailable',
      `${input.database}@${target} is unreachable: ${targetFacts.error}; nothing done`,
    );
  if (!targetFacts.inRecovery)
    throw failure(
      'InvalidInput',
      `${input.database}@${target} already holds the primary (it is not in recovery); nothing done`,
    );
  const source = chooseSource(facts, target, db.primaryRegion);
  f.progress.sourceRegion = source;
  const sourceFacts = facts[source];
  if (input.planned && !(sourceFacts?.reachable && sourceFacts.inRecovery === false))
    throw failure(
      'InvalidInput',
      `a planned switchover needs a reachable primary in ${source} (${sourceFacts?.error ?? 'it is not a primary'}); use an unplanned failover`,
    );
  upsertSearchAttributes([
    { key: searchAttributeKeys.kind, value: input.planned ? 'switchover' : 'failover' },
    { key: searchAttributeKeys.database, value: input.database },
    { key: searchAttributeKeys.region, value: source },
    { key: searchAttributeKeys.targetRegion, value: target },
    { key: searchAttributeKeys.requestedBy, value: input.requestedBy },
  ]);
  const notifyAll = (message: Omit<Parameters<Activities['notify']>[0]['message'], 'workflowId'>) =>
    Promise.all(
      plan.notifications.webhooks
        .filter((w) => w.events.includes(message.event))
        .map((w) => notify({ webhook: w.name, message: { ...message, workflowId } }).catch(() => undefined)),
    );
  const finish = async (outcome: FailoverOutcome, phase: FailoverPhase, message: string) => {
    f.progress.outcome = outcome;
    f.progress.message = message;
    f.enter(phase, message);
    upsertSearchAttributes([{ key: searchAttributeKeys.outcome, value: outcome }]);
    await CancellationScope.nonCancellable(() =>
      notifyAll({
        event: 'outcome',
        title: `Lifeboat failover of ${input.database}: ${outcome}`,
        text: message,
        fields: { source, target, requestedBy: input.requestedBy, reason: input.reason },
      }),
    );
  };

  // 1. Detect: N consecutive failed checks of the source, from the target region.
  const detect = f.step('detect');
  const detectStarted = Date.now();
  if (input.planned) {
    detect.end('skipped', 'planned switchover: the source is healthy by design');
  } else {
    detect.start();
    const { checks, interval } = policy.detection;
    f.enter('detecting', `${checks} checks of ${source} every ${interval} from ${target}`);
    const seen: string[] = [];
    let healthy = false;
    for (let i = 1; i <= checks; i++) {
      const h = await act.probeRegion({ region: source, database: input.database });
      seen.push(
        h.healthy
          ? 'ok'
          : h.checks
              .filter((c) => !c.ok)
              .map((c) => `${c.name}: ${c.detail}`)
              .join('; '),
      );
      if (h.healthy) {
        healthy = true;
        if (!input.force) break;
      }
      if (i < checks) await sleep(parseDuration(interval)!);
    }
    if (healthy && !input.force) {
      detect.end('done', `source healthy at check ${seen.length}`);
      const result = await stop(
        'source-healthy',
        `${source} answered its health checks: source healthy, nothing done`,
      );
      return result;
    }
    detect.end(
      'done',
      `${checks} checks: ${healthy ? 'source healthy but forced' : `all failed (${seen.at(-1)})`}`,
    );
  }

  // Lag before the gate: the approver decides knowing the data at risk.
  const lag = measureLag(sourceFacts, targetFacts);
  f.progress.lag = lag;

  // Approval gate.
  const lagText =
    lag.bytes !== null
      ? `${lag.bytes} bytes behind ${source}`
      : `lag unknown (${source} unreachable)${lag.lastReplaySeconds !== null ? `, last replayed transaction ${formatDuration(lag.lastReplaySeconds * 1000)} ago` : ''}`;
  const request = `${input.planned ? 'Switch over' : 'Fail over'} ${input.database} from ${source} to ${target} (${input.reason}), requested by ${input.requestedBy}. Data at risk: ${lagText}.`;
  const auto =
    policy.approval.mode === 'automatic-within-lag' &&
    (input.planned || (lag.bytes !== null && lag.bytes <= (policy.approval.maxLagBytes ?? 0)));
  if (auto) {
    gate.automatic(request);
  } else {
    const policyTimeout = parseDuration(policy.approval.timeout)!;
    const timeoutMs = Math.min(
      policyTimeout,
      input.approvalTimeout ? parseDuration(input.approvalTimeout)! : policyTimeout,
    );
    f.enter(
      'awaiting-approval',
      `${request} Needs ${policy.approval.minApprovals} of ${policy.approval.approvers.join(', ')} within ${formatDuration(timeoutMs)}`,
    );
    const outcome = await gate.decide({
      request,
      timeoutMs,
      onOpen: async () => {
        await notifyAll({
          event: 'approval-needed',
          title: `Approval needed: failover of ${input.database} to ${target}`,
          text: `${request}\nApprove: lifeboat approve ${workflowId} --as <name>`,
          fields: {
            approvers: policy.approval.approvers.join(', '),
            minApprovals: String(policy.approval.minApprovals),
          },
        });
      },
    });
    if (outcome === 'not-approved')
      return stop(
        'not-approved',
        `not approved within ${formatDuration(timeoutMs)} (${describeApprovals(gate.state)}); nothing changed`,
      );
    if (outcome === 'rejected') return stop('rejected', `${describeApprovals(gate.state)}; nothing changed`);
  }

  // 2. Promote: fence the source, make sure DNS can be moved, let the target catch up, promote.
  const promote = f.step('promote');
  promote.start();
  let promoted: PromoteResult;
  let caughtUp = false;
  try {
    f.enter('fencing', `making ${source} refuse writes`);
    const fencing = await act.fencePostgres({ database: input.database, region: source, ...ids });
    f.progress.fencing = fencing;
    if (fencing.fenced)
      f.pushCompensation(`unfence ${source}`, () =>
        act.unfencePostgres({ database: input.database, region: source }),
      );
    if (input.planned && !fencing.fenced)
      throw failure('FencingFailed', `planned switchover: ${source} could not be fenced: ${fencing.detail}`);
    // Promoting while DNS cannot be moved would strand the apps on the fenced source.
    await act.readDatabaseRecords({ database: input.database });
    f.enter(
      'promoting',
      `promoting ${target}${fencing.finalLsn ? ` after it replays ${fencing.finalLsn}` : ''}`,
    );
    if (fencing.finalLsn) {
      const wait = await act.waitForReplay({
        database: input.database,
        region: target,
        lsn: fencing.finalLsn,
        timeoutMs: input.planned ? 120_000 : 15_000,
      });
      caughtUp = wait.caughtUp;
      if (input.planned && !caughtUp)
        throw failure(
          'ReplicaBehind',
          `${target} did not replay ${source}'s final LSN ${fencing.finalLsn} (at ${wait.replayLsn})`,
        );
    }
    promoted = await promoteOnce(act, input.database, target, ids);
  } catch (err) {
    promote.end('failed', (err as Error).message);
    f.enter('compensating', `undoing before promotion: ${(err as Error).message}`);
    const undone = await f.compensate();
    await finish(
      'compensated',
      'stopped',
      `failover stopped before promotion: ${causeOf(err)}; undone: ${undone.join(', ') || 'nothing to undo'}`,
    );
    if (isCancellation(err)) throw err;
    throw failure('FailoverCompensated', f.progress.message!, [f.progress]);
  }
  f.progress.promotedAt = new Date().toISOString();
  promote.end(
    'done',
    `${target} promoted (timeline ${promoted.timeline}, epoch ${promoted.epoch}${promoted.alreadyPromoted ? ', found already promoted on retry' : ''})${f.progress.fencing?.fenced ? `; ${source} fenced` : `; ${source} not reachable, not fenced`}`,
  );
  const operatorActions = afterPromotionActions(input.database, source, target);

  try {
    // 3. DNS: UPSERT to the target's values, wait until in sync, read back.
    const dns = f.step('dns');
    dns.start();
    f.enter('switching-dns', `pointing ${input.database}'s records at ${target}`);
    const change = await act.pointDatabaseRecords({
      database: input.database,
      region: target,
      comment: `lifeboat ${workflowId}: ${input.reason}`.slice(0, 256),
    });
    await act.waitDnsChangeInSync({ changeId: change.changeId });
    const readBack = await act.readDatabaseRecords({ database: input.database });
    const wrong = dnsMismatches(change.records, readBack);
    if (wrong.length) throw failure('DnsNotSwitched', `DNS read back differs: ${wrong.join('; ')}`);
    dns.end(
      'done',
      `${change.records.map((r) => `${r.name} → ${r.values.join(',')}`).join('; ') || 'no records in the plan'} (INSYNC)`,
    );

    // 4. Traffic: target up and ready, source down if reachable, endpoint configmap.
    const traffic = f.step('traffic');
    traffic.start();
    const t = policy.traffic;
    if (!t) {
      traffic.end('skipped', 'no traffic section in the failover policy');
    } else {
      f.enter('moving-traffic', `scaling ${t.namespace} up in ${target}`);
      const notes: string[] = [];
      await act.scaleDeployments({ region: target, namespace: t.namespace, deployments: t.deployments });
      await act.waitDeploymentsReady({
        region: target,
        namespace: t.namespace,
        deployments: t.deployments.map((d) => d.name),
      });
      notes.push(`${target}: ${t.deployments.map((d) => `${d.name}=${d.replicas}`).join(', ')} ready`);
      if (t.endpointConfigMap) {
        const host = plan.regions[target]!.postgres;
        const endpoint = {
          namespace: t.namespace,
          name: t.endpointConfigMap.name,
          key: t.endpointConfigMap.key,
          value: host.host,
          annotations: {
            'lifeboat.io/primary-region': target,
            'lifeboat.io/primary-port': String(host.port),
            'lifeboat.io/failover': workflowId,
          },
        };
        await act.setEndpointConfigMap({ region: target, ...endpoint });
        notes.push(`${t.endpointConfigMap.name} → ${host.host}:${host.port}`);
        await sourceSide(plan, target)
          .setEndpointConfigMap({ region: source, ...endpoint })
          .catch((err: Error) => notes.push(`${source} configmap not updated: ${causeOf(err)}`));
      }
      await sourceSide(plan, target)
        .scaleDeployments({
          region: source,
          namespace: t.namespace,
          deployments: t.deployments.map((d) => ({ name: d.name, replicas: 0 })),
        })
        .then(() => notes.push(`${source}: scaled to 0`))
        .catch((err: Error) => {
          notes.push(`${source} not scaled down (unreachable: ${causeOf(err)})`);
          operatorActions.unshift(
            `Scale ${t.namespace}/${t.deployments.map((d) => d.name).join(', ')} to 0 in ${source} once its cluster answers.`,
          );
        });
      traffic.end('done', notes.join('; '));
    }

    // 5. Verify: write-and-read on the new primary, the target's health checks, DNS.
    const verify = f.step('verify');
    verify.start();
    f.enter('verifying', `probing ${target}`);
    const [write, health, records] = await Promise.all([
      act.probeWrite({ database: input.database, region: target, workflowId }),
      act.probeRegion({ region: target, database: input.database }),
      act.readDatabaseRecords({ database: input.database }),
    ]);
    const problems = [
      ...(write.ok ? [] : [`write probe: ${write.detail}`]),
      ...health.checks.filter((c) => !c.ok).map((c) => `health ${c.name}: ${c.detail}`),
      ...dnsMismatches(change.records, records).map((m) => `dns: ${m}`),
    ];
    if (problems.length) {
      verify.end('failed', problems.join('; '));
      throw failure('VerificationFailed', `verification failed: ${problems.join('; ')}`);
    }
    verify.end(
      'done',
      `${write.detail}; ${health.checks.length} health check(s) ok; DNS points at ${target}`,
    );
  } catch (err) {
    const running = f.progress.steps.find((s) => s.state === 'running');
    if (running) f.step(running.name).end('failed', causeOf(err));
    await finish(
      'failed-after-promotion',
      'failed',
      `${target} was promoted but the failover could not finish: ${causeOf(err)}. No automatic way back after promotion: finish the remaining steps by hand or run the failover again.`,
    );
    throw failure('FailoverIncomplete', f.progress.message!, [{ ...f.progress, operatorActions }]);
  }

  const rtoMs = Date.now() - (input.planned ? started : detectStarted);
  const rpo = rpoEstimate(lag, caughtUp);
  // Planned switchover: the old primary answered and was fenced, and the target replayed its final
  // LSN, so it can be rewound onto the new timeline and follow it — a switchback is then the same
  // command the other way. Runs on the old primary's own region (its data directory is there).
  // Traffic is already on the target, so a failure here is reported, not fatal.
  if (input.planned && f.progress.fencing?.fenced && patched('reattach-old-primary')) {
    f.enter('reattaching', `re-attaching ${source} as a streaming replica of ${target}`);
    const { reattachAsReplica } = proxyActivities<Activities>({
      ...reattach,
      taskQueue: regionTaskQueue(plan, source),
    });
    try {
      const r = await reattachAsReplica({ database: input.database, region: source, primaryRegion: target });
      f.progress.reattach = { ok: true, detail: r.detail };
      operatorActions.splice(0, operatorActions.length);
      operatorActions.push(
        `Update the plan (databases.${input.database}.primaryRegion: ${target}, replicas) so doctor and backups follow the new primary.`,
        `Switch back with: lifeboat failover --database ${input.database} --to ${source} --planned --reason "switchback"`,
      );
    } catch (err) {
      f.progress.reattach = { ok: false, detail: causeOf(err) };
      operatorActions.unshift(`${source} could not be re-attached automatically: ${causeOf(err)}.`);
    }
  }
  const outcome: FailoverOutcome = input.planned ? 'switched-over' : 'failed-over';
  await finish(
    outcome,
    'completed',
    `${input.database} now served from ${target}: RTO ${formatDuration(rtoMs)}, RPO ${rpo.estimate}${f.progress.reattach ? `; ${f.progress.reattach.ok ? f.progress.reattach.detail : `${source} NOT re-attached: ${f.progress.reattach.detail}`}` : ''}`,
  );
  return { ...f.progress, outcome, rtoMs, rpo, operatorActions };

  async function stop(outcome: FailoverOutcome, message: string): Promise<FailoverResult> {
    await finish(outcome, 'stopped', message);
    return { ...f.progress, outcome, operatorActions: [] };
  }
}

type Act = ReturnType<typeof proxies>;

function proxies(plan: Plan, target: string) {
  const taskQueue = regionTaskQueue(plan, target);
  const p = <O extends object>(o: O) => proxyActivities<Activities>({ ...o, taskQueue });
  const api = p(apiCall);
  const sql = p(sqlCall);
  const wait = p(waitFor);
  const must = p(mustFinish);
  return {
    inspectPostgres: sql.inspectPostgres,
    probeRegion: p(probe).probeRegion,
    fencePostgres: sql.fencePostgres,
    unfencePostgres: p({ ...sqlCall, retry: { ...retry, maximumAttempts: 10 } }).unfencePostgres,
    readDatabaseRecords: api.readDatabaseRecords,
    waitForReplay: wait.waitForReplay,
    promotePostgres: p({ ...waitFor, retry: { ...retry, maximumAttempts: 10 } }).promotePostgres,
    pointDatabaseRecords: must.pointDatabaseRecords,
    waitDnsChangeInSync: wait.waitDnsChangeInSync,
    scaleDeployments: must.scaleDeployments,
    waitDeploymentsReady: wait.waitDeploymentsReady,
    setEndpointConfigMap: must.setEndpointConfigMap,
    probeWrite: must.probeWrite,
  };
}

/** Calls on the source region's cluster, from the target's queue, that must not hold the failover up. */
function sourceSide(plan: Plan, target: string) {
  return proxyActivities<Activities>({ ...bestEffort, taskQueue: regionTaskQueue(plan, target) });
}

/**
 * Promotes, and tells a promotion that failed from one that happened: when the activity gives up,
 * the target is inspected, and if it is out of recovery the promotion stands (point of no return).
 */
async function promoteOnce(
  act: Act,
  database: string,
  region: string,
  ids: { workflowId: string; runId: string },
): Promise<PromoteResult> {
  try {
    return await act.promotePostgres({ database, region, ...ids });
  } catch (err) {
    const facts = await act.inspectPostgres({ region, database });
    if (facts.reachable && facts.inRecovery === false)
      return await act.promotePostgres({ database, region, ...ids });
    throw err;
  }
}

function checkAgainstPlan(plan: Plan, input: ParsedFailoverInput) {
  const db = plan.databases[input.database];
  if (!db)
    throw failure(
      'InvalidInput',
      `database "${input.database}" is not in the plan; declared: ${Object.keys(plan.databases).join(', ')}`,
    );
  const regions = [db.primaryRegion, ...db.replicas.map((r) => r.region)];
  if (!plan.regions[input.targetRegion])
    throw failure(
      'InvalidInput',
      `region "${input.targetRegion}" is not in the plan; declared: ${Object.keys(plan.regions).join(', ')}`,
    );
  if (!regions.includes(input.targetRegion))
    throw failure(
      'InvalidInput',
      `${input.database} has no server in ${input.targetRegion}; its regions: ${regions.join(', ')}`,
    );
  const policy = plan.failover.policies.find((p) => p.database === input.database);
  if (!policy) throw failure('InvalidInput', `the plan has no failover policy for ${input.database}`);
  return { db, policy };
}

async function inspectRegions(
  act: Act,
  database: string,
  regions: string[],
): Promise<Record<string, PostgresFacts>> {
  const facts = await Promise.all(
    regions.map(async (region) => [region, await act.inspectPostgres({ region, database })] as const),
  );
  return Object.fromEntries(facts);
}

/** The region holding the primary now: one that answers as a primary, else the plan's, else another. */
function chooseSource(facts: Record<string, PostgresFacts>, target: string, planPrimary: string): string {
  const others = Object.keys(facts).filter((r) => r !== target);
  return (
    others.find((r) => facts[r]!.reachable && facts[r]!.inRecovery === false) ??
    (planPrimary !== target ? planPrimary : others[0]!)
  );
}

function measureLag(source: PostgresFacts | undefined, target: PostgresFacts): ReplicationLag {
  const sourceLsn = source?.reachable && source.inRecovery === false ? source.lsn : undefined;
  return {
    bytes: sourceLsn && target.lsn ? Math.max(0, lsnDistance(sourceLsn, target.lsn)) : null,
    lastReplaySeconds: target.replayDelaySeconds ?? null,
    ...(sourceLsn ? { sourceLsn } : {}),
    ...(target.lsn ? { targetReplayLsn: target.lsn } : {}),
    ...(target.receiveLsn ? { targetReceiveLsn: target.receiveLsn } : {}),
  };
}

function dnsMismatches(
  want: { name: string; values: string[] }[],
  got: { name: string; values: string[] }[],
): string[] {
  const norm = (v: string[]) => JSON.stringify([...v].map((x) => x.toLowerCase()).sort());
  return want.flatMap((w) => {
    const g = got.find((r) => r.name === w.name);
    return g && norm(g.values) === norm(w.values)
      ? []
      : [`${w.name} is ${g?.values.join(',') || 'missing'}, expected ${w.values.join(',')}`];
  });
}

function causeOf(err: unknown): string {
  let e = err as (Error & { cause?: unknown }) | undefined;
  while (e?.cause instanceof Error) e = e.cause;
  return e?.message ?? String(err);
}

function failure(type: string, message: string, details: unknown[] = []): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true, details });
}
