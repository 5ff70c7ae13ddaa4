// `lifeboat apply [-f plan] [--dry-run] [--json]`: makes the Temporal Schedules match the plan, the
// way `kubectl apply` does — creates, updates and deletes only the schedules it made for this plan
// (memo marker), never anyone else's — and starts, once, the WAL archiver of every database with a
// backup policy and the region health monitor of every failover policy.
import os from 'node:os';
import { ScheduleNotFoundError, type Client, type ScheduleOptions } from '@temporalio/client';
import { parseDuration } from '../domain/duration.ts';
import type { Plan } from '../domain/plan.ts';
import {
  desiredSchedules,
  diffSchedules,
  fingerprintFromNote,
  MANAGED_BY,
  MANAGED_MEMO_KEY,
  scheduleNote,
  scheduleProblems,
  type DesiredSchedule,
  type ExistingSchedule,
  type ScheduleChange,
} from '../domain/schedules.ts';
import { workflowIds } from '../domain/naming.ts';
import { searchAttributeKeys } from '../domain/search-attributes.ts';
import { parseCommandArgs } from './args.ts';
import { startArchiver } from './archiver.ts';
import { ensureMonitor } from './monitor.ts';
import { loadPlanInto } from './plan-args.ts';
import { EXIT, printError, printJson, table } from './output.ts';
import { connectClient } from './temporal-client.ts';

interface Started {
  kind: 'wal-archiver' | 'monitor';
  database: string;
  workflowId: string;
  /** started | already running | would start (dry run) | failed */
  state: 'started' | 'already-running' | 'would-start' | 'failed';
  error?: string;
}

interface ChangeReport {
  id: string;
  action: ScheduleChange['action'];
  kind?: string;
  database?: string;
  spec?: string;
  workflowType?: string;
  /** Why an update (the plan changed; what was edited by hand). */
  drift?: string[];
  error?: string;
}

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('apply', argv, {
    file: { type: 'string', short: 'f' },
    json: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
  });
  if (!args) return EXIT.badInput;
  const problems: string[] = [];
  const plan = loadPlanInto(problems, args.file as string | undefined);
  if (plan) problems.push(...scheduleProblems(plan));
  if (problems.length || !plan) {
    for (const p of problems) printError(p);
    return EXIT.badInput;
  }
  const dryRun = Boolean(args['dry-run']);
  const json = Boolean(args.json);
  const by = process.env.LIFEBOAT_USER ?? os.userInfo().username;

  const { client, close } = await connectClient();
  try {
    const desired = desiredSchedules(plan);
    const existing = await existingSchedules(client, desired);
    const diff = diffSchedules(desired, existing, plan.name);
    const reports: ChangeReport[] = [];
    for (const change of diff.changes) {
      const report = reportOf(change);
      if (!dryRun && change.action !== 'unchanged')
        try {
          await applyChange(client, plan, change);
        } catch (err) {
          report.error = (err as Error).message;
        }
      reports.push(report);
    }
    const started = await ensureLongRunning(client, plan, by, dryRun);

    const failed = reports.some((r) => r.error) || started.some((s) => s.state === 'failed');
    if (json)
      printJson({
        plan: plan.name,
        dryRun,
        schedules: reports,
        conflicts: diff.conflicts,
        workflows: started,
      });
    else process.stdout.write(render(plan.name, dryRun, reports, started));
    for (const c of diff.conflicts) printError(`schedules.${c.id}: ${c.message}`);
    return failed || diff.conflicts.length ? EXIT.failed : EXIT.ok;
  } finally {
    await close();
  }
}

/**
 * Every schedule apply might own: the listing (eventually consistent, so just-created ones may be
 * missing and just-deleted ones still there) completed by a describe of each desired id.
 */
async function existingSchedules(client: Client, desired: DesiredSchedule[]): Promise<ExistingSchedule[]> {
  const found = new Map<string, ExistingSchedule>();
  for await (const s of client.schedule.list())
    found.set(s.scheduleId, existingOf(s.scheduleId, s.memo, s.state.note));
  for (const d of desired) {
    try {
      const s = await client.schedule.getHandle(d.id).describe();
      const action = s.action.type === 'startWorkflow' ? s.action : undefined;
      found.set(d.id, {
        ...existingOf(d.id, s.memo, s.state.note),
        actual: {
          ...(action
            ? { workflowType: action.workflowType, taskQueue: action.taskQueue, args: action.args }
            : {}),
          ...(s.policies.overlap ? { overlap: s.policies.overlap } : {}),
          ...(s.policies.catchupWindow !== undefined ? { catchupWindowMs: s.policies.catchupWindow } : {}),
          intervalsMs: (s.spec.intervals ?? []).map((i) => Number(i.every)),
          ...(s.spec.jitter !== undefined ? { jitterMs: Number(s.spec.jitter) } : {}),
          calendars: (s.spec.calendars ?? []).length,
        },
      });
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      found.delete(d.id);
    }
  }
  return [...found.values()];
}

function existingOf(id: string, memo: Record<string, unknown> | undefined, note: string | undefined) {
  const marker = memo?.[MANAGED_MEMO_KEY] as { managedBy?: unknown; plan?: unknown } | undefined;
  const managed = marker?.managedBy === MANAGED_BY && typeof marker.plan === 'string';
  const fingerprint = fingerprintFromNote(note);
  return {
    id,
    ...(managed ? { managedByPlan: marker.plan as string } : {}),
    ...(fingerprint ? { fingerprint } : {}),
  };
}

async function applyChange(client: Client, plan: Plan, change: ScheduleChange): Promise<void> {
  if (change.action === 'delete') {
    try {
      await client.schedule.getHandle(change.id).delete();
    } catch (err) {
      // The listing lags behind deletions: already gone is what was asked.
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
    return;
  }
  if (change.action === 'unchanged') return;
  const options = scheduleOptions(plan, change.desired);
  if (change.action === 'create') {
    await client.schedule.create(options);
    return;
  }
  await client.schedule.getHandle(change.id).update((previous) => ({
    ...previous,
    spec: options.spec,
    action: options.action,
    policies: { ...previous.policies, ...options.policies },
    // A pause set by an operator stays; the note carries the new fingerprint.
    state: { ...previous.state, note: options.state!.note! },
  }));
}

function scheduleOptions(plan: Plan, d: DesiredSchedule): ScheduleOptions {
  const jitter = d.spec.jitter ? parseDuration(d.spec.jitter) : undefined;
  return {
    scheduleId: d.id,
    spec: {
      ...(d.spec.cron ? { cronExpressions: [d.spec.cron] } : {}),
      ...(d.spec.every ? { intervals: [{ every: parseDuration(d.spec.every)! }] } : {}),
      ...(jitter ? { jitter } : {}),
    },
    action: {
      type: 'startWorkflow',
      workflowType: d.workflowType,
      taskQueue: d.taskQueue,
      workflowId: d.workflowId,
      args: d.args,
      staticSummary: d.summary,
    },
    policies: { overlap: d.overlap, catchupWindow: parseDuration(d.catchupWindow)! },
    memo: {
      [MANAGED_MEMO_KEY]: {
        managedBy: MANAGED_BY,
        plan: plan.name,
        kind: d.kind,
        policy: d.policy,
        database: d.database,
      },
    },
    typedSearchAttributes: [
      { key: searchAttributeKeys.kind, value: `schedule-${d.kind}` },
      { key: searchAttributeKeys.database, value: d.database },
    ],
    state: { note: scheduleNote(plan.name, d.fingerprint) },
  };
}

/** The archiver of each database with a backup policy, the monitor of each failover policy: once. */
async function ensureLongRunning(
  client: Client,
  plan: Plan,
  by: string,
  dryRun: boolean,
): Promise<Started[]> {
  const wanted: { kind: Started['kind']; database: string }[] = [
    ...[...new Set(plan.backup.policies.map((p) => p.database))].map((database) => ({
      kind: 'wal-archiver' as const,
      database,
    })),
    ...[...new Set(plan.failover.policies.map((p) => p.database))].map((database) => ({
      kind: 'monitor' as const,
      database,
    })),
  ];
  const out: Started[] = [];
  for (const w of wanted) {
    const workflowId =
      w.kind === 'wal-archiver' ? workflowIds.walArchiver(w.database) : workflowIds.monitor(w.database);
    try {
      if (dryRun) {
        const running = await client.workflow
          .getHandle(workflowId)
          .describe()
          .then((d) => d.status.name === 'RUNNING')
          .catch(() => false);
        out.push({ ...w, workflowId, state: running ? 'already-running' : 'would-start' });
        continue;
      }
      const { started } =
        w.kind === 'wal-archiver'
          ? await startArchiver(client, w.database, `apply:${by}`)
          : await ensureMonitor(client, w.database, `apply:${by}`);
      out.push({ ...w, workflowId, state: started ? 'started' : 'already-running' });
    } catch (err) {
      out.push({ ...w, workflowId, state: 'failed', error: (err as Error).message });
    }
  }
  return out;
}

function reportOf(change: ScheduleChange): ChangeReport {
  if (change.action === 'delete') return { id: change.id, action: 'delete' };
  const d = change.desired;
  const spec = [
    d.spec.cron ? `cron ${d.spec.cron}` : `every ${d.spec.every}`,
    ...(d.spec.jitter ? [`jitter ${d.spec.jitter}`] : []),
  ].join(', ');
  return {
    id: change.id,
    action: change.action,
    kind: d.kind,
    database: d.database,
    spec,
    workflowType: d.workflowType,
    ...(change.action === 'update' && change.drift ? { drift: change.drift } : {}),
  };
}

function render(planName: string, dryRun: boolean, reports: ChangeReport[], started: Started[]): string {
  const verb = (a: ChangeReport['action']) =>
    a === 'unchanged' ? 'unchanged' : dryRun ? `would ${a}` : `${a}d`;
  const counts = ['create', 'update', 'delete', 'unchanged'].map(
    (a) => `${reports.filter((r) => r.action === a).length} ${a === 'unchanged' ? 'unchanged' : `to ${a}`}`,
  );
  const lines = [
    `schedules of plan ${planName}${dryRun ? ' (dry run: nothing changed)' : ''}: ${counts.join(', ')}`,
    reports.length
      ? table(
          ['schedule', 'action', 'kind', 'database', 'spec', 'workflow'],
          reports.map((r) => [
            r.id,
            r.error ? `FAILED: ${r.error}` : verb(r.action),
            r.kind ?? '',
            r.database ?? '',
            r.spec ?? '',
            r.workflowType ?? '',
          ]),
        ).trimEnd()
      : 'no schedules',
    ...reports.flatMap((r) => (r.drift ?? []).map((why) => `  ${r.id}: ${why}`)),
    ...started.map((s) => {
      const what = s.kind === 'wal-archiver' ? 'WAL archiver' : 'region health monitor';
      const state =
        s.state === 'started'
          ? 'started'
          : s.state === 'already-running'
            ? 'already running'
            : s.state === 'would-start'
              ? 'would start'
              : `FAILED to start: ${s.error}`;
      return `${what} of ${s.database}: ${state} (${s.workflowId})`;
    }),
  ];
  return `${lines.join('\n')}\n`;
}
