// drDrillWorkflow on the local stack, by real worker processes, against a storage prefix of its
// own (a plan copy: WAL partials every 2 s, an RPO objective of 5 s, a drill policy comparing
// drill_rows). One full backup and the WAL archiver; then:
// - a drill through `lifeboat drill` while a writer keeps inserting: passes, the restored table
//   equals the source's snapshot (and not the source's later state), the report in storage equals
//   the result, the scratch instance is gone, the worker exports the drill's gauges;
// - a drill cancelled while the restore replays (a backup whose postgresql.auto.conf carries
//   recovery_min_apply_delay = 1h holds replay at the first commit): cleaned up, report "cancelled";
// - a drill whose newest WAL is missing from storage: fails on RPO with a clear reason, report written.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type pg from 'pg';
import { parse, stringify } from 'yaml';
import { createObjectStore, type ObjectStore } from '../../src/activities/ports/object-store.ts';
import { drillReportSchema, type DrillReport } from '../../src/domain/drill-report.ts';
import type { DrillProgress } from '../../src/domain/drill.ts';
import type { FailoverProgress } from '../../src/domain/failover.ts';
import { parseLsn } from '../../src/domain/lsn.ts';
import { workflowIds } from '../../src/domain/naming.ts';
import { repository } from '../../src/domain/repository.ts';
import type { RestoreProgress } from '../../src/domain/restore.ts';
import type { drDrillWorkflow } from '../../src/workflows/dr-drill.ts';
import {
  connectPrimary,
  DB,
  fullBackup,
  releasePrimary,
  resetArchiver,
  startArchiver,
  terminateArchiver,
  writeArchivingPlan,
} from '../support/archiving.ts';
import { freePort } from '../support/backups.ts';
import { adminQuery, restoreStackShape } from '../support/failover.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';

const PHASES_PASSED = ['preparing', 'restoring', 'validating', 'comparing', 'tearing-down', 'reporting'];

describe('DR drill on the local stack', () => {
  let stack: TestStack;
  let connection: Connection;
  let client: Client;
  let store: ObjectStore;
  let planFile: string;
  let tmp: string;
  let restoreRoot: string;
  let admin: pg.Client;
  let env: NodeJS.ProcessEnv;
  const workers: WorkerProcess[] = [];
  const metricsPorts: number[] = [];

  const storedReport = async (r: { database: string; drillId: string }): Promise<DrillReport> =>
    drillReportSchema.parse(
      JSON.parse(
        Buffer.from(
          await store.get(repository.drillReport('', r.database, r.drillId, 'report.json')),
        ).toString('utf8'),
      ),
    );
  /** No directory and no process left of a drill's scratch instance. */
  /** No directory and no process left of any drill's scratch instance. */
  const assertScratchGone = () => {
    const drills = path.join(restoreRoot, 'drills');
    assert.deepEqual(fs.existsSync(drills) ? fs.readdirSync(drills) : [], [], `left in ${drills}`);
    const ps = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
    const left = ps.split('\n').filter((l) => l.includes(restoreRoot));
    assert.deepEqual(left, [], `processes left under ${restoreRoot}`);
  };
  // From the primary itself: after a promotion its control file names the new timeline only at the
  // next checkpoint, its WAL file names at once.
  const segmentHolding = async (lsn: string) =>
    (await admin.query<{ f: string }>('select pg_walfile_name($1::pg_lsn) as f', [lsn])).rows[0]!.f;
  const currentLsn = async () =>
    (await admin.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn')).rows[0]!.lsn;
  const waitArchived = async (segment: string) => {
    for (let i = 0; !(await store.head(repository.walSegment('', DB, segment))); i++) {
      assert.ok(i < 120, `${segment} not archived within 60 s`);
      await sleep(500);
    }
  };

  const connectAdmin = async () => {
    const c = await connectPrimary(stack);
    // The failover drill fences the primary, which ends this session: heard, not uncaught.
    c.on('error', () => undefined);
    return c;
  };

  before(async () => {
    stack = await ensureStack();
    connection = await Connection.connect({ address: stack.layout.temporal.address });
    client = new Client({ connection });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-drill-'));
    fs.chmodSync(tmp, 0o755);
    restoreRoot = path.join(tmp, 'restores');
    const archiving = writeArchivingPlan(stack, tmp, {
      name: 'drill',
      walPartialUpload: '2s',
      edit: (raw) => {
        raw.databases[DB] = { ...raw.databases[DB], tier: 1, objectives: { rpo: '5s' } };
        raw.drills = {
          policies: [
            {
              name: 'orders-drill',
              database: DB,
              region: 'us-west-2',
              compareTables: ['drill_rows'],
              compareAllTables: true,
            },
          ],
        };
      },
    });
    planFile = archiving.planFile;
    store = createObjectStore(archiving.plan.storage.primary, stack.env);
    env = { ...stack.env, LIFEBOAT_SPOOL: path.join(tmp, 'spool'), LIFEBOAT_RESTORE_ROOT: restoreRoot };
    for (const region of ['us-east-1', 'us-west-2']) {
      const port = await freePort();
      metricsPorts.push(port);
      workers.push(
        await startWorker(region, stack.layout.secretsFile, planFile, env, [
          '--metrics-address',
          `127.0.0.1:${port}`,
        ]),
      );
    }

    admin = await connectAdmin();
    await resetArchiver(client, admin);
    await admin.query('drop table if exists drill_rows, drill_keyless');
    await admin.query('create table drill_rows (id serial primary key, note text not null)');
    // No primary key: compared in row-text order.
    await admin.query(
      `create table drill_keyless as select g as n, g % 7 as m from generate_series(1, 100) g`,
    );
    await admin.query(`insert into drill_rows (note) select md5(g::text) from generate_series(1, 500) g`);
    await startArchiver(client, '60s');
    await fullBackup(client);
  });

  after(async () => {
    if (stack)
      await adminQuery(stack, 'us-east-1', 'alter system reset recovery_min_apply_delay').catch(
        () => undefined,
      );
    if (client) await terminateArchiver(client, 'test over');
    await Promise.all(workers.map((w) => w.stop('SIGTERM')));
    await releasePrimary(admin, 'drill_rows, drill_keyless');
    await connection?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it(
    'passes while the source keeps changing: restored rows equal the snapshot, report in storage equals the result, scratch gone, gauges exported',
    { timeout: 180_000 },
    async () => {
      // A writer that commits a row every 20 ms for as long as the drill runs.
      let writing = true;
      const writer = (async () => {
        while (writing) {
          await admin.query(`insert into drill_rows (note) values ('during the drill')`);
          await sleep(20);
        }
      })();
      let cli;
      try {
        cli = await runCli(
          ['drill', '--database', DB, '--region', 'us-west-2', '-f', planFile, '--json'],
          env,
        );
      } finally {
        writing = false;
        await writer;
      }
      assert.equal(cli.code, 0, `lifeboat drill exited ${cli.code}:\n${cli.stderr}\n${cli.stdout}`);
      const { webUi, ...result } = JSON.parse(cli.stdout) as DrillReport & { webUi: string };
      const report = drillReportSchema.parse(result);
      console.log(
        `passed drill ${report.workflowId}: RTO ${report.measured.rtoMs} ms ${JSON.stringify(report.measured.rtoBreakdownMs)}, RPO ${report.measured.rpoMs} ms`,
      );
      assert.match(webUi, new RegExp(report.workflowId));
      assert.equal(report.outcome, 'passed', report.reasons.join(' '));
      assert.deepEqual(report.reasons, []);
      assert.deepEqual(
        report.phases.map((p) => [p.name, p.outcome]),
        PHASES_PASSED.map((p) => [p, 'completed']),
      );
      assert.deepEqual(report.verdicts, { rto: 'met', rpo: 'met' });
      assert.deepEqual(report.targets, { rtoMs: 15 * 60_000, rpoMs: 5_000 });
      // The comparison: equal to the snapshot, which the writer has since left behind.
      // compareAllTables: every user table, drill_rows once (named as the policy names it).
      assert.ok(
        report.comparisons.every((c) => c.ok),
        JSON.stringify(report.comparisons),
      );
      const names = report.comparisons.map((c) => c.table);
      assert.ok(
        names.some((n) => n.endsWith('.drill_keyless')),
        names.join(', '),
      );
      assert.ok(!names.includes('public.drill_rows'), names.join(', '));
      const [cmp] = report.comparisons;
      assert.ok(cmp?.ok && cmp.table === 'drill_rows', JSON.stringify(cmp));
      assert.equal(cmp.restoredRows, cmp.sourceRows);
      assert.equal(cmp.restoredChecksum, cmp.sourceChecksum);
      const now = Number(
        (await admin.query<{ n: string }>('select count(*) as n from drill_rows')).rows[0]!.n,
      );
      assert.ok(
        cmp.sourceRows! > 500 && cmp.sourceRows! < now,
        `snapshot ${cmp.sourceRows}, source now ${now}`,
      );
      assert.ok(report.validation.length > 0 && report.validation.every((v) => v.ok));
      assert.equal(
        report.restore?.restoreWorkflowId,
        `${workflowIds.restore(DB, new Date(report.startedAt))}-drill`,
      );
      assert.equal(report.teardown.done, true, report.teardown.detail);

      // Storage holds the same report (write-once JSON) and its HTML with the timeline.
      assert.deepEqual(await storedReport(report), report);
      const html = Buffer.from(
        await store.get(repository.drillReport('', DB, report.drillId, 'report.html')),
      ).toString('utf8');
      assert.match(html, /<svg/);
      assertScratchGone();

      // Whichever worker ran the workflow exports the drill's gauges.
      const metrics = (
        await Promise.all(
          metricsPorts.map(async (p) => (await fetch(`http://127.0.0.1:${p}/metrics`)).text()),
        )
      ).join('\n');
      assert.match(metrics, /lifeboat_drill_passed\S*\{[^}]*database="orders"[^}]*\} 1/);
      const rto = /lifeboat_drill_rto_seconds\S*\{[^}]*database="orders"[^}]*\} (\S+)/.exec(metrics);
      assert.ok(rto, metrics);
      assert.equal(Number(rto[1]), report.measured.rtoMs! / 1000);
      assert.match(metrics, /lifeboat_drill_rpo_seconds\S*\{[^}]*database="orders"[^}]*\} \S+/);
    },
  );

  it(
    'cancelled while the restore replays: scratch instance stopped and deleted, report says cancelled with the phases reached',
    { timeout: 180_000 },
    async () => {
      // The next backup carries recovery_min_apply_delay: its restore holds before the first commit.
      await adminQuery(stack, 'us-east-1', `alter system set recovery_min_apply_delay = '1h'`);
      try {
        await fullBackup(client);
      } finally {
        await adminQuery(stack, 'us-east-1', 'alter system reset recovery_min_apply_delay');
      }
      await admin.query(`insert into drill_rows (note) values ('after the delayed backup')`);
      // The id a schedule gives its runs (`<schedule id>-<RFC 3339 time>`): colons and all.
      const workflowId = `lifeboat-drill-orders-drill-${new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')}`;
      const handle = await client.workflow.start<typeof drDrillWorkflow>('drDrillWorkflow', {
        taskQueue: 'lifeboat',
        workflowId,
        args: [{ database: DB, region: 'us-west-2', requestedBy: 'test', policy: 'orders-drill' }],
      });
      // Wait until the restore child replays (and is held there by the delay), then cancel.
      for (let i = 0; ; i++) {
        assert.ok(i < 240, 'the drill never reached replay');
        const p = await handle.query<DrillProgress>('progress').catch(() => undefined);
        if (p?.restoreWorkflowId) {
          const r = await client.workflow
            .getHandle(p.restoreWorkflowId)
            .query<RestoreProgress>('progress')
            .catch(() => undefined);
          if (r?.phase === 'replaying' && r.port) {
            // Replay is running: the restored server answers (read-only, in recovery).
            await sleep(1000);
            break;
          }
        }
        await sleep(250);
      }
      // `lifeboat status` shows the drill's phase and its restore.
      const status = await runCli(['status', workflowId], env);
      assert.equal(status.code, 0, status.stderr);
      assert.match(
        status.stdout,
        /drDrillWorkflow .*: RUNNING\n.*: restoring since .*; restore restore-orders-\S+-drill; scratch port \d+/,
      );
      await handle.cancel();
      await assert.rejects(handle.result(), (err: unknown) => {
        assert.ok(err instanceof WorkflowFailedError);
        assert.match(String(err.cause?.name), /CancelledFailure/);
        return true;
      });
      const report = await storedReport({ database: DB, drillId: workflowId });
      assert.equal(report.outcome, 'cancelled');
      assert.deepEqual(
        report.phases.map((p) => [p.name, p.outcome]),
        [
          ['preparing', 'completed'],
          ['restoring', 'cancelled'],
          ['tearing-down', 'completed'],
          ['reporting', 'completed'],
        ],
      );
      assert.equal(report.phases[1]!.endedAt, null);
      assert.match(report.reasons.join(' '), /cancelled during restoring/);
      assert.equal(report.teardown.done, true, report.teardown.detail);
      assert.match(report.teardown.detail, /deleted/);
      assert.equal(report.measured.rtoMs, null);
      assert.deepEqual(report.verdicts, { rto: 'unknown', rpo: 'unknown' });
      assertScratchGone();
    },
  );

  it(
    'fails on the RPO target when the newest WAL is missing from storage; the report says why',
    { timeout: 180_000 },
    async () => {
      // A backup without the delay, then: a commit in a segment that is archived, 6 s of nothing,
      // a commit in the next segment, which is then deleted from storage with the archiver stopped.
      await fullBackup(client);
      await admin.query(`insert into drill_rows (note) values ('archived')`);
      const kept = await segmentHolding(await currentLsn());
      await admin.query('select pg_switch_wal()');
      await waitArchived(kept);
      await sleep(6000);
      await admin.query(`insert into drill_rows (note) values ('lost')`);
      // Wait until a partial upload holds the lost commit, then stop the archiver and delete it.
      const lostLsn = await currentLsn();
      for (let i = 0; ; i++) {
        assert.ok(i < 60, `no upload reached ${lostLsn} within 30 s`);
        const listed = await store.list(repository.walPrefix('', DB));
        const reached = listed.some((o) => {
          const m = /\/([0-9A-F]{24})\.partial\.([0-9A-F]+)-([0-9A-F]+)\.zst\.age$/.exec(o.key);
          return m && m[1]! > kept && parseLsn(`${m[2]}/${m[3]}`) >= parseLsn(lostLsn);
        });
        if (reached) break;
        await sleep(500);
      }
      // Stopped as an operator does: the command returns once the streaming activity has ended,
      // so nothing uploads after it (a terminated run's activity would go on until its next heartbeat).
      const stopped = await runCli(['archiver', 'stop', '--database', DB, '-f', planFile], env);
      assert.equal(stopped.code, 0, stopped.stderr);
      const newer = (await store.list(repository.walPrefix('', DB))).filter((o) => {
        const m = /\/([0-9A-F]{24})(\.partial\.[^/]*)?\.zst\.age$/.exec(o.key);
        return m && m[1]! > kept;
      });
      assert.ok(newer.length > 0, 'nothing archived after the kept segment: the loss would not be exercised');
      for (const o of newer) await store.delete(o.key);

      const workflowId = workflowIds.drill(DB, new Date());
      const result = await client.workflow.execute<typeof drDrillWorkflow>('drDrillWorkflow', {
        taskQueue: 'lifeboat',
        workflowId,
        args: [{ database: DB, region: 'us-west-2', requestedBy: 'test', policy: 'orders-drill' }],
      });
      console.log(
        `RPO drill ${workflowId}: RPO ${result.measured.rpoMs} ms; reasons: ${result.reasons.join(' ')}`,
      );
      assert.equal(result.outcome, 'failed');
      assert.equal(result.verdicts.rpo, 'missed');
      assert.ok(result.measured.rpoMs! >= 6000, `RPO ${result.measured.rpoMs} ms`);
      assert.ok(
        result.reasons.some((r) => /^RPO \d+\.\d s missed the target of 5\.0 s\.$/.test(r)),
        result.reasons.join('\n'),
      );
      assert.equal(result.restore?.reachedEndOfArchive, true);
      // The table cannot be compared with a snapshot the restore does not reach: never called equal.
      assert.equal(result.comparisons[0]?.ok, false);
      assert.match(result.comparisons[0].detail, /not compared: the archive ends before/);
      assert.deepEqual(await storedReport(result), result);
      assertScratchGone();
    },
  );

  it('bad input exits 2 naming every problem; a failover drill against a production plan is refused without the acknowledgement', async () => {
    const prod = path.join(tmp, 'production.yaml');
    fs.writeFileSync(
      prod,
      stringify({ ...(parse(fs.readFileSync(planFile, 'utf8')) as object), environment: 'production' }),
    );
    // Three refusals at the edge, independent of one another: run side by side.
    const [bad, refused, primary] = await Promise.all([
      runCli(['drill', '--database', 'nope', '--region', 'mars', '--to', 'yesterday', '-f', planFile], env),
      runCli(['drill', '--database', DB, '--region', 'us-west-2', '--failover', '-f', prod], env),
      runCli(['drill', '--database', DB, '--region', 'us-east-1', '--failover', '-f', planFile], env),
    ]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--database: "nope" is not in the plan/);
    assert.match(bad.stderr, /--region: "mars" is not in the plan/);
    assert.match(bad.stderr, /--to: "yesterday" is not a target/);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(
      refused.stderr,
      /marked production: a failover drill moves its live primary; pass --i-understand-this-is-production/,
    );
    assert.equal(primary.code, 2, primary.stderr);
    assert.match(primary.stderr, /us-east-1 is orders's primary region/);
  });

  it(
    'failover drill: planned switchover to us-west-2 and back, each approved, each RTO measured, primary home again',
    { timeout: 240_000 },
    async () => {
      const workflowId = `${workflowIds.drill(DB, new Date())}-failover`;
      const lock = workflowIds.failover(DB);
      try {
        const handle = await client.workflow.start<typeof drDrillWorkflow>('drDrillWorkflow', {
          taskQueue: 'lifeboat',
          workflowId,
          args: [{ database: DB, region: 'us-west-2', requestedBy: 'test', mode: 'failover' }],
        });
        for (const [phase, to] of [
          ['switching-over', 'us-west-2'],
          ['switching-back', 'us-east-1'],
        ] as const) {
          for (let i = 0; ; i++) {
            assert.ok(i < 240, `the drill never reached ${phase} awaiting approval`);
            const p = await handle.query<DrillProgress>('progress').catch(() => undefined);
            if (p?.phase === phase) {
              const f = await client.workflow
                .getHandle(lock)
                .query<FailoverProgress>('progress')
                .catch(() => undefined);
              if (f?.phase === 'awaiting-approval' && f.targetRegion === to) break;
            }
            await sleep(250);
          }
          for (const who of ['alice', 'bob'])
            assert.equal((await runCli(['approve', lock, '--as', who], env)).code, 0);
        }
        const report = await handle.result();
        console.log(`failover drill ${workflowId}: ${JSON.stringify(report.measured)}`);
        assert.equal(report.outcome, 'passed', report.reasons.join(' '));
        assert.equal(report.mode, 'failover');
        assert.deepEqual(
          report.phases.map((p) => [p.name, p.outcome]),
          ['preparing', 'switching-over', 'switching-back', 'tearing-down', 'reporting'].map((n) => [
            n,
            'completed',
          ]),
        );
        assert.equal(report.failover?.switchover.outcome, 'switched-over');
        assert.equal(report.failover?.switchback?.outcome, 'switched-over');
        assert.equal(report.measured.rtoMs, report.failover?.switchover.rtoMs);
        assert.equal(report.measured.rtoBreakdownMs.switchback, report.failover?.switchback?.rtoMs);
        assert.equal(report.measured.rpoMs, 0);
        assert.equal(report.teardown.done, true);
        assert.deepEqual(await storedReport(report), report);
        // Home again: us-east-1 takes writes.
        const [ro] = await adminQuery<{ rec: boolean }>(
          stack,
          'us-east-1',
          'select pg_is_in_recovery() as rec',
        );
        assert.equal(ro!.rec, false);
      } finally {
        await restoreStackShape(stack);
        await admin.end().catch(() => undefined);
        admin = await connectAdmin();
      }
    },
  );
});
