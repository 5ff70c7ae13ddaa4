// regionHealthMonitorWorkflow on the time-skipping test server: hours of 10-minute checks pass in
// moments. The health probe is scripted (healthy or not, check by check) and the failover child is
// a stand-in that counts its starts (test/support/monitor-workflows.ts); the real detect → failover
// path runs on the real stack in regional-failover.test.ts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
// 2 = INDEXED_VALUE_TYPE_KEYWORD
import type { RegionHealth } from '../../src/activities/health.ts';
import type { FailoverInput } from '../../src/domain/failover.ts';
import type { MonitorStatus } from '../../src/domain/monitor.ts';
import { SEARCH_ATTRIBUTES } from '../../src/domain/search-attributes.ts';
import { layoutFromEnv } from '../../src/stack/layout.ts';
import { loadPlan } from '../../src/workers/plan-file.ts';
import { examplePlanFile, repoRoot } from '../support/plans.ts';

const require = createRequire(import.meta.url);
const MINUTE = 60_000;

describe('region health monitor (time-skipping)', () => {
  let env: TestWorkflowEnvironment;
  let shared: Worker;
  let west: Worker;
  let running: Promise<unknown>;
  /** Scripted answers, one per check; when empty the region is healthy. */
  let script: boolean[] = [];
  let probed: string[] = [];
  let failovers: FailoverInput[] = [];
  const plan = loadPlan(examplePlanFile);

  before(async () => {
    const toolsBin = layoutFromEnv(process.env, path.join(repoRoot, '.lifeboat')).toolsBin;
    const executable = path.join(toolsBin, 'temporal-test-server');
    assert.ok(fs.existsSync(executable), `${executable} is missing: run scripts/bootstrap.sh`);
    env = await TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: { type: 'existing-path', path: executable } },
    });
    // The workflow sets Lifeboat's search attributes; the test server needs them registered too.
    await env.connection.operatorService.addSearchAttributes({
      namespace: env.namespace ?? 'default',
      searchAttributes: Object.fromEntries(Object.keys(SEARCH_ATTRIBUTES).map((k) => [k, 2])),
    });
    shared = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: 'lifeboat',
      workflowsPath: require.resolve('../support/monitor-workflows.ts'),
      activities: {
        describePlan: () => Promise.resolve(plan),
        recordFailover: (input: FailoverInput) => {
          failovers.push(input);
          return Promise.resolve({ outcome: 'failed-over' });
        },
      },
    });
    west = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: 'lifeboat-us-west-2',
      activities: {
        probeRegion: (input: { region: string; database: string }): Promise<RegionHealth> => {
          probed.push(input.region);
          const healthy = script.shift() ?? true;
          return Promise.resolve({
            region: input.region,
            healthy,
            checks: [{ name: 'postgres', ok: healthy, detail: healthy ? 'ok' : 'connection refused' }],
          });
        },
      },
    });
    running = Promise.all([shared.run(), west.run()]);
  });

  beforeEach(() => {
    script = [];
    probed = [];
    failovers = [];
  });

  after(async () => {
    shared?.shutdown();
    west?.shutdown();
    await running;
    await env?.teardown();
  });

  const start = (id: string, extra: Record<string, unknown> = {}) =>
    env.client.workflow.start('regionHealthMonitorWorkflow', {
      taskQueue: 'lifeboat',
      workflowId: id,
      args: [{ database: 'orders', interval: '10m', checks: 3, ...extra }],
    });
  /** The status query, once the monitor has read its plan and registered it. */
  const status = async (h: { query: (q: string) => Promise<unknown> }): Promise<MonitorStatus> => {
    for (let i = 0; ; i++) {
      try {
        return (await h.query('monitorStatus')) as MonitorStatus;
      } catch (err) {
        if (i > 50 || !/did not register a handler/.test(String((err as Error).cause))) throw err;
        await sleep(100);
      }
    }
  };

  /** Advances time in 5-minute steps until the monitor's status satisfies `done` (or `limit`). */
  const advanceUntil = async (
    h: { query: (q: string) => Promise<unknown> },
    done: (s: MonitorStatus) => boolean,
    limit: number,
  ) => {
    for (let t = 0; t < limit; t += 5 * MINUTE) {
      const s = await status(h);
      if (done(s)) return s;
      await env.sleep(5 * MINUTE);
    }
    return status(h);
  };

  it('starts one failover (child failover-orders) after 3 consecutive failures, then watches the new primary', async () => {
    script = [true, false, false, false];
    const h = await start('monitor-trigger');
    // The test server stops skipping time once a child has completed: advance until it has.
    const s = await advanceUntil(h, (x) => x.lastFailover?.outcome !== undefined, 45 * MINUTE);
    assert.equal(failovers.length, 1);
    assert.equal(failovers[0]!.targetRegion, 'us-west-2');
    assert.equal(failovers[0]!.requestedBy, 'region-health-monitor');
    assert.match(failovers[0]!.reason, /3 consecutive failed checks of us-east-1/);
    assert.equal(s.failoversStarted, 1);
    assert.equal(s.lastFailover?.workflowId, 'failover-orders');
    assert.equal(s.lastFailover?.outcome, 'failed-over');
    // The primary moved: the monitor now checks us-west-2, and would fail over to us-east-1.
    assert.equal(s.watchedRegion, 'us-west-2');
    assert.equal(s.targetRegion, 'us-east-1');
    assert.deepEqual(probed.slice(0, 4), ['us-east-1', 'us-east-1', 'us-east-1', 'us-east-1']);
    await h.cancel();
    assert.equal(((await h.result()) as MonitorStatus).phase, 'stopped');
  });

  it('never triggers on a flapping check (fail, pass, fail, …)', async () => {
    script = [false, true, false, false, true, false, true, false, false, true, false, true];
    const h = await start('monitor-flapping');
    await env.sleep(125 * MINUTE);
    const s = await status(h);
    assert.ok(s.checksRun >= 12, `${s.checksRun} checks`);
    assert.equal(s.failuresSeen, 7);
    assert.equal(failovers.length, 0);
    assert.equal(s.failoversStarted, 0);
    assert.equal(s.watchedRegion, 'us-east-1');
    await h.cancel();
  });

  it('pauses (no checks, nothing triggers) and resumes with the count from zero', async () => {
    const h = await start('monitor-pause');
    await env.sleep(15 * MINUTE);
    await h.signal('pause', { by: 'alice', reason: 'maintenance' });
    const paused = await status(h);
    assert.equal(paused.phase, 'paused');
    assert.equal(paused.pausedBy?.by, 'alice');
    const before = probed.length;
    script = [false, false, false, false, false];
    await env.sleep(120 * MINUTE);
    assert.equal(probed.length, before, 'no check while paused');
    await h.signal('resume', { by: 'alice' });
    script = [false, false, true];
    await env.sleep(35 * MINUTE);
    const s = await status(h);
    assert.equal(s.phase, 'watching');
    assert.ok(probed.length > before);
    assert.equal(failovers.length, 0, 'two failures after resume are not three');
    assert.ok(s.events.some((e) => /paused by alice: maintenance/.test(e.text)));
    await h.cancel();
  });

  it('continues as new, carrying its count and state', async () => {
    script = [true, true, true, true, false, false];
    const h = await start('monitor-can', { continueAsNewAfter: 5 });
    await env.sleep(55 * MINUTE);
    const s = await status(env.client.workflow.getHandle('monitor-can'));
    assert.ok(s.generations >= 2, `generations ${s.generations}`);
    assert.ok(s.checksRun >= 6, `${s.checksRun} checks`);
    // Two failures just before and after the new run, then healthy: still no failover.
    assert.equal(s.failuresSeen, 2);
    assert.equal(failovers.length, 0);
    const d = await h.describe();
    assert.notEqual(d.runId, h.firstExecutionRunId, 'a new run');
    await env.client.workflow.getHandle('monitor-can').cancel();
  });

  it('finds a failover an operator already started and never starts a second', async () => {
    const held = await env.client.workflow.start('regionalFailoverWorkflow', {
      taskQueue: 'lifeboat',
      workflowId: 'failover-orders',
      args: [
        {
          database: 'orders',
          targetRegion: 'us-west-2',
          reason: 'by hand',
          requestedBy: 'carol',
          hold: true,
        },
      ],
    });
    script = [false, false, false];
    const h = await start('monitor-locked');
    await env.sleep(35 * MINUTE);
    const s = await status(h);
    assert.equal(s.failoversStarted, 0);
    assert.ok(s.events.some((e) => /a failover of orders already runs \(failover-orders\)/.test(e.text)));
    await held.signal('release');
    await held.result();
    assert.equal(failovers.length, 1, 'only the operator’s');
    assert.equal(failovers[0]!.requestedBy, 'carol');
    await h.cancel();
  });

  it('refuses a database that is not in the plan', async () => {
    const h = await env.client.workflow.start('regionHealthMonitorWorkflow', {
      taskQueue: 'lifeboat',
      workflowId: 'monitor-unknown',
      args: [{ database: 'payments' }],
    });
    await assert.rejects(h.result(), (err: Error & { cause?: Error }) => {
      assert.match(err.cause?.message ?? '', /database "payments" is not in the plan/);
      return true;
    });
  });
});
