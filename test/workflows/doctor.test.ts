// doctorWorkflow against the real local stack: Temporal dev server, PostgreSQL primary and
// replica, SeaweedFS over TLS, moto's Route53 and the Kubernetes stand-ins, with real worker
// processes started through the CLI.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { DoctorReport } from '../../src/domain/doctor.ts';
import { startPostgres, stopPostgres } from '../../src/stack/postgres-clusters.ts';
import { leakedSecrets } from '../support/history.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';

describe('doctor on the local stack', () => {
  let stack: TestStack;
  let workers: WorkerProcess[] = [];
  let client: Client;
  let connection: Connection;

  const startWorkers = async () => {
    workers = await Promise.all(
      ['us-east-1', 'us-west-2'].map((r) =>
        startWorker(r, stack.layout.secretsFile, stack.planFile, stack.env),
      ),
    );
  };

  before(async () => {
    stack = await ensureStack();
    connection = await Connection.connect({ address: stack.layout.temporal.address });
    client = new Client({ connection });
    await startWorkers();
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGTERM')));
    await connection?.close();
  });

  it('reports every system healthy, exit 0, with no secret in the history', async () => {
    const run = await runCli(['doctor', '-f', stack.planFile, '--json'], stack.env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const report = JSON.parse(run.stdout) as DoctorReport & { workflowId: string };
    const failing = report.findings.filter((f) => !f.ok);
    assert.deepEqual(failing, []);
    const targets = report.findings.map((f) => `${f.system} ${f.target}`).sort();
    assert.deepEqual(targets, [
      'dns CNAME orders-db.lifeboat.internal.',
      'dns lifeboat.internal.',
      'kubernetes cluster us-east-1',
      'kubernetes cluster us-west-2',
      'postgres orders@us-east-1',
      'postgres orders@us-west-2',
      'storage s3://lifeboat-backups/lifeboat',
    ]);
    assert.match(
      report.findings.find((f) => f.target === 'orders@us-west-2')!.detail,
      /replica streaming, \d+ bytes behind/,
    );

    const history = await client.workflow.getHandle(report.workflowId).fetchHistory();
    assert.deepEqual(leakedSecrets(history, stack.secrets), []);
    const described = await client.workflow.getHandle(report.workflowId).describe();
    assert.deepEqual(described.searchAttributes.LifeboatKind, ['doctor']);
    assert.deepEqual(described.searchAttributes.LifeboatOutcome, ['healthy']);
  });

  it('says the replica is unreachable when it is stopped, exit 1', async () => {
    await stopPostgres(stack.layout, 'us-west-2');
    try {
      const run = await runCli(['doctor', '-f', stack.planFile], stack.env);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const line = run.stdout.split('\n').find((l) => l.includes('orders@us-west-2'));
      assert.match(
        line ?? '',
        new RegExp(
          `^FAIL\\s+postgres\\s+orders@us-west-2\\s+replica unreachable: 127\\.0\\.0\\.1:${stack.layout.postgres['us-west-2'].port}`,
        ),
      );
      assert.match(run.stdout, /^ok\s+postgres\s+orders@us-east-1/m);
      assert.match(run.stdout, /1 of 7 checks failed/);
    } finally {
      await startPostgres(stack.layout, 'us-west-2');
    }
  });

  it('completes when the worker running a check is SIGKILLed and started again', async () => {
    // Freeze the replica so the us-west-2 check is certainly in flight when its worker dies.
    const replicaPid = stack.postgresPid('us-west-2');
    process.kill(replicaPid, 'SIGSTOP');
    let resumed = false;
    try {
      const handle = await client.workflow.start('doctorWorkflow', {
        taskQueue: 'lifeboat',
        workflowId: `doctor-kill-test-${Date.now()}`,
        args: [{ requestedBy: 'test' }],
      });
      const westWorker = workers.find((w) => w.region === 'us-west-2')!;
      for (let i = 0; ; i++) {
        const pending = (await handle.describe()).raw.pendingActivities ?? [];
        if (
          pending.some(
            (a) =>
              a.activityType?.name === 'inspectPostgres' &&
              a.state === proto.temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
          )
        )
          break;
        assert.ok(i < 200, 'the replica check never started');
        await sleep(50);
      }
      assert.equal(await westWorker.stop('SIGKILL'), null);
      process.kill(replicaPid, 'SIGCONT');
      resumed = true;
      workers = [
        workers.find((w) => w.region === 'us-east-1')!,
        await startWorker('us-west-2', stack.layout.secretsFile, stack.planFile, stack.env),
      ];
      const report = (await handle.result()) as DoctorReport;
      assert.deepEqual(
        report.findings.filter((f) => !f.ok),
        [],
      );
      const attempts = (await handle.fetchHistory())
        .events!.filter((e) => e.activityTaskStartedEventAttributes)
        .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);
      assert.ok(
        attempts.some((a) => a >= 2),
        `a check was retried after the kill (attempts ${attempts.join(',')})`,
      );
    } finally {
      if (!resumed) process.kill(replicaPid, 'SIGCONT');
    }
  });

  it('rejects bad workflow input with every problem named, without retrying', async () => {
    const handle = await client.workflow.start('doctorWorkflow', {
      taskQueue: 'lifeboat',
      workflowId: `doctor-bad-input-${Date.now()}`,
      args: [{ databases: [], colour: 'blue' }],
    });
    await assert.rejects(handle.result(), (err: Error & { cause?: Error }) => {
      assert.match(
        err.cause?.message ?? '',
        /input\.databases: .*; input: Unrecognized key: "colour"|input: Unrecognized key: "colour".*input\.databases/,
      );
      return true;
    });
  });
});
