// doctorWorkflow against the real local stack: Temporal dev server, PostgreSQL primary and
// replica, SeaweedFS over TLS, moto's Route53 and the Kubernetes stand-ins, with real worker
// processes started through the CLI.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { DoctorReport } from '../../src/domain/doctor.ts';
import { startPostgres, stopPostgres } from '../../src/stack/postgres-clusters.ts';
import { leakedSecrets } from '../support/history.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';
import { tempDir } from '../support/temp-dir.ts';

describe('doctor on the local stack', () => {
  let stack: TestStack;
  let workers: WorkerProcess[] = [];
  let client: Client;
  let connection: Connection;
  // The plan's webhook: a local receiver that is unavailable for its first two requests, so the
  // notify activity's retries with backoff are exercised for real.
  const deliveries: { status: number; body: any }[] = [];
  const receiver = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      const status = deliveries.length < 2 ? 503 : 200;
      deliveries.push({ status, body: JSON.parse(text) });
      res.writeHead(status).end();
    });
  });
  let planFile: string;
  let workerEnv: NodeJS.ProcessEnv;
  let metricsPort: number;

  const startRegionWorker = (region: string) =>
    startWorker(
      region,
      stack.layout.secretsFile,
      planFile,
      workerEnv,
      region === 'us-east-1' ? ['--metrics-address', `127.0.0.1:${metricsPort}`] : [],
    );

  before(async () => {
    stack = await ensureStack();
    connection = await Connection.connect({ address: stack.layout.temporal.address });
    client = new Client({ connection });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const raw = parse(fs.readFileSync(stack.planFile, 'utf8'));
    raw.notifications = {
      webhooks: [{ name: 'ops', urlEnv: 'LIFEBOAT_TEST_WEBHOOK_URL', events: ['failure'] }],
    };
    planFile = path.join(tempDir('lifeboat-doctor-'), 'lifeboat.yaml');
    fs.writeFileSync(planFile, stringify(raw));
    workerEnv = {
      ...stack.env,
      LIFEBOAT_TEST_WEBHOOK_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
    };
    metricsPort = await freePort();
    workers = await Promise.all(['us-east-1', 'us-west-2'].map(startRegionWorker));
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGTERM')));
    await connection?.close();
    receiver.close();
  });

  it('reports every system healthy, exit 0, with no secret in the history', async () => {
    const run = await runCli(['doctor', '-f', planFile, '--json'], stack.env);
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
      'worker us-east-1',
      'worker us-west-2',
    ]);
    assert.match(
      report.findings.find((f) => f.system === 'worker' && f.target === 'us-west-2')!.detail,
      /^zstd v?\d+\.\d+\S*; age v?\d+\.\d+\S*; curl v?\d+\.\d+\S*; bsdtar v?\d+\.\d+\S*$/,
    );
    assert.match(
      report.findings.find((f) => f.target === 'orders@us-west-2')!.detail,
      /replica streaming, \d+ bytes behind/,
    );

    const history = await client.workflow.getHandle(report.workflowId).fetchHistory();
    assert.deepEqual(leakedSecrets(history, stack.secrets), []);
    const described = await client.workflow.getHandle(report.workflowId).describe();
    assert.deepEqual(described.searchAttributes.LifeboatKind, ['doctor']);
    assert.deepEqual(described.searchAttributes.LifeboatOutcome, ['healthy']);
    assert.equal(deliveries.length, 0, 'a healthy doctor notifies nobody');
  });

  it('says the replica is unreachable when it is stopped, exit 1', async () => {
    await stopPostgres(stack.layout, 'us-west-2');
    try {
      const run = await runCli(['doctor', '-f', planFile], stack.env);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const line = run.stdout.split('\n').find((l) => l.includes('orders@us-west-2'));
      assert.match(
        line ?? '',
        new RegExp(
          `^FAIL\\s+postgres\\s+orders@us-west-2\\s+replica unreachable: 127\\.0\\.0\\.1:${stack.layout.postgres['us-west-2'].port}`,
        ),
      );
      assert.match(run.stdout, /^ok\s+postgres\s+orders@us-east-1/m);
      assert.match(run.stdout, /1 of 9 checks failed/);
      // The failure reached the plan's webhook, after two refusals retried with backoff.
      const workflowId = /doctor started: (\S+)/.exec(run.stderr)?.[1];
      assert.deepEqual(
        deliveries.map((d) => d.status),
        [503, 503, 200],
      );
      const body = deliveries[2]!.body;
      assert.equal(body.event, 'failure');
      assert.equal(body.workflowId, workflowId);
      assert.match(body.text, /1 of 9 checks failed .*postgres orders@us-west-2/);
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
      workers = [workers.find((w) => w.region === 'us-east-1')!, await startRegionWorker('us-west-2')];
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

  it('serves Prometheus metrics on the address given', async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^temporal_\w+/m);
  });

  it('names a tool a region’s worker lacks and what to install, exit 1', async () => {
    const others = workers.filter((w) => w.region !== 'us-west-2');
    await workers.find((w) => w.region === 'us-west-2')!.stop('SIGTERM');
    const saved = workerEnv;
    workerEnv = { ...workerEnv, LIFEBOAT_BSDTAR: '/nonexistent/bsdtar' };
    try {
      workers = [...others, await startRegionWorker('us-west-2')];
      const run = await runCli(['doctor', '-f', planFile], stack.env);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.match(
        run.stdout,
        /^FAIL\s+worker\s+us-west-2\s+bsdtar not found \(\/nonexistent\/bsdtar; Debian: apt-get install libarchive-tools, or LIFEBOAT_BSDTAR naming it\)$/m,
      );
      assert.match(run.stdout, /^ok\s+worker\s+us-east-1\s+zstd /m);
      assert.match(run.stdout, /1 of 9 checks failed/);
    } finally {
      workerEnv = saved;
      await workers.find((w) => w.region === 'us-west-2')!.stop('SIGTERM');
      workers = [...others, await startRegionWorker('us-west-2')];
    }
  });

  it('stops cleanly on SIGTERM, exit 0', async () => {
    const east = workers.find((w) => w.region === 'us-east-1')!;
    assert.equal(await east.stop('SIGTERM'), 0);
    assert.match(east.output(), /lifeboat worker: stopped cleanly/);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = http.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
