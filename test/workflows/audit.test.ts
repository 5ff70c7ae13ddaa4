// Audit records against the real local stack: real workers (with the audit interceptor in their
// bundle), real Temporal, the records read back from the real SeaweedFS bucket.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import { parse, stringify } from 'yaml';
import { readAuditRecords, writeOnce } from '../../src/activities/audit.ts';
import { createObjectStore, type ObjectStore } from '../../src/activities/ports/object-store.ts';
import type { ApprovalState } from '../../src/domain/approval.ts';
import { auditRecordKey, type AuditRecord } from '../../src/domain/audit.ts';
import type { DoctorReport } from '../../src/domain/doctor.ts';
import { AUDIT_PATCH } from '../../src/workflows/audit-interceptor.ts';
import { startS3Server, stopS3Server } from '../../src/stack/s3-server.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';

const STARTED = proto.temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;
const FAILOVER_ID = 'failover-orders';

describe('audit records on the local stack', () => {
  let stack: TestStack;
  let workers: WorkerProcess[] = [];
  let client: Client;
  let connection: Connection;
  let store: ObjectStore;
  let planFile: string;
  const testStart = new Date();
  const env = (user: string) => ({ ...stack.env, LIFEBOAT_USER: user });

  /** The record of one run, read from the bucket (written before the run's result is returned). */
  const recordOf = async (
    workflowId: string,
    runId: string,
  ): Promise<{ record: AuditRecord; text: string }> => {
    const listing = await readAuditRecords(store, {
      since: new Date(testStart.getTime() - 60_000),
      until: new Date(Date.now() + 60_000),
    });
    assert.deepEqual(listing.problems, []);
    const found = listing.records.find((r) => r.workflowId === workflowId && r.runId === runId);
    assert.ok(found, `no audit record of ${workflowId} run ${runId}`);
    const { key, ...record } = found;
    assert.equal(key, auditRecordKey('', record));
    return { record, text: Buffer.from(await store.get(key)).toString('utf8') };
  };
  const assertNoSecret = (text: string) => {
    assert.doesNotMatch(text, /AGE-SECRET-KEY-/);
    for (const [name, value] of Object.entries(stack.secrets))
      if (value.length >= 6) assert.ok(!text.includes(value), `the record contains ${name}`);
  };
  const assertStepsTimed = (record: AuditRecord) => {
    for (const s of record.steps) {
      assert.ok(s.startedAt >= record.startedAt, `${s.name} starts within the run`);
      if (s.endedAt)
        assert.ok(s.endedAt >= s.startedAt && s.endedAt <= record.endedAt, `${s.name} ends in order`);
    }
  };
  /** The write is a real activity after a patch marker, in the run's own history. */
  const assertAuditedInHistory = async (handle: WorkflowHandle) => {
    const events = (await handle.fetchHistory()).events ?? [];
    const markers = events.flatMap((e) =>
      (e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads ?? []).map((p) =>
        Buffer.from(p.data ?? []).toString('utf8'),
      ),
    );
    assert.ok(
      markers.some((m) => m.includes(`"${AUDIT_PATCH}"`)),
      `the ${AUDIT_PATCH} patch marker is in history: ${markers.join(', ')}`,
    );
    const scheduled = events.filter(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'writeAuditRecord',
    );
    assert.equal(scheduled.length, 1);
    assert.ok(
      events.some(
        (e) =>
          String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(scheduled[0]!.eventId),
      ),
      'writeAuditRecord completed',
    );
  };

  before(async () => {
    stack = await ensureStack();
    store = createObjectStore(stack.plan.storage.primary, stack.env);
    const plan = parse(fs.readFileSync(stack.planFile, 'utf8'));
    plan.failover.policies[0].detection = { checks: 3, interval: '1s' };
    planFile = path.join(stack.layout.state, 'audit-test.yaml');
    fs.writeFileSync(planFile, stringify(plan));
    connection = await Connection.connect({ address: stack.layout.temporal.address });
    client = new Client({ connection });
    workers = await Promise.all(
      ['us-east-1', 'us-west-2'].map((r) => startWorker(r, stack.layout.secretsFile, planFile, stack.env)),
    );
  });

  after(async () => {
    await client?.workflow
      .getHandle(FAILOVER_ID)
      .terminate('audit test cleanup')
      .catch(() => undefined);
    await Promise.all(workers.map((w) => w.stop('SIGTERM')));
    await connection?.close();
  });

  it('a doctor run records who asked, every step with its times, and the outcome; a rewrite never overwrites', async () => {
    const run = await runCli(['doctor', '-f', planFile, '--json'], env('audit-tester'));
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const { workflowId } = JSON.parse(run.stdout) as DoctorReport & { workflowId: string };
    const handle = client.workflow.getHandle(workflowId);
    const { runId } = await handle.describe();
    const { record, text } = await recordOf(workflowId, runId);

    assert.equal(record.workflowType, 'doctorWorkflow');
    assert.equal(record.requestedBy, 'audit-tester');
    assert.equal(record.outcome, 'completed');
    assert.equal(record.result, 'healthy');
    assert.equal(record.kind, 'doctor');
    assert.ok(record.endedAt >= record.startedAt);
    const names = record.steps.map((s) => `${s.name}${s.taskQueue ? `@${s.taskQueue}` : ''}`);
    for (const want of [
      'describePlan',
      'checkStorage',
      'inspectPostgres@lifeboat-us-east-1',
      'inspectPostgres@lifeboat-us-west-2',
    ])
      assert.ok(names.includes(want), `${want} in ${names.join(', ')}`);
    assert.ok(record.steps.every((s) => s.outcome === 'completed' && s.endedAt));
    assert.ok(!names.includes('writeAuditRecord'), 'the audit write is not one of the run’s steps');
    assertStepsTimed(record);
    assertNoSecret(text);
    await assertAuditedInHistory(handle);

    // A retry of the same write finds its own record: success, nothing rewritten.
    const key = auditRecordKey('', record);
    const again = await writeOnce(store, record);
    assert.deepEqual(again, { key, alreadyPresent: true });
    // A different record under the same key is refused and the stored one stays as it was.
    await assert.rejects(
      writeOnce(store, { ...record, requestedBy: 'mallory', outcome: 'failed' }),
      (err: Error) => {
        assert.equal((err as Error & { code?: string }).code, 'IntegrityError');
        assert.match(
          err.message,
          /a different audit record already exists at audit\/\d{4}\/\d\d\/.*; not overwritten/,
        );
        return true;
      },
    );
    assert.equal(Buffer.from(await store.get(key)).toString('utf8'), text);
  });

  it('a failover rejected at its gate records the requester, each decision with name and time, and refused signals', async () => {
    const start = await runCli(
      [
        'failover',
        '-f',
        planFile,
        '--database',
        'orders',
        '--to',
        'us-west-2',
        '--reason',
        'audit test',
        '--force',
        '--detach',
        '--json',
      ],
      env('carol'),
    );
    assert.equal(start.code, 0, start.stderr);
    const { runId } = JSON.parse(start.stdout) as { runId: string };
    const handle = client.workflow.getHandle(FAILOVER_ID, runId);
    const approval = () => handle.query<ApprovalState & { refused: string[] }>('approval');
    for (let i = 0; !(await approval().catch(() => undefined))?.waiting; i++) {
      assert.ok(i < 600, 'the approval gate never opened');
      await sleep(50);
    }
    // An outsider's signal is refused (a signal cannot be answered: the gate lists it).
    await handle.signal('approve', { approver: 'dave' });
    // alice approves by signal, bob rejects by Update (the CLI).
    await handle.signal('approve', { approver: 'alice', comment: 'looks right' });
    for (let i = 0; (await approval()).decisions.length < 1; i++) {
      assert.ok(i < 600, 'alice’s signal was never accepted');
      await sleep(50);
    }
    const reject = await runCli(
      ['approve', FAILOVER_ID, '--as', 'bob', '--reject', '--reason', 'the region is fine'],
      env('bob'),
    );
    assert.equal(reject.code, 0, reject.stderr);
    const result = (await handle.result()) as { outcome: string };
    assert.equal(result.outcome, 'rejected');

    const { record, text } = await recordOf(FAILOVER_ID, runId);
    assert.equal(record.workflowType, 'regionalFailoverWorkflow');
    assert.equal(record.requestedBy, 'carol');
    assert.equal(record.database, 'orders');
    assert.equal(record.region, 'us-east-1');
    assert.equal(record.targetRegion, 'us-west-2');
    assert.equal(record.outcome, 'completed');
    assert.equal(record.result, 'rejected');
    assert.equal(record.approvals.length, 1);
    const gate = record.approvals[0]!;
    assert.equal(gate.requestedBy, 'carol');
    assert.equal(gate.outcome, 'rejected');
    assert.deepEqual(
      gate.decisions.map((d) => [d.approver, d.decision, d.comment]),
      [
        ['alice', 'approved', 'looks right'],
        ['bob', 'rejected', 'the region is fine'],
      ],
    );
    for (const d of gate.decisions) assert.ok(d.at >= record.startedAt && d.at <= record.endedAt, d.at);
    assert.equal(gate.refused.length, 1);
    assert.match(gate.refused[0]!, /dave is not an approver of this policy/);
    assert.ok(
      record.steps.length > 0 && record.steps.every((s) => s.endedAt),
      'every step before the gate ended',
    );
    assertStepsTimed(record);
    assertNoSecret(text);
    await assertAuditedInHistory(handle);
  });

  it('a failed run records that it failed and why', async () => {
    const handle = await client.workflow.start('fullBackupWorkflow', {
      taskQueue: 'lifeboat',
      workflowId: `audit-backup-nope-${Date.now()}`,
      args: [{ database: 'nope', requestedBy: 'audit-tester' }],
    });
    await assert.rejects(handle.result(), WorkflowFailedError);
    const { record, text } = await recordOf(handle.workflowId, (await handle.describe()).runId);
    assert.equal(record.outcome, 'failed');
    assert.equal(record.requestedBy, 'audit-tester');
    assert.equal(record.database, 'nope');
    assert.match(record.failure?.message ?? '', /database "nope" is not in the plan "local"/);
    assertNoSecret(text);
  });

  it('a cancelled run records that it was cancelled, with the step cancelled mid-way and the clean-up after it', async () => {
    const handle = await client.workflow.start('fullBackupWorkflow', {
      taskQueue: 'lifeboat',
      workflowId: 'backup-orders',
      workflowIdConflictPolicy: 'FAIL',
      args: [{ database: 'orders', maxRate: '2M', partSizeMiB: 5, requestedBy: 'audit-tester' }],
    });
    for (let i = 0; ; i++) {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      if (pending.some((a) => a.activityType?.name === 'streamBaseBackup' && a.state === STARTED)) break;
      assert.ok(i < 600, 'streaming never started');
      await sleep(25);
    }
    await handle.cancel();
    await assert.rejects(
      handle.result(),
      (err: WorkflowFailedError) => err.cause?.name === 'CancelledFailure',
    );
    const { record, text } = await recordOf('backup-orders', (await handle.describe()).runId);
    assert.equal(record.outcome, 'cancelled');
    assert.equal(record.requestedBy, 'audit-tester');
    assert.equal(record.database, 'orders');
    const stream = record.steps.find((s) => s.name === 'streamBaseBackup');
    assert.equal(stream?.outcome, 'cancelled');
    const after = record.steps.filter((s) => s.startedAt >= stream.endedAt!);
    assert.ok(after.length > 0, 'the clean-up steps after the cancellation are listed');
    assert.ok(
      after.every((s) => s.outcome === 'completed'),
      JSON.stringify(after),
    );
    assertNoSecret(text);
  });
  it('runs at the same time on one worker keep their steps apart', async () => {
    const stamp = Date.now();
    const [doctor, backup] = await Promise.all([
      client.workflow.start('doctorWorkflow', {
        taskQueue: 'lifeboat',
        workflowId: `audit-together-doctor-${stamp}`,
        args: [{ requestedBy: 'together-a' }],
      }),
      client.workflow.start('fullBackupWorkflow', {
        taskQueue: 'lifeboat',
        workflowId: `audit-together-nope-${stamp}`,
        args: [{ database: 'nope', requestedBy: 'together-b' }],
      }),
    ]);
    await Promise.allSettled([doctor.result(), backup.result()]);
    const a = (await recordOf(doctor.workflowId, doctor.firstExecutionRunId)).record;
    const b = (await recordOf(backup.workflowId, backup.firstExecutionRunId)).record;
    assert.equal(a.requestedBy, 'together-a');
    assert.equal(b.requestedBy, 'together-b');
    const doctorSteps = [
      'describePlan',
      'inspectPostgres',
      'checkStorage',
      'checkDns',
      'checkCluster',
      'checkWorkerTools',
    ];
    assert.ok(
      a.steps.every((s) => doctorSteps.includes(s.name)),
      a.steps.map((s) => s.name).join(),
    );
    assert.deepEqual(
      b.steps.map((s) => s.name),
      ['describePlan'],
    );
  });

  it('a run started by a schedule says which schedule asked', async () => {
    const scheduleId = `audit-test-${Date.now()}`;
    const schedule = await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: '365d' }] },
      action: { type: 'startWorkflow', workflowType: 'doctorWorkflow', taskQueue: 'lifeboat', args: [{}] },
      state: { paused: true },
    });
    try {
      await schedule.trigger();
      let started: { workflowId: string; firstExecutionRunId: string } | undefined;
      for (let i = 0; !started; i++) {
        assert.ok(i < 600, 'the schedule never started its workflow');
        const action = (await schedule.describe()).info.recentActions[0]?.action;
        if (action?.type === 'startWorkflow') started = action.workflow;
        else await sleep(50);
      }
      await client.workflow.getHandle(started.workflowId, started.firstExecutionRunId).result();
      const { record } = await recordOf(started.workflowId, started.firstExecutionRunId);
      assert.equal(record.scheduledBy, scheduleId);
      assert.equal(record.requestedBy, `schedule:${scheduleId}`);
      assert.equal(record.outcome, 'completed');
    } finally {
      await schedule.delete();
    }
  });

  it('a long-running monitor records each run at continue-as-new; a terminated run leaves no record', async () => {
    const handle = await client.workflow.start('regionHealthMonitorWorkflow', {
      taskQueue: 'lifeboat',
      workflowId: `audit-monitor-${Date.now()}`,
      args: [{ database: 'orders', requestedBy: 'audit-tester', interval: '1s', continueAsNewAfter: 1 }],
    });
    const firstRunId = handle.firstExecutionRunId;
    const latest = () => client.workflow.getHandle(handle.workflowId);
    try {
      for (let i = 0; (await latest().describe()).runId === firstRunId; i++) {
        assert.ok(i < 600, 'the monitor never continued as new');
        await sleep(50);
      }
      // The first run's record was written before its continue-as-new command.
      const { record } = await recordOf(handle.workflowId, firstRunId);
      assert.equal(record.outcome, 'continued-as-new');
      assert.equal(record.workflowType, 'regionHealthMonitorWorkflow');
      assert.equal(record.requestedBy, 'audit-tester');
      assert.equal(record.database, 'orders');
      assert.equal(record.failure, undefined);
      assert.ok(record.steps.some((s) => s.name === 'describePlan' && s.outcome === 'completed'));
      assert.ok(record.steps.length >= 2, 'the run’s health check is listed too');

      // Paused, a run schedules nothing: terminated then, no activity of it can still be writing.
      await latest().signal('pause', { by: 'audit-tester' });
      let idle: string | undefined;
      for (let i = 0; !idle; i++) {
        assert.ok(i < 600, 'the monitor never paused');
        const before = await latest().describe();
        // A new run answers once it has read the plan and set its handlers.
        const status = await latest()
          .query<{ phase: string }>('monitorStatus')
          .catch(() => undefined);
        const after = await latest().describe();
        if (
          status?.phase === 'paused' &&
          before.runId === after.runId &&
          (after.raw.pendingActivities ?? []).length === 0
        )
          idle = after.runId;
        else await sleep(50);
      }
      await client.workflow.getHandle(handle.workflowId, idle).terminate('audit test: a terminated run');
      const listing = await readAuditRecords(store, {
        since: new Date(testStart.getTime() - 60_000),
        until: new Date(Date.now() + 60_000),
      });
      assert.ok(listing.records.some((r) => r.workflowId === handle.workflowId && r.runId === firstRunId));
      assert.deepEqual(
        listing.records.filter((r) => r.runId === idle),
        [],
        'a terminated run runs no more workflow code: no record',
      );
    } finally {
      await latest()
        .terminate('audit test cleanup')
        .catch(() => undefined);
    }
  });

  it('with storage down the write is tried a few times, then the run ends with its own outcome', async () => {
    // Killed after 1 s: a clean stop of SeaweedFS takes ~16 s and down is down either way.
    await stopS3Server(stack.layout, 1000);
    let s3Up = false;
    try {
      const started = Date.now();
      const handle = await client.workflow.start('doctorWorkflow', {
        taskQueue: 'lifeboat',
        workflowId: `audit-storage-down-${Date.now()}`,
        args: [{ requestedBy: 'audit-tester' }],
      });
      const report = (await handle.result()) as DoctorReport;
      process.stderr.write(`# doctor with storage down ended after ${Date.now() - started} ms\n`);
      assert.equal(report.ok, false, 'the doctor saw the storage down: its own outcome stands');
      const events = (await handle.fetchHistory()).events ?? [];
      const scheduled = events.find(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'writeAuditRecord',
      );
      assert.ok(scheduled, 'the write was attempted');
      const failed = events.find(
        (e) => String(e.activityTaskFailedEventAttributes?.scheduledEventId) === String(scheduled.eventId),
      );
      assert.ok(failed, 'the write failed after its retries');
      const attempt = events.find(
        (e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(scheduled.eventId),
      );
      assert.equal(attempt?.activityTaskStartedEventAttributes?.attempt, 5);
      assert.match(
        failed.activityTaskFailedEventAttributes?.failure?.cause?.message ??
          failed.activityTaskFailedEventAttributes?.failure?.message ??
          '',
        /writing the audit record audit\/\d{4}\/\d\d\/.*audit-storage-down-/,
      );
      await startS3Server(stack.layout, stack.secrets, stack.plan);
      s3Up = true;
      const listing = await readAuditRecords(store, {
        since: new Date(testStart.getTime() - 60_000),
        until: new Date(Date.now() + 60_000),
      });
      assert.equal(listing.records.filter((r) => r.workflowId === handle.workflowId).length, 0);
    } finally {
      if (!s3Up) await startS3Server(stack.layout, stack.secrets, stack.plan);
    }
  });

  it('lifeboat audit list reads the records back from the repository, filtered by database', async () => {
    const all = await runCli(['audit', 'list', '-f', planFile, '--since', '1h', '--json'], stack.env);
    assert.equal(all.code, 0, all.stderr);
    const listed = JSON.parse(all.stdout) as { records: AuditRecord[] };
    const types = new Set(listed.records.map((r) => r.workflowType));
    for (const t of ['doctorWorkflow', 'regionalFailoverWorkflow', 'fullBackupWorkflow'])
      assert.ok(types.has(t), t);

    const orders = await runCli(
      ['audit', 'list', '-f', planFile, '--since', '1h', '--database', 'orders'],
      stack.env,
    );
    assert.equal(orders.code, 0, orders.stderr);
    assert.match(orders.stdout, /^started +workflow +type +database +requested by +approvals +outcome/);
    assert.match(
      orders.stdout,
      /failover-orders +regionalFailoverWorkflow +orders +carol +alice approved, bob rejected +completed \(rejected\)/,
    );
    assert.match(orders.stdout, /backup-orders +fullBackupWorkflow +orders +audit-tester +cancelled/);
    assert.doesNotMatch(orders.stdout, /doctorWorkflow/);

    const bad = await runCli(['audit', 'list', '-f', planFile, '--since', 'last week'], stack.env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--since: "last week" is neither a duration/);
  });
});
