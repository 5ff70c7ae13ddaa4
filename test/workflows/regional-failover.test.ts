// regionalFailoverWorkflow against the real local stack, through the CLI and the `temporal` CLI,
// with real worker processes. Detection is 3 × 1 s (a copy of the stack's plan) so the suite
// stays short. Every test that changes the stack puts it back (test/support/failover.ts).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import pg from 'pg';
import { stringify } from 'yaml';
import { createDnsZone } from '../../src/activities/ports/dns-zone.ts';
import type { FailoverProgress, FailoverResult } from '../../src/domain/failover.ts';
import type { MonitorStatus } from '../../src/domain/monitor.ts';
import {
  postgresInRecovery,
  socketDir,
  stopPostgres,
  walReceiverStatus,
} from '../../src/stack/postgres-clusters.ts';
import { startRoute53Server, stopRoute53Server } from '../../src/stack/route53-server.ts';
import { leakedSecrets } from '../support/history.ts';
import { adminQuery, primaryTimeline, restoreStackShape } from '../support/failover.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';
import { parse } from 'yaml';

const execFileAsync = promisify(execFile);
const WORKFLOW_ID = 'failover-orders';
const MONITOR_ID = 'monitor-orders';

describe('regional failover on the local stack', () => {
  let stack: TestStack;
  let planFile: string;
  let workers: WorkerProcess[] = [];
  let client: Client;
  let connection: Connection;
  const env = () => ({ ...stack.env, LIFEBOAT_USER: 'carol' });

  const startWorkers = async () => {
    workers = await Promise.all(
      ['us-east-1', 'us-west-2'].map((r) => startWorker(r, stack.layout.secretsFile, planFile, stack.env)),
    );
  };
  const temporalCli = (args: string[]) =>
    execFileAsync(path.join(stack.layout.toolsBin, 'temporal'), [
      ...args,
      '--address',
      stack.layout.temporal.address,
    ]);
  const progress = (h: WorkflowHandle) => h.query<FailoverProgress>('progress');
  const waitPhase = async (h: WorkflowHandle, phases: string[], timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = await progress(h).catch(() => undefined);
      if (p && phases.includes(p.phase)) return p;
      assert.ok(Date.now() < deadline, `phase ${phases.join('|')} not reached (at ${p?.phase})`);
      await sleep(50);
    }
  };
  /** Starts a failover detached; the handle is bound to the run it started. */
  const startFailover = async (extra: string[] = [], to = 'us-west-2') => {
    const run = await runCli(
      [
        'failover',
        '-f',
        planFile,
        '--database',
        'orders',
        '--to',
        to,
        '--reason',
        'test',
        '--detach',
        '--json',
        ...extra,
      ],
      env(),
    );
    const handle =
      run.code === 0
        ? client.workflow.getHandle(WORKFLOW_ID, (JSON.parse(run.stdout) as { runId: string }).runId)
        : client.workflow.getHandle(WORKFLOW_ID);
    return { ...run, handle };
  };
  const dnsValues = async () => {
    const zone = createDnsZone(stack.plan.dns!, stack.env);
    const records = await zone.listRecords((await zone.findZoneId())!);
    return records.find((r) => r.name === 'orders-db.lifeboat.internal.')?.values;
  };
  const replicas = async (region: 'us-east-1' | 'us-west-2') => {
    const kc = new KubeConfig();
    kc.loadFromFile(stack.layout.kubernetes[region].kubeconfig);
    const d = await kc
      .makeApiClient(AppsV1Api)
      .readNamespacedDeployment({ namespace: 'shop', name: 'orders-api' });
    return d.spec?.replicas;
  };

  /** How many times the run promoted us-west-2, from the fencing epochs the promotion records. */
  const promotions = async (h: WorkflowHandle): Promise<number> => {
    const [row] = await adminQuery<{ n: string }>(
      stack,
      'us-west-2',
      `select count(*)::text as n from lifeboat.failover_epochs where run_id = $1 and event = 'promoted'`,
      [(await h.describe()).runId],
    );
    return Number(row!.n);
  };
  /**
   * PostgreSQL's own binaries, except a pg_rewind that is SIGKILLed 50 ms after it starts: what an
   * interrupted rewind leaves cannot start, so a re-attach must rebuild the directory instead.
   */
  const interruptedRewindBin = (): string => {
    const dir = fs.mkdtempSync(path.join(stack.layout.state, 'pgbin-'));
    fs.chmodSync(dir, 0o755);
    const real = stack.layout.postgres.binDir;
    for (const name of fs.readdirSync(real))
      if (name !== 'pg_rewind') fs.symlinkSync(path.join(real, name), path.join(dir, name));
    fs.writeFileSync(
      path.join(dir, 'pg_rewind'),
      `#!/bin/sh\n"${path.join(real, 'pg_rewind')}" "$@" &\nsleep 0.05\nkill -9 $! 2>/dev/null\necho "pg_rewind: interrupted by the test" >&2\nexit 137\n`,
      { mode: 0o755 },
    );
    return dir;
  };

  before(async () => {
    stack = await ensureStack();
    await restoreStackShape(stack);
    const plan = parse(fs.readFileSync(stack.planFile, 'utf8'));
    plan.failover.policies[0].detection = { checks: 3, interval: '1s' };
    planFile = path.join(stack.layout.state, 'failover-test.yaml');
    fs.writeFileSync(planFile, stringify(plan));
    connection = await Connection.connect({ address: stack.layout.temporal.address });
    client = new Client({ connection });
    await startWorkers();
  });

  afterEach(async () => {
    // No failover left running, whatever a test did.
    await client.workflow
      .getHandle(WORKFLOW_ID)
      .terminate('test cleanup')
      .catch(() => undefined);
    await client.workflow
      .getHandle(MONITOR_ID)
      .terminate('test cleanup')
      .catch(() => undefined);
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGTERM')));
    await connection?.close();
    await restoreStackShape(stack);
  });

  it('refuses bad input with a clear message, exit 2', async () => {
    const cases = [
      {
        name: 'unknown database',
        args: ['--database', 'payments', '--to', 'us-west-2', '--reason', 'x'],
        want: /"payments" is not in the plan/,
      },
      {
        name: 'unknown region',
        args: ['--database', 'orders', '--to', 'eu-central-1', '--reason', 'x'],
        want: /region "eu-central-1" is not in the plan/,
      },
      { name: 'no reason', args: ['--database', 'orders', '--to', 'us-west-2'], want: /--reason/ },
      {
        name: 'target is the current primary',
        args: ['--database', 'orders', '--to', 'us-east-1', '--reason', 'x'],
        want: /us-east-1 already holds the primary/,
      },
    ];
    for (const c of cases) {
      const run = await runCli(['failover', '-f', planFile, ...c.args], env());
      assert.equal(run.code, 2, `${c.name}: ${run.stdout}${run.stderr}`);
      assert.match(run.stderr, c.want, c.name);
    }
  });

  it('refuses a second failover while one runs; a rejection ends the first with nothing changed', async () => {
    // The source is healthy; --force lets the run go on to the approval gate, where it waits.
    const first = await startFailover(['--force']);
    assert.equal(first.code, 0, first.stderr);
    const handle = first.handle;
    await waitPhase(handle, ['awaiting-approval']);
    const second = await startFailover(['--force']);
    assert.equal(second.code, 2);
    assert.match(second.stderr, /a failover of orders is already running \(failover-orders\)/);

    const noReason = await runCli(['approve', WORKFLOW_ID, '--as', 'alice', '--reject'], env());
    assert.equal(noReason.code, 2);
    const reject = await runCli(
      ['approve', WORKFLOW_ID, '--as', 'alice', '--reject', '--reason', 'the region is fine'],
      env(),
    );
    assert.equal(reject.code, 0, reject.stderr);
    const result = (await handle.result()) as FailoverResult;
    assert.equal(result.outcome, 'rejected');
    assert.match(result.message ?? '', /rejected by alice: the region is fine; nothing changed/);
    assert.equal(await postgresInRecovery(stack.layout, 'us-west-2'), true);
    assert.deepEqual(await dnsValues(), ['pg.us-east-1.lifeboat.internal.']);
  });

  it('ends with "not approved" when nobody approves in time: replica still a replica, DNS unchanged', async () => {
    const run = await runCli(
      [
        'failover',
        '-f',
        planFile,
        '--database',
        'orders',
        '--to',
        'us-west-2',
        '--reason',
        'test',
        '--force',
        '--approval-timeout',
        '2s',
        '--json',
      ],
      env(),
    );
    assert.equal(run.code, 1, run.stderr);
    const result = JSON.parse(run.stdout) as FailoverResult;
    assert.equal(result.outcome, 'not-approved');
    assert.match(result.message ?? '', /not approved within 2\.0s \(0 of 2 approvals\); nothing changed/);
    assert.equal(await postgresInRecovery(stack.layout, 'us-west-2'), true);
    assert.equal(await walReceiverStatus(stack.layout, 'us-west-2'), 'streaming');
    assert.deepEqual(await dnsValues(), ['pg.us-east-1.lifeboat.internal.']);
    const d = await client.workflow.getHandle(WORKFLOW_ID).describe();
    assert.deepEqual(d.searchAttributes.LifeboatOutcome, ['not-approved']);
  });

  it('undoes the fence when DNS fails before promotion', async () => {
    const before = await primaryTimeline(stack, 'us-east-1');
    const started = await startFailover(['--force']);
    assert.equal(started.code, 0, started.stderr);
    const handle = started.handle;
    await waitPhase(handle, ['awaiting-approval']);
    await stopRoute53Server(stack.layout);
    try {
      for (const who of ['alice', 'bob'])
        assert.equal((await runCli(['approve', WORKFLOW_ID, '--as', who], env())).code, 0);
      await assert.rejects(handle.result(), (err: Error & { cause?: Error }) => {
        assert.match(
          err.cause?.message ?? '',
          /failover stopped before promotion: Route53: .*undone: unfence us-east-1/,
        );
        return true;
      });
    } finally {
      await startRoute53Server(stack.layout, stack.secrets, stack.plan);
    }
    const p = await progress(handle);
    assert.equal(p.outcome, 'compensated');
    assert.equal(p.fencing?.fenced, true);
    assert.equal(p.promotedAt, undefined);
    // As it was: us-east-1 takes writes again, us-west-2 still streams on the same timeline.
    const [ro] = await adminQuery<{ v: string }>(
      stack,
      'us-east-1',
      "select current_setting('default_transaction_read_only') as v",
    );
    assert.equal(ro!.v, 'off');
    await adminQuery(stack, 'us-east-1', 'insert into public.orders (amount) values (1.00)');
    assert.equal(await primaryTimeline(stack, 'us-east-1'), before);
    assert.equal(await postgresInRecovery(stack.layout, 'us-west-2'), true);
    assert.deepEqual(await dnsValues(), ['pg.us-east-1.lifeboat.internal.']);
  });

  it('fails over when us-east-1 dies: detection, approval by two listed approvers, promotion, DNS, traffic', async () => {
    const timeline = await primaryTimeline(stack, 'us-east-1');
    await stopPostgres(stack.layout, 'us-east-1');
    try {
      const started = await startFailover();
      assert.equal(started.code, 0, started.stderr);
      const handle = started.handle;
      const waiting = await waitPhase(handle, ['awaiting-approval']);
      assert.match(waiting.steps[0]!.detail ?? '', /3 checks: all failed/);
      assert.match(waiting.approval?.request ?? '', /Data at risk: lag unknown \(us-east-1 unreachable\)/);

      const outsider = await runCli(['approve', WORKFLOW_ID, '--as', 'dave'], env());
      assert.equal(outsider.code, 2);
      assert.match(outsider.stderr, /dave is not an approver of this policy/);
      const self = await runCli(['approve', WORKFLOW_ID, '--as', 'carol'], env());
      assert.match(self.stderr, /carol requested this operation and cannot approve/);
      for (const approver of ['alice', 'bob'])
        await temporalCli([
          'workflow',
          'update',
          'execute',
          '--name',
          'approve',
          '--workflow-id',
          WORKFLOW_ID,
          '--input',
          JSON.stringify({ approver, comment: 'go' }),
        ]);
      const result = (await handle.result()) as FailoverResult;

      assert.equal(result.outcome, 'failed-over', result.message);
      assert.deepEqual(
        result.approval?.decisions.map((d) => d.approver),
        ['alice', 'bob'],
      );
      assert.ok(result.rtoMs! > 0 && result.rtoMs! < 60_000, `RTO ${result.rtoMs}`);
      assert.match(result.rpo!.estimate, /unknown bytes \(source unreachable\)/);
      assert.ok(
        result.operatorActions.some((a) =>
          /Rebuild orders@us-east-1 as a streaming replica of us-west-2/.test(a),
        ),
      );
      assert.equal(await postgresInRecovery(stack.layout, 'us-west-2'), false);
      assert.equal(await primaryTimeline(stack, 'us-west-2'), timeline + 1);
      await adminQuery(stack, 'us-west-2', 'insert into public.orders (amount) values (2.00)');
      assert.deepEqual(await dnsValues(), ['pg.us-west-2.lifeboat.internal.']);
      assert.equal(await replicas('us-west-2'), 2);
      assert.equal(await replicas('us-east-1'), 0);
      const kc = new KubeConfig();
      kc.loadFromFile(stack.layout.kubernetes['us-west-2'].kubeconfig);
      const cm = await kc
        .makeApiClient(CoreV1Api)
        .readNamespacedConfigMap({ namespace: 'shop', name: 'orders-db' });
      assert.equal(cm.metadata?.annotations?.['lifeboat.io/primary-region'], 'us-west-2');
      const d = await handle.describe();
      assert.deepEqual(d.searchAttributes.LifeboatOutcome, ['failed-over']);
      assert.deepEqual(d.searchAttributes.LifeboatTargetRegion, ['us-west-2']);
      assert.deepEqual(leakedSecrets(await handle.fetchHistory(), stack.secrets), []);
      process.stderr.write(`# unplanned failover: RTO ${result.rtoMs} ms (includes the approvals)\n`);
    } finally {
      await restoreStackShape(stack);
    }
  });

  it('completes when the target worker is SIGKILLed in the promote step (fencing or promotion), promoting once', async () => {
    const timeline = await primaryTimeline(stack, 'us-east-1');
    await stopPostgres(stack.layout, 'us-east-1');
    try {
      const started = await startFailover();
      assert.equal(started.code, 0, started.stderr);
      const handle = started.handle;
      await waitPhase(handle, ['awaiting-approval']);
      for (const who of ['alice', 'bob']) await runCli(['approve', WORKFLOW_ID, '--as', who], env());
      await waitPhase(
        handle,
        ['fencing', 'promoting', 'switching-dns', 'moving-traffic', 'verifying', 'completed'],
        30_000,
      );
      const west = workers.find((w) => w.region === 'us-west-2')!;
      assert.equal(await west.stop('SIGKILL'), null);
      workers = [
        workers.find((w) => w.region === 'us-east-1')!,
        await startWorker('us-west-2', stack.layout.secretsFile, planFile, stack.env),
      ];
      const result = (await handle.result()) as FailoverResult;
      assert.equal(result.outcome, 'failed-over', result.message);
      // Promotion happened once: one new timeline, one 'promoted' epoch for the run.
      assert.equal(await primaryTimeline(stack, 'us-west-2'), timeline + 1);
      assert.equal(await promotions(handle), 1);
    } finally {
      await restoreStackShape(stack);
    }
  });

  it('the region health monitor detects the dead primary and starts the failover (child failover-orders), which completes once approved', async () => {
    const timeline = await primaryTimeline(stack, 'us-east-1');
    const start = await runCli(['monitor', 'start', '-f', planFile, '--database', 'orders', '--json'], env());
    assert.equal(start.code, 0, start.stderr);
    const again = await runCli(['monitor', 'start', '-f', planFile, '--database', 'orders', '--json'], env());
    assert.equal((JSON.parse(again.stdout) as { alreadyRunning: boolean }).alreadyRunning, true);
    const monitor = client.workflow.getHandle(MONITOR_ID);
    try {
      // Healthy: checks pass, nothing starts.
      const deadline = Date.now() + 30_000;
      while (
        ((await monitor.query<MonitorStatus>('monitorStatus').catch(() => undefined))?.checksRun ?? 0) < 2
      ) {
        assert.ok(Date.now() < deadline, 'the monitor did not check');
        await sleep(200);
      }
      await stopPostgres(stack.layout, 'us-east-1');
      let handle: WorkflowHandle | undefined;
      for (const until = Date.now() + 60_000; !handle; await sleep(200)) {
        assert.ok(Date.now() < until, 'the monitor did not start the failover');
        const d = await client.workflow
          .getHandle(WORKFLOW_ID)
          .describe()
          .catch(() => undefined);
        if (d?.status.name === 'RUNNING') handle = client.workflow.getHandle(WORKFLOW_ID, d.runId);
      }
      const waiting = await waitPhase(handle, ['awaiting-approval']);
      assert.equal(waiting.targetRegion, 'us-west-2');
      assert.equal(waiting.approval?.requestedBy, 'region-health-monitor');
      const watching = await monitor.query<MonitorStatus>('monitorStatus');
      assert.equal(watching.phase, 'failing-over');
      assert.equal(watching.failoversStarted, 1);
      for (const who of ['alice', 'bob'])
        assert.equal((await runCli(['approve', WORKFLOW_ID, '--as', who], env())).code, 0);
      const result = (await handle.result()) as FailoverResult;
      assert.equal(result.outcome, 'failed-over', result.message);
      assert.equal(await primaryTimeline(stack, 'us-west-2'), timeline + 1);
      assert.deepEqual(await dnsValues(), ['pg.us-west-2.lifeboat.internal.']);
      // The monitor now watches the new primary.
      for (const until = Date.now() + 15_000; ; await sleep(200)) {
        const s = await monitor.query<MonitorStatus>('monitorStatus');
        if (s.phase === 'watching' && s.watchedRegion === 'us-west-2') break;
        assert.ok(Date.now() < until, `monitor: ${JSON.stringify(s)}`);
      }
      const paused = await runCli(
        ['monitor', 'pause', '-f', planFile, '--database', 'orders', '--reason', 'rebuild'],
        env(),
      );
      assert.equal(paused.code, 0, paused.stderr);
      for (const until = Date.now() + 15_000; ; await sleep(200)) {
        const s = await monitor.query<MonitorStatus>('monitorStatus');
        if (s.phase === 'paused') {
          assert.deepEqual(s.pausedBy && [s.pausedBy.by, s.pausedBy.reason], ['carol', 'rebuild']);
          break;
        }
        assert.ok(Date.now() < until, `monitor: ${JSON.stringify(s)}`);
      }
      const stopped = await runCli(['monitor', 'stop', '-f', planFile, '--database', 'orders'], env());
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.equal((await handle.describe()).status.name, 'COMPLETED');
    } finally {
      await monitor.terminate('test cleanup').catch(() => undefined);
      await restoreStackShape(stack);
    }
  });

  // One run, every worker SIGKILLed in each step in turn: each restart resumes from the step it
  // was killed in (a rebuilt stack per kill point cost a minute of test time and proved no more).
  it('completes when every worker is SIGKILLed in each step in turn (detect, dns, traffic, verify), promoting once', async () => {
    const later = [
      'detecting',
      'awaiting-approval',
      'fencing',
      'promoting',
      'switching-dns',
      'moving-traffic',
      'verifying',
      'completed',
    ];
    const timeline = await primaryTimeline(stack, 'us-east-1');
    await stopPostgres(stack.layout, 'us-east-1');
    try {
      const started = await startFailover();
      assert.equal(started.code, 0, started.stderr);
      const handle = started.handle;
      const killIn = async (phase: string) => {
        const at = await waitPhase(handle, later.slice(later.indexOf(phase)), 60_000);
        await Promise.all(workers.map((w) => w.stop('SIGKILL')));
        process.stderr.write(`# SIGKILL aimed at ${phase}: workers killed in phase ${at.phase}\n`);
        await startWorkers();
        return at.phase;
      };
      assert.equal(await killIn('detecting'), 'detecting');
      await waitPhase(handle, ['awaiting-approval'], 60_000);
      // Approvals land while the workers are down: the update waits in the server for a worker.
      await Promise.all(workers.map((w) => w.stop('SIGKILL')));
      const approving = ['alice', 'bob'].map((who) => runCli(['approve', WORKFLOW_ID, '--as', who], env()));
      await sleep(500);
      await startWorkers();
      for (const r of await Promise.all(approving)) assert.equal(r.code, 0, r.stderr);
      for (const phase of ['switching-dns', 'moving-traffic', 'verifying']) await killIn(phase);
      const result = (await handle.result()) as FailoverResult;
      assert.equal(result.outcome, 'failed-over', result.message);
      assert.equal(await primaryTimeline(stack, 'us-west-2'), timeline + 1);
      assert.equal(await promotions(handle), 1);
      assert.deepEqual(await dnsValues(), ['pg.us-west-2.lifeboat.internal.']);
      assert.equal(await replicas('us-west-2'), 2);
    } finally {
      await restoreStackShape(stack);
    }
  });

  it('planned switchover with writes running loses no committed row; the switchback with the same command restores the starting shape, rebuilding the old primary with pg_basebackup when its pg_rewind is interrupted', async () => {
    const timeline = await primaryTimeline(stack, 'us-east-1');
    let binDir: string | undefined;
    const westDir = stack.layout.postgres['us-west-2'].dataDir;
    const committed: string[] = [];
    // Where and when each row was written: printed when one is missing, to find the cause.
    const trace = new Map<string, string>();
    let writing = true;
    // An application that writes wherever the primary is: a refused write is retried elsewhere.
    const workload = (async () => {
      while (writing) {
        for (const region of ['us-east-1', 'us-west-2'] as const) {
          const row = await adminQuery<{ id: string; lsn: string; xs: string; pid: number }>(
            stack,
            region,
            `insert into public.orders (amount) values (7.77)
                 returning id::text as id, pg_current_wal_insert_lsn()::text as lsn,
                           now()::text as xs, pg_backend_pid() as pid`,
          ).catch(() => undefined);
          if (row?.[0]) {
            committed.push(row[0].id);
            trace.set(
              row[0].id,
              `${region} lsn ${row[0].lsn} xact_start ${row[0].xs} pid ${row[0].pid} answered ${new Date().toISOString()}`,
            );
            break;
          }
        }
        await sleep(20);
      }
    })();
    let lastResult: FailoverResult | undefined;
    const switchOver = async (to: 'us-east-1' | 'us-west-2') => {
      const started = await startFailover(['--planned'], to);
      assert.equal(started.code, 0, started.stderr);
      await waitPhase(started.handle, ['awaiting-approval']);
      for (const who of ['alice', 'bob'])
        assert.equal((await runCli(['approve', WORKFLOW_ID, '--as', who], env())).code, 0);
      const result = (await started.handle.result()) as FailoverResult;
      lastResult = result;
      assert.equal(result.outcome, 'switched-over', result.message);
      assert.equal(result.reattach?.ok, true, result.reattach?.detail);
      assert.equal(result.rpo!.bytes, 0, result.rpo!.estimate);
      return result;
    };
    const missing = async (region: 'us-east-1' | 'us-west-2') => {
      // The ids committed so far, copied: the writer goes on while the query runs, and a row it
      // commits meanwhile may be invisible to the query's snapshot without being lost (seen in CI:
      // the row the check called lost was there, committed 30 ms after the query began).
      const ids = [...committed];
      const rows = await adminQuery<{ id: string }>(
        stack,
        region,
        'select id::text as id from public.orders where id = any($1::bigint[])',
        [ids],
      );
      const have = new Set(rows.map((r) => r.id));
      const lost = ids.filter((id) => !have.has(id));
      if (lost.length > 0) {
        const at = committed.indexOf(lost[0]!);
        process.stderr.write(
          `# LOST on ${region}: ${lost.join(', ')}\n${committed
            .slice(Math.max(0, at - 5), at + 6)
            .map((id) => `#   ${id}: ${trace.get(id)}${lost.includes(id) ? '  <- lost' : ''}`)
            .join(
              '\n',
            )}\n# fencing: ${JSON.stringify(lastResult?.fencing)}\n# steps: ${JSON.stringify(lastResult?.steps)}\n`,
        );
      }
      return lost;
    };
    try {
      await sleep(300);
      const there = await switchOver('us-west-2');
      const before = committed.length;
      await sleep(500);
      assert.ok(committed.length > before, 'writes go on against us-west-2');
      assert.equal(await postgresInRecovery(stack.layout, 'us-east-1'), true);
      assert.equal(await walReceiverStatus(stack.layout, 'us-east-1'), 'streaming');
      assert.deepEqual(await missing('us-west-2'), []);
      assert.deepEqual(await dnsValues(), ['pg.us-west-2.lifeboat.internal.']);
      process.stderr.write(`# planned switchover: RTO ${there.rtoMs} ms; ${there.reattach?.detail}\n`);

      // The switchback re-attaches us-west-2, whose worker now meets an interrupted pg_rewind.
      binDir = interruptedRewindBin();
      const west = workers.findIndex((w) => w.region === 'us-west-2');
      await workers[west]!.stop('SIGTERM');
      workers[west] = await startWorker('us-west-2', stack.layout.secretsFile, planFile, {
        ...stack.env,
        LIFEBOAT_PG_BINDIR: binDir,
      });
      const back = await switchOver('us-east-1');
      writing = false;
      await workload;
      const rebuilt =
        /pg_rewind failed \(.*interrupted by the test.*\); rebuilt with pg_basebackup, the old directory kept at (\S+), streaming from us-east-1/.exec(
          back.reattach!.detail,
        );
      assert.ok(rebuilt, back.reattach!.detail);
      assert.ok(rebuilt[1]!.startsWith(`${westDir}.before-rejoin-`), rebuilt[1]);
      assert.ok(fs.existsSync(path.join(rebuilt[1]!, 'PG_VERSION')), 'the old directory is kept');
      process.stderr.write(
        `# switchback: RTO ${back.rtoMs} ms; ${committed.length} rows committed, none lost\n`,
      );
      assert.deepEqual(await missing('us-east-1'), []);
      // As at the start: us-east-1 writable on a newer timeline, us-west-2 streaming from it.
      assert.equal(await postgresInRecovery(stack.layout, 'us-east-1'), false);
      assert.ok((await primaryTimeline(stack, 'us-east-1')) > timeline);
      assert.equal(await postgresInRecovery(stack.layout, 'us-west-2'), true);
      assert.equal(await walReceiverStatus(stack.layout, 'us-west-2'), 'streaming');
      const [ro] = await adminQuery<{ v: string }>(
        stack,
        'us-east-1',
        "select current_setting('default_transaction_read_only') as v",
      );
      assert.equal(ro!.v, 'off');
      assert.deepEqual(await dnsValues(), ['pg.us-east-1.lifeboat.internal.']);
      assert.equal(await replicas('us-east-1'), 2);
      assert.equal(await replicas('us-west-2'), 0);
      await adminQuery(stack, 'us-east-1', 'select 1');
      // Written on the primary, read on the rebuilt replica.
      const [last] = await adminQuery<{ id: string }>(
        stack,
        'us-east-1',
        'insert into public.orders (amount) values (1.00) returning id::text as id',
      );
      for (let i = 0; ; i++) {
        const seen = await adminQuery(stack, 'us-west-2', 'select 1 from public.orders where id = $1', [
          last!.id,
        ]);
        if (seen.length === 1) break;
        assert.ok(i < 100, 'a row written on us-east-1 never reached the rebuilt us-west-2');
        await sleep(100);
      }
    } catch (err) {
      process.stderr.write(`# planned switchover failed: ${(err as Error).stack}\n`);
      throw err;
    } finally {
      writing = false;
      await workload;
      if (binDir) {
        await Promise.all(workers.map((w) => w.stop('SIGTERM')));
        await startWorkers();
        fs.rmSync(binDir, { recursive: true, force: true });
      }
      // Every directory set aside, also when an assertion stopped the test before it was named.
      for (const name of fs.readdirSync(path.dirname(westDir)))
        if (name.startsWith(`${path.basename(westDir)}.before-rejoin-`))
          fs.rmSync(path.join(path.dirname(westDir), name), { recursive: true, force: true });
      await restoreStackShape(stack);
    }
  });
  it("planned switchover waits for a superuser's transaction begun before the fence; its committed row is on the new primary", async () => {
    // The fence's role may not end a superuser's session: the final LSN must wait for it instead.
    const su = new pg.Client({
      host: socketDir(stack.layout, 'us-east-1'),
      port: stack.layout.postgres['us-east-1'].port,
      user: stack.layout.postgres.superuser,
      database: stack.layout.postgres.database,
    });
    su.on('error', () => undefined);
    await su.connect();
    try {
      await su.query('begin');
      const [row] = (
        await su.query<{ id: string }>(
          'insert into public.orders (amount) values (3.33) returning id::text as id',
        )
      ).rows;
      const started = await startFailover(['--planned'], 'us-west-2');
      assert.equal(started.code, 0, started.stderr);
      await waitPhase(started.handle, ['awaiting-approval']);
      for (const who of ['alice', 'bob'])
        assert.equal((await runCli(['approve', WORKFLOW_ID, '--as', who], env())).code, 0);
      await waitPhase(started.handle, ['fencing']);
      await sleep(1500);
      // The open transaction holds the final LSN back: still fencing, the target not promoted.
      assert.equal((await progress(started.handle)).phase, 'fencing');
      assert.equal(await postgresInRecovery(stack.layout, 'us-west-2'), true);
      await su.query('commit');
      const result = (await started.handle.result()) as FailoverResult;
      assert.equal(result.outcome, 'switched-over', result.message);
      const there = await adminQuery<{ id: string }>(
        stack,
        'us-west-2',
        'select id::text as id from public.orders where id = $1',
        [row!.id],
      );
      assert.deepEqual(there, [{ id: row!.id }]);
    } finally {
      await su.end().catch(() => undefined);
      await restoreStackShape(stack);
    }
  });
});
