// pointInTimeRestoreWorkflow on the real local stack: a full backup and the WAL archiver of a
// fresh storage prefix, a workload of rows each committed in its own transaction with the
// server's clock and WAL position read after every commit, then restores into us-west-2 by real
// worker processes. Exactness is checked row by row: every row committed at or before the target
// is there, none after. Every restored instance is stopped and its directory removed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import pg from 'pg';
import { livePostmaster } from '../../src/activities/restore.ts';
import { createDnsZone, type DnsZone } from '../../src/activities/ports/dns-zone.ts';
import { createObjectStore, type ObjectStore } from '../../src/activities/ports/object-store.ts';
import { parseLsn } from '../../src/domain/lsn.ts';
import { workflowIds } from '../../src/domain/naming.ts';
import { repository } from '../../src/domain/repository.ts';
import {
  summarizeRestore,
  type RestoreInput,
  type RestoreProgress,
  type RestoreResult,
} from '../../src/domain/restore.ts';
import type { pointInTimeRestoreWorkflow } from '../../src/workflows/point-in-time-restore.ts';
import { stackUp } from '../../src/stack/stack.ts';
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
import { stopRestoredInstance } from '../support/backups.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';

const ROWS = 60;

interface Mark {
  id: number;
  /** Server clock after the commit returned, with microseconds. */
  time: string;
  /** pg_current_wal_insert_lsn() after the commit. */
  lsn: string;
}

describe('point-in-time restore on the local stack', () => {
  let stack: TestStack;
  let connection: Connection;
  let client: Client;
  let store: ObjectStore;
  let planFile: string;
  let tmp: string;
  let restoreRoot: string;
  let admin: pg.Client;
  let workerEnv: NodeJS.ProcessEnv;
  let east: WorkerProcess;
  let west: WorkerProcess;
  let backupStartedAt: string;
  const marks: Mark[] = [];
  let pointName: string;
  const restored: RestoreResult[] = [];
  let zone: DnsZone;
  /** The plan's records of the database as moto holds them, `name type → values`. */
  const dnsNow = async (): Promise<Record<string, string[]>> => {
    const all = await zone.listRecords((await zone.findZoneId())!);
    const wanted = stack.plan.dns!.records.filter((r) => r.database === DB);
    return Object.fromEntries(
      wanted.map((w) => [
        `${w.name} ${w.type}`,
        [...(all.find((r) => r.name === w.name && r.type === w.type)?.values ?? [])].sort(),
      ]),
    );
  };
  const dnsOf = (region: string): Record<string, string[]> =>
    Object.fromEntries(
      stack.plan
        .dns!.records.filter((r) => r.database === DB)
        .map((r) => [`${r.name} ${r.type}`, [...r.values[region]!].sort()]),
    );
  const pointDns = async (region: string) =>
    zone.upsertRecords(
      (await zone.findZoneId())!,
      stack.plan
        .dns!.records.filter((r) => r.database === DB)
        .map((r) => ({ name: r.name, type: r.type, ttl: r.ttl, values: r.values[region]! })),
      'test: DNS back at the primary',
    );
  const awaitingApproval = async (handle: { query: <T>(q: string) => Promise<T> }) => {
    for (let i = 0; ; i++) {
      const p = await handle.query<RestoreProgress>('progress');
      if (p.phase === 'awaiting-approval') return p;
      assert.ok(p.phase !== 'failed' && p.phase !== 'completed', `phase ${p.phase}: ${p.error ?? ''}`);
      assert.ok(i < 1200, 'the approval gate did not open');
      await sleep(100);
    }
  };

  const restore = async (input: Omit<RestoreInput, 'database' | 'region'>, id: string) =>
    client.workflow.start<typeof pointInTimeRestoreWorkflow>('pointInTimeRestoreWorkflow', {
      taskQueue: 'lifeboat',
      workflowId: `${workflowIds.restore(DB, new Date())}-${id}`,
      args: [{ database: DB, region: 'us-west-2', requestedBy: 'test', ...input }],
    });

  const rowsIn = async (r: RestoreResult): Promise<number[]> => {
    const c = new pg.Client({
      host: r.instance.host,
      port: r.instance.port,
      user: stack.plan.regions['us-west-2']!.postgres.user,
      password: stack.secrets.LIFEBOAT_PG_PASSWORD,
      database: DB,
    });
    await c.connect();
    try {
      return (await c.query<{ id: number }>('select id from pitr_rows order by id')).rows.map((x) => x.id);
    } finally {
      await c.end();
    }
  };
  const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

  before(async () => {
    stack = await ensureStack();
    zone = createDnsZone(stack.plan.dns!, stack.env);
    // Another test file may have left DNS at the replica: start from the plan's primary.
    await pointDns(stack.plan.databases[DB]!.primaryRegion);
    connection = await Connection.connect({ address: stack.layout.temporal.address });
    client = new Client({ connection });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-pitr-'));
    fs.chmodSync(tmp, 0o755);
    restoreRoot = path.join(tmp, 'restores');
    const archiving = writeArchivingPlan(stack, tmp, { name: 'pitr', walPartialUpload: '3s' });
    planFile = archiving.planFile;
    store = createObjectStore(archiving.plan.storage.primary, stack.env);
    workerEnv = {
      ...stack.env,
      LIFEBOAT_SPOOL: path.join(tmp, 'spool'),
      LIFEBOAT_RESTORE_ROOT: restoreRoot,
    };
    [east, west] = await Promise.all([
      startWorker('us-east-1', stack.layout.secretsFile, planFile, workerEnv),
      startWorker('us-west-2', stack.layout.secretsFile, planFile, workerEnv),
    ]);

    admin = await connectPrimary(stack);
    await resetArchiver(client, admin);
    await admin.query('drop table if exists pitr_rows');
    await admin.query(
      'create table pitr_rows (id int primary key, at timestamptz not null default clock_timestamp())',
    );

    // Archiver first (its slot holds the WAL from here on), then a full backup.
    await startArchiver(client, '30s');
    backupStartedAt = new Date().toISOString();
    assert.ok(await fullBackup(client));

    // The workload: one row per transaction, the server's clock and WAL position after each.
    for (let id = 1; id <= ROWS; id++) {
      await admin.query('insert into pitr_rows (id) values ($1)', [id]);
      const r = await admin.query<{ t: string; lsn: string }>(
        `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as t,
                pg_current_wal_insert_lsn()::text as lsn`,
      );
      marks.push({ id, time: r.rows[0]!.t, lsn: r.rows[0]!.lsn });
      if (id === 20) {
        pointName = `pitr-test-${Date.now()}`;
        await admin.query('select pg_create_restore_point($1)', [pointName]);
      }
      await sleep(20);
    }
    // Seal the segment and wait until the archive holds it.
    const end = (await admin.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn'))
      .rows[0]!.lsn;
    await admin.query('select pg_switch_wal()');
    // The segment's name carries the timeline, which is past 1 once the stack has failed over.
    const segment = (await admin.query<{ f: string }>('select pg_walfile_name($1) as f', [end])).rows[0]!.f;
    for (let i = 0; !(await store.head(repository.walSegment('', DB, segment))); i++) {
      assert.ok(i < 120, `${segment} (holding ${end}) not archived within 60 s`);
      await sleep(500);
    }
  });

  after(async () => {
    for (const r of restored) stopRestoredInstance(stack.layout, r.instance.dataDir);
    for (const dir of fs.existsSync(restoreRoot) ? fs.readdirSync(restoreRoot) : [])
      stopRestoredInstance(stack.layout, path.join(restoreRoot, dir, 'data'));
    if (client) await terminateArchiver(client, 'test over');
    await Promise.all([east?.stop('SIGTERM'), west?.stop('SIGTERM')]);
    await releasePrimary(admin, 'pitr_rows');
    await connection?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it(
    'restores to a time: every row committed at or before it, none after; reports the point reached',
    { timeout: 120_000 },
    async () => {
      const mark = marks[29]!;
      const handle = await restore({ target: mark.time }, 'time');
      const r = await handle.result();
      restored.push(r);
      assert.deepEqual(await rowsIn(r), upTo(30));
      assert.equal(r.achieved.state, 'promoted');
      assert.equal(r.achieved.reachedEndOfArchive, false);
      assert.ok(r.achieved.timeline >= 2, `promoted onto a new timeline, got ${r.achieved.timeline}`);
      assert.ok(r.achieved.lastTransactionTime, 'the last replayed transaction time is known');
      assert.ok(Date.parse(r.achieved.lastTransactionTime) <= Date.parse(mark.time));
      assert.ok(parseLsn(r.achieved.lsn) > 0n);
      assert.match(r.instance.url, /^postgres:\/\/lifeboat@127\.0\.0\.1:\d+\/orders$/);
      assert.ok(!r.instance.url.includes(stack.secrets.LIFEBOAT_PG_PASSWORD!));
      assert.ok(r.validation.every((v) => v.ok));
      assert.ok(r.validation.some((v) => v.name === 'accepts-writes'));
      assert.ok(r.bytes.stored > 0 && r.bytes.raw > r.bytes.stored / 2);
      for (const k of ['downloadMs', 'startMs', 'replayMs', 'validateMs', 'totalMs'] as const)
        assert.ok(r.rto[k] >= 0, k);
      console.log(summarizeRestore(r));
      const desc = await handle.describe();
      assert.equal(desc.status.name, 'COMPLETED');
      const status = await runCli(['status', handle.workflowId], stack.env);
      assert.equal(status.code, 0, status.stderr);
      assert.match(
        status.stdout,
        /pointInTimeRestoreWorkflow .*: COMPLETED\n.*: completed since .*; backup orders-full-/,
      );
    },
  );

  it('latest: the end of the archive is reached and said; without cutover DNS is untouched', async () => {
    const dnsBefore = await dnsNow();
    assert.deepEqual(dnsBefore, dnsOf('us-east-1'));
    const latest = await (await restore({ target: 'latest' }, 'latest')).result();
    restored.push(latest);
    assert.deepEqual(await rowsIn(latest), upTo(ROWS));
    assert.equal(latest.achieved.reachedEndOfArchive, true);
    assert.match(
      latest.note ?? '',
      /stopped at the end of the archive: lsn \S+, \d+ bytes before the end of the newest archived WAL/,
    );
    assert.equal(latest.cutover, undefined);
    assert.deepEqual(await dnsNow(), dnsBefore, 'a restore without cutover leaves DNS as it was');
  });

  it(
    'cutover: waits for two approvers other than the requester, then points DNS at the restore region',
    { timeout: 120_000 },
    async () => {
      assert.deepEqual(await dnsNow(), dnsOf('us-east-1'));
      const handle = await restore(
        { target: marks[29]!.time, cutover: true, requestedBy: 'alice' },
        'cutover-approved',
      );
      console.log(`cutover run: ${handle.workflowId}`);
      const waiting = await awaitingApproval(handle);
      // Its instance is in use while the run waits: discarding it now is refused, nothing touched.
      const early = await runCli(['restore', 'discard', handle.workflowId, '-f', planFile], stack.env);
      assert.equal(early.code, 1, early.stderr);
      assert.match(
        early.stderr,
        new RegExp(`restore ${handle.workflowId} is still running; cancel it first`),
      );
      assert.equal(waiting.approval?.waiting, true);
      assert.deepEqual(waiting.approval?.policy, { approvers: ['alice', 'bob', 'carol'], minApprovals: 2 });
      const own = await runCli(['approve', handle.workflowId, '--as', 'alice'], stack.env);
      assert.equal(own.code, 2, own.stderr);
      assert.match(own.stderr, /alice requested this operation and cannot approve or reject it/);
      const outsider = await runCli(['approve', handle.workflowId, '--as', 'mallory'], stack.env);
      assert.equal(outsider.code, 2);
      assert.match(outsider.stderr, /mallory is not an approver of this policy/);
      assert.deepEqual(await dnsNow(), dnsOf('us-east-1'), 'nothing moves before the approvals');
      for (const who of ['bob', 'carol']) {
        const ok = await runCli(['approve', handle.workflowId, '--as', who], stack.env);
        assert.equal(ok.code, 0, ok.stderr);
      }
      const r = await handle.result();
      restored.push(r);
      try {
        assert.deepEqual(await rowsIn(r), upTo(30));
        assert.equal(r.cutover?.outcome, 'approved');
        assert.deepEqual(r.cutover.decisions.map((d) => d.approver).sort(), ['bob', 'carol']);
        assert.deepEqual(await dnsNow(), dnsOf('us-west-2'));
        assert.deepEqual(
          Object.fromEntries(r.cutover.records.map((d) => [`${d.name} ${d.type}`, [...d.values].sort()])),
          dnsOf('us-west-2'),
        );
        console.log(summarizeRestore(r));
      } finally {
        await pointDns('us-east-1');
      }
    },
  );

  it(
    'cutover rejected, or not approved in time: the restore stands, DNS unchanged',
    { timeout: 120_000 },
    async () => {
      const dnsBefore = await dnsNow();
      const handle = await restore(
        { target: marks[29]!.time, cutover: true, requestedBy: 'alice' },
        'cutover-rejected',
      );
      await awaitingApproval(handle);
      const noReason = await runCli(['approve', handle.workflowId, '--as', 'bob', '--reject'], stack.env);
      assert.equal(noReason.code, 2);
      const reject = await runCli(
        ['approve', handle.workflowId, '--as', 'bob', '--reject', '--reason', 'wrong point'],
        stack.env,
      );
      assert.equal(reject.code, 0, reject.stderr);
      const rejected = await handle.result();
      restored.push(rejected);
      assert.equal(rejected.cutover?.outcome, 'rejected');
      assert.match(rejected.cutover.detail, /rejected by bob: wrong point; DNS unchanged/);
      assert.deepEqual(await rowsIn(rejected), upTo(30), 'the rejected cutover leaves the restore running');
      assert.deepEqual(await dnsNow(), dnsBefore);

      // Through the CLI: no one decides before the requested timeout.
      const cli = runCli(
        [
          'restore',
          '--database',
          DB,
          '--to',
          marks[29]!.time,
          '--region',
          'us-west-2',
          '--cutover',
          '--approval-timeout',
          '2s',
          '-f',
          planFile,
        ],
        { ...stack.env, LIFEBOAT_USER: 'alice' },
      );
      const done = await cli;
      assert.equal(done.code, 1, done.stderr);
      assert.match(
        done.stdout,
        /cutover not-approved: not approved within 2\.0s \(0 of 2 approvals\); DNS unchanged/,
      );
      const dataDir = /data directory (\S+)\)/.exec(done.stdout)?.[1];
      assert.ok(dataDir, done.stdout);
      stopRestoredInstance(stack.layout, dataDir);
      assert.deepEqual(await dnsNow(), dnsBefore);
      const bad = await runCli(
        [
          'restore',
          '--database',
          DB,
          '--to',
          'latest',
          '--region',
          'us-west-2',
          '--approval-timeout',
          'soon',
          '-f',
          planFile,
        ],
        stack.env,
      );
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--approval-timeout: only with --cutover/);
    },
  );

  it('restores to an LSN and to a named restore point, exactly', async () => {
    const byLsn = await (await restore({ target: `lsn:${marks[39]!.lsn}` }, 'lsn')).result();
    restored.push(byLsn);
    assert.deepEqual(await rowsIn(byLsn), upTo(40));
    const byName = await (await restore({ target: `name:${pointName}` }, 'name')).result();
    restored.push(byName);
    assert.deepEqual(await rowsIn(byName), upTo(20));
  });

  it(
    'restore discard stops a restored instance and deletes its files; a directory not of that restore is refused untouched',
    { timeout: 120_000 },
    async () => {
      const victim = restored.find((r) => r.restoreId.endsWith('-lsn'))!;
      const other = restored.find((r) => r.restoreId.endsWith('-name'))!;
      const discard = (...extra: string[]) =>
        runCli(['restore', 'discard', victim.restoreId, '-f', planFile, ...extra], stack.env);

      // Another restore's directory given for this id: refused, and that instance keeps serving.
      const wrong = await discard('--data-dir', other.instance.dataDir);
      assert.equal(wrong.code, 1, wrong.stderr);
      assert.match(
        wrong.stderr,
        new RegExp(
          `is not the data directory of restore ${victim.restoreId} \\(its marker names ${other.restoreId}\\); nothing was touched`,
        ),
      );
      assert.deepEqual(await rowsIn(other), upTo(20));

      // The region and the directory come from the restore's own run.
      const done = await discard();
      assert.equal(done.code, 0, done.stderr);
      assert.match(
        done.stdout,
        new RegExp(
          `^discarded ${victim.restoreId}: stopped the server on port ${victim.instance.port} \\(pid \\d+, SIGINT\\); deleted ${path.dirname(victim.instance.dataDir)}\n$`,
        ),
      );
      assert.equal(livePostmaster(victim.instance.dataDir), undefined);
      assert.equal(fs.existsSync(path.dirname(victim.instance.dataDir)), false, 'its folder is gone');
      await assert.rejects(rowsIn(victim), /ECONNREFUSED/);
      assert.deepEqual(await rowsIn(other), upTo(20), 'the other restore is untouched');

      // Again: nothing left, not an error.
      const again = await discard();
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /already discarded/);

      // A path in disguise is bad input at the CLI, before any workflow starts.
      const sneaky = await runCli(
        ['restore', 'discard', '../../etc', '--region', 'us-west-2', '-f', planFile],
        stack.env,
      );
      assert.equal(sneaky.code, 2, sneaky.stderr);
      assert.match(sneaky.stderr, /restoreId: expected a restore id/);
    },
  );

  it('refuses a target outside the window at once, saying what the window is, writing nothing', async () => {
    const before = new Date(Date.parse(backupStartedAt) - 3600_000).toISOString();
    const future = new Date(Date.now() + 3600_000).toISOString();
    // Three refusals, independent of one another: run side by side.
    const [early, inFuture, bad] = await Promise.all([
      restore({ target: before }, 'early').then((h) =>
        h.result().then(
          () => undefined,
          (err: unknown) => err,
        ),
      ),
      runCli(
        ['restore', '--database', DB, '--to', future, '--region', 'us-west-2', '-f', planFile],
        stack.env,
      ),
      runCli(
        ['restore', '--database', DB, '--to', 'yesterday', '--region', 'us-west-2', '-f', planFile],
        stack.env,
      ),
    ]);
    assert.ok(early instanceof WorkflowFailedError, `the early target was refused: ${String(early)}`);
    assert.match(
      early.cause?.message ?? '',
      /before the first full backup ended; recoverable from .* to lsn /,
    );
    assert.equal(inFuture.code, 1, inFuture.stderr);
    assert.match(inFuture.stderr, /is in the future .*recoverable from/);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--to: "yesterday" is not a target/);
    const written = fs.existsSync(restoreRoot) ? fs.readdirSync(restoreRoot) : [];
    assert.ok(
      !written.some((d) => d.endsWith('-early')),
      `nothing written for a refused target: ${written.join(', ')}`,
    );
  });

  it('refuses a directory that holds a running cluster or files of its own, touching nothing', async () => {
    const live = stack.layout.postgres['us-west-2'].dataDir;
    const before = fs.readdirSync(live).sort();
    const onLive = await restore({ target: 'latest', dataDir: live }, 'on-live');
    await assert.rejects(onLive.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(
        (err.cause as { cause?: Error } | undefined)?.cause?.message ?? '',
        /holds a running PostgreSQL server \(postmaster\.pid\); refusing/,
      );
      return true;
    });
    assert.deepEqual(fs.readdirSync(live).sort(), before);
    const busy = path.join(tmp, 'busy');
    fs.mkdirSync(busy);
    fs.writeFileSync(path.join(busy, 'precious.txt'), 'keep me');
    const onBusy = await restore({ target: 'latest', dataDir: busy }, 'on-busy');
    await assert.rejects(onBusy.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(
        (err.cause as { cause?: Error } | undefined)?.cause?.message ?? '',
        /is not empty and not this restore's \(precious\.txt\)/,
      );
      return true;
    });
    assert.deepEqual(fs.readdirSync(busy), ['precious.txt']);
  });

  it(
    'completes correctly when the worker is SIGKILLed during the download and again during replay',
    { timeout: 150_000 },
    async () => {
      const handle = await restore({ target: marks[49]!.time }, 'crash');
      const progress = () => handle.query<RestoreProgress>('progress');
      for (let i = 0; (await progress()).phase === 'resolving'; i++) {
        assert.ok(i < 600, 'download did not begin');
        await sleep(50);
      }
      const killedIn = (await progress()).phase;
      await west.stop('SIGKILL');
      west = await startWorker('us-west-2', stack.layout.secretsFile, planFile, workerEnv);
      console.log(`worker SIGKILLed in phase ${killedIn}`);
      for (let i = 0; (await progress()).phase === 'downloading'; i++) {
        assert.ok(i < 1200, 'replay did not begin');
        await sleep(50);
      }
      if ((await progress()).phase === 'replaying') {
        console.log('worker SIGKILLed in phase replaying');
        await west.stop('SIGKILL');
        west = await startWorker('us-west-2', stack.layout.secretsFile, planFile, workerEnv);
      }
      const r = await handle.result();
      restored.push(r);
      assert.deepEqual(await rowsIn(r), upTo(50));
      const pid = livePostmaster(r.instance.dataDir);
      assert.ok(pid, 'one server runs on the restored directory');
      const servers = execFileSync('ps', ['-eo', 'args']).toString().split('\n');
      assert.equal(
        servers.filter((l) => /postgres -D/.test(l) && l.includes(r.instance.dataDir)).length,
        1,
        'never two servers on one directory',
      );
    },
  );

  // With the primary stopped no commit can follow the target, so "a time after the last archived
  // commit" is certain; with it running, an autovacuum commit archived after the target would
  // rightly stop the replay there.
  it('with the primary stopped, latest and a time after its last commit restore everything archived and say how far that is', async () => {
    const primary = stack.layout.postgres['us-east-1'];
    await admin.end();
    execFileSync('runuser', [
      '-u',
      stack.layout.postgres.osUser,
      '--',
      path.join(stack.layout.postgres.binDir, 'pg_ctl'),
      'stop',
      '-m',
      'fast',
      '-w',
      '-D',
      primary.dataDir,
    ]);
    try {
      const r = await (await restore({ target: 'latest' }, 'primary-gone')).result();
      restored.push(r);
      assert.deepEqual(await rowsIn(r), upTo(ROWS));
      assert.equal(r.achieved.reachedEndOfArchive, true);
      assert.match(r.note ?? '', /stopped at the end of the archive: lsn /);
      const late = await (await restore({ target: new Date().toISOString() }, 'late')).result();
      restored.push(late);
      assert.deepEqual(await rowsIn(late), upTo(ROWS));
      console.log(summarizeRestore(late));
      assert.equal(late.achieved.state, 'promoted');
      assert.equal(late.achieved.reachedEndOfArchive, true);
      assert.match(late.note ?? '', /the archive holds nothing after .*, before the target/);
    } finally {
      await stackUp(stack.layout, stack.plan);
      admin = await connectPrimary(stack);
    }
  });
});
