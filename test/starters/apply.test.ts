// `lifeboat apply` on the real local stack (dev server): the plan's schedules are created as
// described, a second apply changes nothing, a changed plan updates one and deletes one, --dry-run
// changes nothing, a schedule Lifeboat did not make is never touched; a triggered backup schedule
// runs the backup under backup-<db> (the lock); with the lock held a run is skipped, or missed when
// it has a start window; past its completion window a backup is cancelled cleanly; webhooks hear
// of failures. The archiver and monitor are started once.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Client, Connection, WorkflowFailedError, type ScheduleHandle } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import type { ScheduledBackupResult } from '../../src/domain/schedules.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';

const DB = 'orders';
const FULL = 'lifeboat-backup-full-orders-daily';
const INC = 'lifeboat-backup-incremental-orders-daily';
const DRILL = 'lifeboat-drill-orders-weekly';
const RETENTION = 'lifeboat-retention-orders';
const FOREIGN = `not-lifeboat-${process.pid}`;
const SLOW = `test-apply-slow-${process.pid}`;
const LATE = `test-apply-late-${process.pid}`;

type RawPlan = {
  storage: { primary: { url: string } };
  backup: { policies: Record<string, unknown>[] };
  drills: { policies: Record<string, unknown>[] };
  notifications?: unknown;
};

interface ApplyJson {
  plan: string;
  dryRun: boolean;
  schedules: { id: string; action: string }[];
  workflows: { kind: string; database: string; workflowId: string; state: string }[];
}

describe('lifeboat apply on the local stack', () => {
  let stack: TestStack;
  let client: Client;
  let connection: Connection;
  let planFile: string;
  let changedPlanFile: string;
  let tmp: string | undefined;
  const workers: WorkerProcess[] = [];
  const hooks: { title: string; text: string; event: string }[] = [];
  let hookServer: http.Server;
  const started: string[] = []; // workflow ids this file started directly
  const startedByApply: string[] = [];
  let runIdsAfterFirstApply: (string | undefined)[] = [];
  const lockQueue = `lifeboat-apply-test-idle-${process.pid}`; // no worker polls it

  const apply = async (file: string, ...extra: string[]) => {
    const run = await runCli(['apply', '-f', file, '--json', ...extra], stack.env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    return JSON.parse(run.stdout) as ApplyJson;
  };
  const actions = (a: ApplyJson) => Object.fromEntries(a.schedules.map((s) => [s.id, s.action]));

  before(async () => {
    stack = await ensureStack();
    connection = await Connection.connect({ address: stack.layout.temporal.address });
    client = new Client({ connection });
    await deleteLifeboatSchedules(client);
    hookServer = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        hooks.push(JSON.parse(body) as (typeof hooks)[number]);
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-apply-'));
    const raw = parse(fs.readFileSync(stack.planFile, 'utf8')) as RawPlan;
    // Its own prefix: the backups and the retention run here never touch the stack's repository.
    raw.storage.primary.url = `s3://${stack.layout.s3.bucket}/test-apply-${Date.now()}`;
    raw.notifications = {
      webhooks: [
        {
          name: 'test-hook',
          url: `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`,
          events: ['failure'],
        },
      ],
    };
    planFile = path.join(tmp, 'lifeboat.yaml');
    fs.writeFileSync(planFile, stringify(raw));
    // The changed plan: incremental every 2h (an update), no drill schedule (a delete).
    raw.backup.policies[0]!.incremental = { every: '2h' };
    delete raw.drills.policies[0]!.schedule;
    changedPlanFile = path.join(tmp, 'changed.yaml');
    fs.writeFileSync(changedPlanFile, stringify(raw));
    // Both regions: the backup streams from the primary's, the monitor checks from the other.
    for (const region of ['us-east-1', 'us-west-2'])
      workers.push(await startWorker(region, stack.layout.secretsFile, planFile, stack.env));
    await client.schedule.create({
      scheduleId: FOREIGN,
      spec: { intervals: [{ every: '1d' }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'somebodyElsesWorkflow',
        taskQueue: lockQueue,
        args: [],
      },
      state: { paused: true, note: 'made by hand' },
    });
  });

  after(async () => {
    for (const id of [FOREIGN, SLOW, LATE])
      await client.schedule
        .getHandle(id)
        .delete()
        .catch(() => {});
    await deleteLifeboatSchedules(client).catch(() => {});
    // Only what this file started: an archiver or monitor that ran before it keeps running.
    for (const id of startedByApply) {
      const h = client.workflow.getHandle(id);
      await h.cancel().catch(() => {});
      await h.result().catch(() => {});
    }
    for (const id of started)
      await client.workflow
        .getHandle(id)
        .terminate('test clean-up')
        .catch(() => {});
    for (const w of workers) await w.stop('SIGTERM');
    hookServer?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    await connection?.close();
  });

  it('refuses a plan with problems: exit 2, every problem with its path', async () => {
    const raw = parse(fs.readFileSync(planFile, 'utf8')) as RawPlan;
    raw.backup.policies.push({
      ...raw.backup.policies[0],
      full: { cron: '0 1 * * *', every: '1h' },
      startWindow: 'soon',
    });
    const bad = path.join(path.dirname(planFile), 'bad.yaml');
    fs.writeFileSync(bad, stringify(raw));
    const run = await runCli(['apply', '-f', bad], stack.env);
    assert.equal(run.code, 2, run.stdout + run.stderr);
    assert.match(run.stderr, /backup\.policies\[1\]\.full: give exactly one of cron or every/);
    assert.match(run.stderr, /backup\.policies\[1\]\.startWindow: expected a duration/);
  });

  it('--dry-run on an empty namespace lists what it would create and creates nothing', async () => {
    const out = await apply(planFile, '--dry-run');
    assert.equal(out.dryRun, true);
    assert.deepEqual(actions(out), {
      [FULL]: 'create',
      [INC]: 'create',
      [DRILL]: 'create',
      [RETENTION]: 'create',
    });
    const running = [await runIdOf('wal-archiver-orders'), await runIdOf('monitor-orders')];
    assert.deepEqual(
      out.workflows.map((w) => [w.workflowId, w.state]),
      [
        ['wal-archiver-orders', running[0] ? 'already-running' : 'would-start'],
        ['monitor-orders', running[1] ? 'already-running' : 'would-start'],
      ],
    );
    // The dry run started nothing.
    assert.deepEqual([await runIdOf('wal-archiver-orders'), await runIdOf('monitor-orders')], running);
    for (const id of [FULL, INC, DRILL, RETENTION])
      await assert.rejects(client.schedule.getHandle(id).describe(), /not found/i);
  });

  it('creates the plan schedules: spec, action, args, overlap SKIP; starts archiver and monitor', async () => {
    const before = [await runIdOf('wal-archiver-orders'), await runIdOf('monitor-orders')];
    const out = await apply(planFile);
    assert.deepEqual(actions(out), {
      [FULL]: 'create',
      [INC]: 'create',
      [DRILL]: 'create',
      [RETENTION]: 'create',
    });
    // Started unless one already ran (then kept, not restarted).
    assert.deepEqual(
      out.workflows.map((w) => [w.workflowId, w.state]),
      [
        ['wal-archiver-orders', before[0] ? 'already-running' : 'started'],
        ['monitor-orders', before[1] ? 'already-running' : 'started'],
      ],
    );
    startedByApply.push(...out.workflows.filter((w) => w.state === 'started').map((w) => w.workflowId));
    runIdsAfterFirstApply = [await runIdOf('wal-archiver-orders'), await runIdOf('monitor-orders')];
    assert.ok(runIdsAfterFirstApply.every(Boolean), 'archiver and monitor run');
    if (before[0]) assert.equal(runIdsAfterFirstApply[0], before[0]);
    if (before[1]) assert.equal(runIdsAfterFirstApply[1], before[1]);
    const full = await client.schedule.getHandle(FULL).describe();
    assert.equal(full.action.type, 'startWorkflow');
    assert.equal(full.action.workflowType, 'scheduledBackupWorkflow');
    assert.equal(full.action.taskQueue, 'lifeboat');
    assert.deepEqual(full.action.args, [
      { database: DB, kind: 'full', policy: 'orders-daily', requestedBy: `schedule:${FULL}` },
    ]);
    assert.equal(full.policies.overlap, 'SKIP');
    assert.equal(full.policies.catchupWindow, 86_400_000);
    assert.deepEqual(full.memo, {
      lifeboat: {
        managedBy: 'lifeboat apply',
        plan: 'local',
        kind: 'backup-full',
        policy: 'orders-daily',
        database: DB,
      },
    });
    // cron '0 2 * * *' comes back as a calendar: 02:00:00 every day
    const cal = full.spec.calendars?.[0] as any;
    assert.deepEqual([cal.hour[0].start, cal.minute[0].start, cal.second[0].start], [2, 0, 0]);
    const inc = await client.schedule.getHandle(INC).describe();
    assert.deepEqual(
      inc.spec.intervals?.map((i) => i.every),
      [3_600_000],
    );
    assert.equal((inc.action.args as any[])[0].kind, 'incremental');
    const drill = await client.schedule.getHandle(DRILL).describe();
    assert.equal(drill.action.workflowType, 'drDrillWorkflow');
    assert.deepEqual(drill.action.args, [
      { database: DB, region: 'us-west-2', requestedBy: `schedule:${DRILL}`, policy: 'orders-weekly' },
    ]);
    const retention = await client.schedule.getHandle(RETENTION).describe();
    assert.deepEqual([retention.spec.intervals?.[0]?.every, retention.spec.jitter], [86_400_000, 1_800_000]);
    // The stack's own temporal CLI shows them.
    const listed = execFileSync(
      path.join(stack.layout.toolsBin, 'temporal'),
      ['schedule', 'list', '--address', stack.layout.temporal.address],
      { encoding: 'utf8' },
    );
    for (const id of [FULL, INC, DRILL, RETENTION]) assert.match(listed, new RegExp(id));
    process.stdout.write(`# temporal schedule list:\n${listed.replace(/^/gm, '#   ')}\n`);
  });

  it('a second apply: every schedule unchanged, archiver and monitor already running', async () => {
    const out = await apply(planFile);
    assert.deepEqual(actions(out), {
      [FULL]: 'unchanged',
      [INC]: 'unchanged',
      [DRILL]: 'unchanged',
      [RETENTION]: 'unchanged',
    });
    assert.deepEqual(
      out.workflows.map((w) => w.state),
      ['already-running', 'already-running'],
    );
    // Once: the same runs as after the first apply.
    assert.deepEqual(
      [await runIdOf('wal-archiver-orders'), await runIdOf('monitor-orders')],
      runIdsAfterFirstApply,
    );
  });

  it('--dry-run of a changed plan says what would change and changes nothing', async () => {
    const before = await client.schedule.getHandle(INC).describe();
    const out = await apply(changedPlanFile, '--dry-run');
    assert.deepEqual(actions(out), {
      [FULL]: 'unchanged',
      [INC]: 'update',
      [DRILL]: 'delete',
      [RETENTION]: 'unchanged',
    });
    const afterwards = await client.schedule.getHandle(INC).describe();
    assert.deepEqual(afterwards.spec.intervals, before.spec.intervals);
    assert.equal(afterwards.state.note, before.state.note);
    await client.schedule.getHandle(DRILL).describe(); // still there
  });

  it('a changed plan updates one schedule and deletes the removed one; a foreign schedule is untouched', async () => {
    const foreignBefore = await client.schedule.getHandle(FOREIGN).describe();
    const out = await apply(changedPlanFile);
    assert.deepEqual(actions(out), {
      [FULL]: 'unchanged',
      [INC]: 'update',
      [DRILL]: 'delete',
      [RETENTION]: 'unchanged',
    });
    const inc = await client.schedule.getHandle(INC).describe();
    assert.deepEqual(
      inc.spec.intervals?.map((i) => i.every),
      [7_200_000],
    );
    await assert.rejects(client.schedule.getHandle(DRILL).describe(), /not found/i);
    const again = await apply(changedPlanFile);
    assert.deepEqual(actions(again), { [FULL]: 'unchanged', [INC]: 'unchanged', [RETENTION]: 'unchanged' });
    const foreign = await client.schedule.getHandle(FOREIGN).describe();
    assert.equal(foreign.state.note, foreignBefore.state.note);
    assert.equal(foreign.state.paused, true);
    assert.equal(foreign.action.workflowType, 'somebodyElsesWorkflow');
  });

  it('a schedule edited by hand (overlap, args) is put back by the next apply, saying what drifted', async () => {
    const handle = client.schedule.getHandle(FULL);
    await handle.update((prev) => ({
      ...prev,
      policies: { ...prev.policies, overlap: 'ALLOW_ALL' },
      action: { ...(prev.action as any), args: [{ database: DB, kind: 'full', policy: 'by-hand' }] },
    }));
    const run = await runCli(['apply', '-f', changedPlanFile], stack.env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /lifeboat-backup-full-orders-daily +updated/);
    assert.match(
      run.stdout,
      /lifeboat-backup-full-orders-daily: overlap policy is "ALLOW_ALL", the plan says "SKIP"/,
    );
    assert.match(run.stdout, /lifeboat-backup-full-orders-daily: args is /);
    const full = await handle.describe();
    assert.equal(full.policies.overlap, 'SKIP');
    assert.deepEqual(full.action.args, [
      { database: DB, kind: 'full', policy: 'orders-daily', requestedBy: `schedule:${FULL}` },
    ]);
    assert.deepEqual(actions(await apply(changedPlanFile)), {
      [FULL]: 'unchanged',
      [INC]: 'unchanged',
      [RETENTION]: 'unchanged',
    });
  });

  it('a triggered full backup schedule runs the backup under backup-orders', async () => {
    const handle = client.schedule.getHandle(FULL);
    const run = await triggerAndWait(handle);
    const result = (await client.workflow.getHandle(run).result()) as ScheduledBackupResult;
    assert.equal(result.outcome, 'completed', JSON.stringify(result));
    assert.equal(result.childWorkflowId, 'backup-orders');
    assert.match(result.backupId ?? '', /^orders-full-/);
    const child = await client.workflow.getHandle('backup-orders', result.childRunId).describe();
    assert.equal(child.type, 'fullBackupWorkflow');
    assert.equal(child.status.name, 'COMPLETED');
    const childResult = (await client.workflow.getHandle('backup-orders', result.childRunId).result()) as {
      backupId: string;
    };
    assert.equal(childResult.backupId, result.backupId);
    process.stdout.write(`# scheduled run ${run}: ${result.outcome}, backup ${result.backupId}\n`);
  });

  it('triggered incremental and retention schedules run their workflows under their locks', async () => {
    const inc = (await client.workflow
      .getHandle(await triggerAndWait(client.schedule.getHandle(INC)))
      .result()) as ScheduledBackupResult;
    assert.ok(['completed', 'unchanged'].includes(inc.outcome), JSON.stringify(inc));
    const incChild = await client.workflow.getHandle('backup-orders', inc.childRunId).describe();
    assert.deepEqual([incChild.type, incChild.status.name], ['incrementalBackupWorkflow', 'COMPLETED']);
    const ret = (await client.workflow
      .getHandle(await triggerAndWait(client.schedule.getHandle(RETENTION)))
      .result()) as ScheduledBackupResult;
    assert.equal(ret.outcome, 'completed', JSON.stringify(ret));
    const retChild = await client.workflow.getHandle('retention-orders', ret.childRunId).describe();
    assert.deepEqual([retChild.type, retChild.status.name], ['retentionWorkflow', 'COMPLETED']);
    process.stdout.write(`# incremental: ${inc.outcome} ${inc.backupId ?? ''}; retention: ${ret.outcome}\n`);
  });

  it('while another backup holds backup-orders, a triggered run is skipped and says so', async () => {
    const holder = await holdLock();
    try {
      const run = await triggerAndWait(client.schedule.getHandle(FULL));
      const result = (await client.workflow.getHandle(run).result()) as ScheduledBackupResult;
      assert.equal(result.outcome, 'skipped');
      assert.match(result.reason ?? '', /skipped: a backup of orders is running \(backup-orders\)/);
      // The holder is still the one running: the lock was honoured.
      assert.equal((await client.workflow.getHandle('backup-orders').describe()).runId, holder);
    } finally {
      await client.workflow.getHandle('backup-orders', holder).terminate('test: lock released');
    }
  });

  it('a second trigger while the first backup runs is skipped and recorded; cancelling the first stops its backup', async () => {
    // Same action as apply makes, with a 32 kB/s backup that runs until cancelled.
    const h = await client.schedule.create({
      scheduleId: SLOW,
      spec: { intervals: [{ every: '1d' }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'scheduledBackupWorkflow',
        taskQueue: 'lifeboat',
        workflowId: SLOW,
        args: [
          { database: DB, kind: 'full', policy: 'slow', requestedBy: `schedule:${SLOW}`, maxRate: '32k' },
        ],
      },
      policies: { overlap: 'SKIP' },
    });
    const first = await triggerAndWait(h);
    for (let i = 0; i < 100; i++) {
      const lock = await client.workflow
        .getHandle('backup-orders')
        .describe()
        .catch(() => undefined);
      if (lock?.status.name === 'RUNNING' && lock.parentExecution?.workflowId === first) break;
      await sleep(200);
    }
    const lock = await client.workflow.getHandle('backup-orders').describe();
    assert.equal(lock.parentExecution?.workflowId, first, 'the first run holds backup-orders');
    await sleep(1100); // the next run's id carries another second
    const second = await triggerAndWait(h);
    const result = (await client.workflow.getHandle(second).result()) as ScheduledBackupResult;
    assert.equal(result.outcome, 'skipped');
    assert.match(result.reason ?? '', /a backup of orders is running \(backup-orders\)/);
    assert.equal((await client.workflow.getHandle('backup-orders').describe()).runId, lock.runId);
    await client.workflow.getHandle(first).cancel();
    await assert.rejects(client.workflow.getHandle(first).result(), /cancel/i);
    const child = await client.workflow.getHandle('backup-orders', lock.runId).describe();
    assert.equal(child.status.name, 'CANCELLED');
  });

  it('with a start window, a run that cannot take the lock in time is missed, and the webhook hears it', async () => {
    const holder = await holdLock();
    const hooksBefore = hooks.length;
    try {
      const id = `test-scheduled-missed-${Date.now()}`;
      started.push(id);
      const h = await client.workflow.start('scheduledBackupWorkflow', {
        taskQueue: 'lifeboat',
        workflowId: id,
        args: [
          { database: DB, kind: 'full', policy: 'orders-daily', requestedBy: 'test', startWindow: '3s' },
        ],
      });
      const err = await h.result().then(
        () => assert.fail('expected the run to fail as missed'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError);
      assert.equal((err.cause as any).type, 'ScheduledBackupMissed');
      assert.match(
        err.cause!.message,
        /could not start inside its start window of 3s: another run held backup-orders/,
      );
      const record = (err.cause as any).details[0] as ScheduledBackupResult;
      assert.equal(record.outcome, 'missed');
      assert.ok(record.attempts >= 2, `attempts ${record.attempts}`);
      assert.equal((await client.workflow.getHandle('backup-orders').describe()).runId, holder);
      const hook = hooks.slice(hooksBefore).find((x) => x.title.includes('missed'));
      assert.ok(hook, JSON.stringify(hooks));
      assert.equal(hook.event, 'failure');
    } finally {
      await client.workflow.getHandle('backup-orders', holder).terminate('test: lock released');
    }
  });

  it('a run that fires after its start window (a catch-up after an outage) is missed at once', async () => {
    const hooksBefore = hooks.length;
    const h = await client.schedule.create({
      scheduleId: LATE,
      spec: { intervals: [{ every: '1h' }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'scheduledBackupWorkflow',
        taskQueue: 'lifeboat',
        workflowId: LATE,
        args: [
          { database: DB, kind: 'full', policy: 'late', requestedBy: `schedule:${LATE}`, startWindow: '1m' },
        ],
      },
      policies: { overlap: 'SKIP' },
    });
    // A backfill of a past hour: the run's scheduled time is 30–90 minutes ago, as after an outage.
    const now = Date.now();
    await h.backfill({ start: new Date(now - 90 * 60_000), end: new Date(now - 30 * 60_000) });
    const run = await waitForRun(h, new Set());
    const err = await client.workflow
      .getHandle(run)
      .result()
      .then(
        () => assert.fail('expected the run to be missed'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof WorkflowFailedError);
    assert.equal((err.cause as any).type, 'ScheduledBackupMissed');
    const record = (err.cause as any).details[0] as ScheduledBackupResult;
    assert.equal(record.outcome, 'missed');
    assert.equal(record.attempts, 0, 'no backup was attempted');
    assert.ok(now - Date.parse(record.scheduledAt) >= 30 * 60_000, record.scheduledAt);
    assert.match(record.reason ?? '', /after its scheduled time .* past its start window of 1m/);
    assert.ok(
      hooks.slice(hooksBefore).some((x) => x.title.includes('missed')),
      JSON.stringify(hooks),
    );
  });

  it('a backup running past its completion window is cancelled cleanly and reported', async () => {
    const hooksBefore = hooks.length;
    const id = `test-scheduled-completion-${Date.now()}`;
    started.push(id);
    // 32 kB/s: the base backup of the stack database (tens of MB) cannot finish in 2 s.
    const h = await client.workflow.start('scheduledBackupWorkflow', {
      taskQueue: 'lifeboat',
      workflowId: id,
      args: [
        {
          database: DB,
          kind: 'full',
          policy: 'orders-daily',
          requestedBy: 'test',
          completionWindow: '2s',
          maxRate: '32k',
        },
      ],
    });
    const err = await h.result().then(
      () => assert.fail('expected the run to fail past its completion window'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.equal((err.cause as any).type, 'CompletionWindowExceeded');
    const record = (err.cause as any).details[0] as ScheduledBackupResult;
    assert.equal(record.outcome, 'cancelled');
    const child = await client.workflow.getHandle('backup-orders', record.childRunId).describe();
    assert.equal(child.status.name, 'CANCELLED');
    const hook = hooks.slice(hooksBefore).find((x) => x.title.includes('cancelled'));
    assert.ok(hook, JSON.stringify(hooks));
    assert.match(hook.text, /past its completion window of 2s/);
  });

  it('a scheduled backup that fails is reported as failed, with the cause, and the webhook hears it', async () => {
    const hooksBefore = hooks.length;
    const id = `test-scheduled-failed-${Date.now()}`;
    started.push(id);
    const h = await client.workflow.start('scheduledBackupWorkflow', {
      taskQueue: 'lifeboat',
      workflowId: id,
      args: [{ database: 'not-in-plan', kind: 'full', policy: 'orders-daily', requestedBy: 'test' }],
    });
    const err = await h.result().then(
      () => assert.fail('expected the run to fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.equal((err.cause as any).type, 'ScheduledBackupFailed');
    assert.match(
      err.cause!.message,
      /full backup of not-in-plan failed: database "not-in-plan" is not in the plan/,
    );
    const record = (err.cause as any).details[0] as ScheduledBackupResult;
    assert.deepEqual([record.outcome, record.childWorkflowId], ['failed', 'backup-not-in-plan']);
    assert.ok(
      hooks.slice(hooksBefore).some((x) => x.title.includes('failed')),
      JSON.stringify(hooks),
    );
  });

  it('a hand-made schedule under an id the plan wants is left alone: apply reports it and exits 1', async () => {
    await client.schedule.getHandle(RETENTION).delete();
    await client.schedule.create({
      scheduleId: RETENTION,
      spec: { intervals: [{ every: '1d' }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'somebodyElsesWorkflow',
        taskQueue: lockQueue,
        args: [],
      },
      state: { paused: true, note: 'made by hand' },
    });
    const run = await runCli(['apply', '-f', changedPlanFile], stack.env);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(
      run.stderr,
      /schedules\.lifeboat-retention-orders: schedule lifeboat-retention-orders exists but was not created by lifeboat apply/,
    );
    assert.match(run.stdout, /lifeboat-backup-full-orders-daily +unchanged/);
    const handMade = await client.schedule.getHandle(RETENTION).describe();
    assert.deepEqual(
      [handMade.state.note, handMade.state.paused, handMade.action.workflowType],
      ['made by hand', true, 'somebodyElsesWorkflow'],
    );
  });

  /** The run id of the running workflow with this id, or undefined when none runs. */
  async function runIdOf(workflowId: string): Promise<string | undefined> {
    const d = await client.workflow
      .getHandle(workflowId)
      .describe()
      .catch(() => undefined);
    return d?.status.name === 'RUNNING' ? d.runId : undefined;
  }

  /** A fullBackupWorkflow under backup-orders that nothing runs: holds the lock until terminated. */
  async function holdLock(): Promise<string> {
    const h = await client.workflow.start('fullBackupWorkflow', {
      taskQueue: lockQueue,
      workflowId: 'backup-orders',
      args: [{ database: DB }],
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    });
    return h.firstExecutionRunId;
  }

  /** Triggers the schedule once and returns the id of the workflow it started. */
  async function triggerAndWait(handle: ScheduleHandle): Promise<string> {
    const seen = new Set(
      (await handle.describe()).info.recentActions.map((a) => a.action.workflow.workflowId),
    );
    await handle.trigger();
    return waitForRun(handle, seen);
  }

  /** The id of the first workflow the schedule started that is not in `seen`. */
  async function waitForRun(handle: ScheduleHandle, seen: Set<string>): Promise<string> {
    for (let i = 0; i < 100; i++) {
      const d = await handle.describe();
      const fresh = [
        ...d.info.runningActions.map((a) => a.workflow.workflowId),
        ...d.info.recentActions.map((a) => a.action.workflow.workflowId),
      ].find((id) => !seen.has(id));
      if (fresh) return fresh;
      await sleep(200);
    }
    throw new Error(`schedule ${handle.scheduleId} started nothing new`);
  }
});

/** Removes every schedule an earlier apply made on this stack (any plan). */
async function deleteLifeboatSchedules(client: Client): Promise<void> {
  for await (const s of client.schedule.list())
    if ((s.memo?.lifeboat as { managedBy?: string } | undefined)?.managedBy === 'lifeboat apply')
      await client.schedule
        .getHandle(s.scheduleId)
        .delete()
        .catch(() => {});
  // The listing lags: the ids apply uses are deleted by name too.
  for (const id of [FULL, INC, DRILL, RETENTION])
    await client.schedule
      .getHandle(id)
      .delete()
      .catch(() => {});
}
