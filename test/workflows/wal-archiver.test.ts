// walArchiverWorkflow against the real local stack: a write load on the primary, pg_receivewal
// spawned by a real worker process, SeaweedFS stopped for 30 s in the middle (ten segments or more
// written meanwhile). What is stored is checked from S3 itself: contiguous segments, and bytes that stock
// `age -d` and `zstd -d` turn back into exactly what PostgreSQL has in pg_wal.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import pg from 'pg';
import { createObjectStore, type ObjectStore } from '../../src/activities/ports/object-store.ts';
import { parseLsn } from '../../src/domain/lsn.ts';
import { workflowIds } from '../../src/domain/naming.ts';
import { repository } from '../../src/domain/repository.ts';
import {
  archiverSlotName,
  nextSegment,
  segmentOfLsn,
  type ArchiveWalProgress,
  type WalArchiverStatus,
} from '../../src/domain/wal.ts';
import { startS3Server, stopS3Server } from '../../src/stack/s3-server.ts';
import {
  connectPrimary,
  DB,
  releasePrimary,
  resetArchiver,
  writeArchivingPlan,
} from '../support/archiving.ts';
import { freePort } from '../support/backups.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';
import { tempDir } from '../support/temp-dir.ts';

const SEG = 16 * 1024 * 1024;

describe('WAL archiver on the local stack', () => {
  let stack: TestStack;
  let worker: WorkerProcess;
  let connection: Connection;
  let client: Client;
  let handle: WorkflowHandle;
  let store: ObjectStore;
  let planFile: string;
  let tmp: string;
  let spool: string;
  let planName: string;
  let admin: pg.Client;
  let load: WriteLoad;
  const deliveries: { event: string; title: string; text: string }[] = [];
  const receiver = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      deliveries.push(JSON.parse(text) as (typeof deliveries)[number]);
      res.writeHead(200).end();
    });
  });

  let workerEnv: NodeJS.ProcessEnv;
  let metricsPort: number;
  const startRegionWorker = () =>
    startWorker('us-east-1', stack.layout.secretsFile, planFile, workerEnv, [
      '--metrics-address',
      `127.0.0.1:${metricsPort}`,
    ]);
  const status = () => handle.query<WalArchiverStatus>('walArchiverStatus');
  /** The last segment archived: the workflow's view, or newer, the streaming run's last heartbeat. */
  const archivedUpTo = async () => {
    const described = await handle.describe();
    const beat = described.raw.pendingActivities?.find((a) => a.activityType?.name === 'archiveWal')
      ?.heartbeatDetails?.payloads?.[0];
    const live = beat
      ? defaultPayloadConverter.fromPayload<ArchiveWalProgress>(beat).lastArchived
      : undefined;
    const known = (await status()).lastArchived?.segment;
    return [known, live]
      .filter((x): x is string => x !== undefined)
      .sort()
      .at(-1);
  };
  const storedSegments = async () =>
    (await store.list(repository.walPrefix('', DB)))
      .map((o) => /\/([0-9A-F]{24})\.zst\.age$/.exec(o.key)?.[1])
      .filter((s): s is string => s !== undefined)
      .sort();
  const storedPartials = async () =>
    (await store.list(repository.walPrefix('', DB)))
      .map((o) => ({
        key: o.key,
        m: /\/([0-9A-F]{24})\.partial\.([0-9A-F]+)-([0-9A-F]+)\.zst\.age$/.exec(o.key),
      }))
      .filter((p) => p.m)
      .map((p) => ({ key: p.key, segment: p.m![1]!, upTo: parseLsn(`${p.m![2]}/${p.m![3]}`) }));

  /** Completes the segment being written and waits until it is in storage. */
  const switchUntilStored = async (ms: number) => {
    const lastWritten = (
      await admin.query<{ walfile: string }>('select pg_walfile_name(pg_switch_wal()) as walfile')
    ).rows[0]!.walfile;
    let segments: string[] = [];
    await waitFor(
      async () => (segments = await storedSegments()).includes(lastWritten),
      ms,
      `${lastWritten} stored`,
    );
    return { lastWritten, segments };
  };

  before(async () => {
    stack = await ensureStack();
    connection = await Connection.connect({ address: stack.layout.temporal.address });
    client = new Client({ connection });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    tmp = tempDir('lifeboat-wal-');
    spool = path.join(tmp, 'spool');
    // A fresh storage prefix, a 5 s partial upload and a webhook of our own.
    const archiving = writeArchivingPlan(stack, tmp, {
      name: 'wal',
      walPartialUpload: '5s',
      edit: (raw) => {
        raw.notifications = {
          webhooks: [{ name: 'ops', urlEnv: 'LIFEBOAT_TEST_WEBHOOK_URL', events: ['failure'] }],
        };
      },
    });
    planFile = archiving.planFile;
    planName = archiving.plan.name;
    store = createObjectStore(archiving.plan.storage.primary, stack.env);

    admin = await connectPrimary(stack);
    await resetArchiver(client, admin);
    await admin.query(
      'create table if not exists wal_archiver_load (id bigserial primary key, payload text not null, at timestamptz default now())',
    );

    metricsPort = await freePort();
    workerEnv = {
      ...stack.env,
      LIFEBOAT_SPOOL: spool,
      LIFEBOAT_TEST_WEBHOOK_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
    };
    worker = await startRegionWorker();
    load = new WriteLoad(stack.plan.regions['us-east-1']!.postgres, stack.secrets.LIFEBOAT_PG_PASSWORD!);
  });

  after(async () => {
    await load?.stop();
    if (handle) await handle.terminate('test over').catch(() => undefined);
    await worker?.stop('SIGTERM');
    await releasePrimary(admin, 'wal_archiver_load');
    await connection?.close();
    receiver.close();
  });

  it('archives every segment under write load: contiguous, and byte for byte what pg_wal holds', async () => {
    handle = await client.workflow.start('walArchiverWorkflow', {
      taskQueue: 'lifeboat',
      workflowId: workflowIds.walArchiver(DB),
      // Short runs and an early continue-as-new, so both happen within the test. Runs end once
      // streaming starts, when storage goes and when it is back: the continue-as-new after the
      // third comes with storage up (while it is down, a continue-as-new first waits ~15 s for the
      // audit record's retries, with no run streaming).
      args: [{ database: DB, requestedBy: 'test', runFor: '20s', continueAsNewAfter: 3 }],
    });
    // `archiver start` on a running archiver keeps it: exit 0, said so.
    const again = await runCli(['archiver', 'start', '--database', DB, '-f', planFile], stack.env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already runs: wal-archiver-orders/);

    load.start({ switchEveryMs: 750 });
    let segments: string[] = [];
    for (let i = 0; segments.length < 6; i++) {
      assert.ok(i < 60, `only ${segments.length} segment(s) stored after 30 s`);
      await sleep(500);
      segments = await storedSegments();
    }
    assertContiguous(segments);

    // The newest stored segment, still in pg_wal (wal_keep_size), through the break-glass path.
    const segment = segments.at(-1)!;
    const walFile = path.join(stack.layout.postgres['us-east-1'].dataDir, 'pg_wal', segment);
    const restored = breakGlass(await store.get(repository.walSegment('', DB, segment)), tmp, stack);
    assert.equal(restored.length, SEG);
    assert.equal(sha256(restored), sha256(fs.readFileSync(walFile)), `${segment} differs from pg_wal`);
    // And PostgreSQL's own reader parses it.
    fs.writeFileSync(path.join(tmp, segment), restored);
    const dump = waldump(path.join(tmp, segment));
    const first = /^rmgr: \w+\s+len .* lsn: ([0-9A-F]+\/[0-9A-F]+)/m.exec(dump);
    assert.ok(first, `pg_waldump reads records in the restored segment: ${dump.slice(0, 300)}`);
    // The segment's timeline is in its name: after a failover the stack is past timeline 1.
    const timeline = parseInt(segment.slice(0, 8), 16);
    assert.equal(segmentOfLsn(timeline, first[1]!, SEG), segment, 'and they are where the name says');

    // The first run returns once WAL streams and storage answers: the status says so in seconds.
    await waitFor(async () => (await status()).phase === 'archiving', 15_000, 'phase archiving');
    const s = await status();
    assert.equal(s.walSegmentSize, SEG);
    const slot = await admin.query<{ active: boolean; restart_lsn: string }>(
      'select active, restart_lsn::text from pg_replication_slots where slot_name = $1',
      [archiverSlotName(DB)],
    );
    assert.equal(slot.rows[0]?.active, false, 'the slot is held, not streamed from');
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /lifeboat_wal_segments_archived\S*\{[^}]*database="orders"[^}]*\} [1-9]/);
    assert.match(metrics, /lifeboat_wal_storage_reachable\S*\{[^}]*\} 1/);
  });

  it('uploads the partial segment within the configured interval (5 s)', async () => {
    await load.stop();
    const marker = `rpo-marker-${Date.now()}`;
    await admin.query('insert into wal_archiver_load (payload) values ($1)', [marker]);
    const committed = Date.now();
    const lsn = (await admin.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn;
    const segment = segmentOfLsn(1, lsn, SEG).slice(8);
    let found: { key: string } | undefined;
    const opened = new Set<string>();
    for (let i = 0; !found; i++) {
      assert.ok(i < 40, `no partial of the segment holding ${lsn} within 20 s`);
      await sleep(250);
      const candidates = (await storedPartials()).filter(
        (p) => p.segment.endsWith(segment) && !opened.has(p.key),
      );
      for (const p of candidates) {
        opened.add(p.key);
        const bytes = breakGlass(await store.get(p.key), tmp, stack);
        if (bytes.includes(Buffer.from(marker))) {
          found = p;
          break;
        }
      }
    }
    const delay = Date.now() - committed;
    // The interval, plus the spool's poll and an upload.
    assert.ok(delay < 5000 + 3000, `the committed row reached storage after ${delay} ms`);
  });

  it('keeps every segment through a 30 s storage outage, reports it, and uploads the backlog', async () => {
    // A segment every ~0.5 s, so that the backlog builds up in seconds.
    load.start({ switchEveryMs: 500 });
    await sleep(2000);
    const before = await storedSegments();
    const outageStart = Date.now();
    const writtenAtStart = await currentSegment(admin);
    await stopS3Server(stack.layout, 1000);
    let s3Up = false;
    try {
      // The alert: phase, search attribute, webhook.
      let s: WalArchiverStatus;
      for (let i = 0; ; i++) {
        s = await status();
        if (s.phase === 'storage-unreachable') break;
        assert.ok(i < 60, `not reported unreachable after 30 s: ${s.phase}`);
        await sleep(500);
      }
      const reportedAfter = Date.now() - outageStart;
      assert.ok(reportedAfter < 15_000, `reported after ${reportedAfter} ms`);
      assert.equal(s.storage.reachable, false);
      const described = await handle.describe();
      assert.deepEqual(described.searchAttributes.LifeboatOutcome, ['storage-unreachable']);
      await waitFor(() => deliveries.some((d) => /storage unreachable/.test(d.text)), 10_000, 'webhook');
      // `archiver status` says so too: exit 1, and (once the run's next heartbeat has counted
      // them) segments waiting in the live spool.
      for (let i = 0; ; i++) {
        const cli = await runCli(
          ['archiver', 'status', '--database', DB, '-f', planFile, '--json'],
          stack.env,
        );
        assert.equal(cli.code, 1, cli.stderr);
        const shown = JSON.parse(cli.stdout) as {
          status: WalArchiverStatus;
          live?: { spoolSegments: number };
        };
        assert.equal(shown.status.phase, 'storage-unreachable');
        if ((shown.live?.spoolSegments ?? 0) > 0) break;
        assert.ok(i < 20, `no segment waits in the spool: ${cli.stdout}`);
        await sleep(500);
      }

      // Storage stays down for 30 s (the outage the issue names), and until ten segments or more
      // have been written since it went.
      await waitFor(
        async () => segmentNumber(await currentSegment(admin)) - segmentNumber(writtenAtStart) >= 10,
        30_000,
        'ten segments written during the outage',
      );
      await sleep(Math.max(0, outageStart + 30_000 - Date.now()));
      await load.stop();
      await startS3Server(stack.layout, stack.secrets, stack.plan);
      s3Up = true;
    } finally {
      if (!s3Up) await startS3Server(stack.layout, stack.secrets, stack.plan);
    }
    const lastWritten = (
      await admin.query<{ walfile: string }>('select pg_walfile_name(pg_switch_wal()) as walfile')
    ).rows[0]!.walfile;

    // Everything written during the outage arrives, without a hole.
    let segments: string[] = [];
    for (let i = 0; !segments.includes(lastWritten); i++) {
      assert.ok(
        i < 120,
        `${lastWritten} not stored 60 s after storage came back; have up to ${segments.at(-1)}`,
      );
      await sleep(500);
      segments = await storedSegments();
    }
    assertContiguous(segments);
    const duringOutage = segments.length - before.length;
    assert.ok(duringOutage >= 10, `only ${duringOutage} segment(s) written during the outage`);
    await waitFor(async () => (await status()).phase === 'archiving', 30_000, 'archiving again');
    const s = await status();
    assert.equal(s.storage.outages, 1);
    assert.deepEqual(s.gaps, []);
    assert.deepEqual(
      s.alerts.map((a) => a.kind).filter((k) => k.startsWith('storage')),
      ['storage-unreachable', 'storage-restored'],
    );
    await waitFor(
      () => deliveries.some((d) => /storage reachable again/.test(d.text)),
      10_000,
      'restored webhook',
    );
    // The continue-as-new after the third run waits for that run's webhooks: it may come just after.
    let now = s;
    await waitFor(
      async () => (now = await status()).generations >= 1,
      10_000,
      () => `continued as new (${now.generations} generation(s), ${now.runs} runs)`,
    );
    process.stderr.write(
      `# ${now.segmentsArchived} segments archived (${(now.rawBytes / 2 ** 20).toFixed(0)} MiB raw, ${(now.storedBytes / 2 ** 20).toFixed(1)} MiB stored), ${duringOutage} across a ${((Date.now() - outageStart) / 1000).toFixed(0)} s outage, ${now.runs} runs in ${now.generations + 1} generation(s)\n`,
    );
  });

  it('goes on without loss or false gap when its worker is SIGKILLed mid-stream', async () => {
    load.start({ switchEveryMs: 1000 });
    await waitFor(() => receiversOn(spool).length === 1, 10_000, 'a receiver streaming');
    await sleep(3000);
    assert.equal(await worker.stop('SIGKILL'), null);
    // setpriv's parent-death signal stops the orphaned pg_receivewal at once.
    await waitFor(() => receiversOn(spool).length === 0, 5000, 'the orphaned receiver gone');
    await sleep(4000);
    worker = await startRegionWorker();
    // The run is retried after its heartbeat timeout (20 s) on the new worker.
    await waitFor(() => receiversOn(spool).length === 1, 40_000, 'a receiver again');
    await load.stop();
    const { lastWritten, segments } = await switchUntilStored(30_000);
    assertContiguous(segments);
    assert.deepEqual(receiversOn(spool).length, 1, 'one receiver, never two');
    // At or past it: autovacuum of the load table goes on writing WAL after the load stops and may
    // complete further segments (seen: four more, nothing in them but vacuum and full-page images).
    let upTo: string | undefined;
    await waitFor(
      async () => (upTo = await archivedUpTo()) !== undefined && upTo >= lastWritten,
      20_000,
      () => `status (or the live heartbeat) caught up with ${lastWritten} (at ${upTo})`,
    );
    assert.deepEqual((await status()).gaps, [], 'no false gap');
  });

  it('lets its worker stop on SIGINT without waiting out the grace time; the next worker goes on', async () => {
    await waitFor(() => receiversOn(spool).length === 1, 10_000, 'a receiver streaming');
    const runsBefore = (await status()).runs;
    assert.equal(await worker.stop('SIGINT'), 0, worker.output());
    assert.match(worker.output(), /stopped cleanly/);
    assert.deepEqual(receiversOn(spool), [], 'no pg_receivewal left behind');
    // The streaming run returned, saying why; it was not cancelled once the 20 s grace ran out.
    const ends = (await handle.fetchHistory()).events!.flatMap((e) => {
      const payload = e.activityTaskCompletedEventAttributes?.result?.payloads?.[0];
      return payload ? [defaultPayloadConverter.fromPayload<{ reason?: string }>(payload).reason] : [];
    });
    assert.equal(ends.at(-1), 'worker-shutdown');
    worker = await startRegionWorker();
    await waitFor(() => receiversOn(spool).length === 1, 20_000, 'a receiver on the new worker');
    await waitFor(async () => (await status()).runs > runsBefore, 10_000, 'the run counted');
    assert.deepEqual((await status()).gaps, [], 'no false gap');
  });

  it('stops cleanly: `archiver stop` ends pg_receivewal and completes the workflow', async () => {
    const run = await runCli(['archiver', 'stop', '--database', DB, '-f', planFile, '--json'], stack.env);
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { stopped: boolean; status: WalArchiverStatus };
    assert.equal(out.stopped, true);
    assert.equal(out.status.phase, 'stopped');
    assert.deepEqual(receiversOn(spool), [], 'no pg_receivewal left on the spool');
    const slot = await admin.query('select 1 from pg_stat_replication where application_name = $1', [
      archiverSlotName(DB),
    ]);
    assert.equal(slot.rowCount, 0, 'no walsender left on the primary');
  });

  it('started again with `archiver start`, goes on from where the archive ends', async () => {
    const archived = await storedSegments();
    await admin.query(
      `insert into wal_archiver_load (payload) select md5(g::text) from generate_series(1, 5000) g`,
    );
    const start = await runCli(['archiver', 'start', '--database', DB, '-f', planFile], stack.env);
    assert.equal(start.code, 0, start.stderr);
    assert.match(start.stdout, /WAL archiver of orders started: wal-archiver-orders/);
    handle = client.workflow.getHandle(workflowIds.walArchiver(DB));
    await waitFor(async () => (await status()).phase === 'archiving', 20_000, 'archiving');
    const { lastWritten, segments } = await switchUntilStored(20_000);
    assert.ok(segments.length > archived.length);
    assertContiguous(segments);
    const s = await status();
    assert.deepEqual(s.gaps, []);
    let upTo: string | undefined;
    await waitFor(
      async () => (upTo = await archivedUpTo()) !== undefined && upTo >= lastWritten,
      20_000,
      () => `the live heartbeat caught up with ${lastWritten} (at ${upTo})`,
    );
    const stop = await runCli(['archiver', 'stop', '--database', DB, '-f', planFile], stack.env);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, /^stopped\. WAL archiver of orders .*: stopped since/);
  });

  it('started on a spool whose WAL is on a timeline the primary never had, stores that WAL and goes on on the primary’s timeline', async () => {
    // A spool that outlived the primary's history (seen after days of failovers): its newest file,
    // the one pg_receivewal resumes from, is on timeline 32, which pg_receivewal asks for over and
    // over without this.
    const dir = path.join(spool, planName, DB);
    const positions = [...fs.readdirSync(dir), ...(await storedSegments())]
      .filter((n) => /^[0-9A-F]{24}(\.partial)?$/.test(n))
      .map((n) => segmentNumber(n.slice(0, 24)));
    const stale = `00000020${nextSegment(`00000001${(await currentSegment(admin)).slice(8)}`, SEG).slice(8)}`;
    assert.ok(segmentNumber(stale) > Math.max(...positions), 'the planted file is the newest');
    const held = Buffer.alloc(SEG);
    held.fill(0xab, 0, 8192);
    const planted = path.join(dir, `${stale}.partial`);
    fs.writeFileSync(planted, held, { mode: 0o600 });

    const start = await runCli(['archiver', 'start', '--database', DB, '-f', planFile], stack.env);
    assert.equal(start.code, 0, start.stderr);
    await waitFor(async () => (await status()).phase === 'archiving', 20_000, 'archiving');
    await waitFor(() => !fs.existsSync(planted), 30_000, 'the planted partial gone from the spool');
    await admin.query(
      `insert into wal_archiver_load (payload) select md5(g::text) from generate_series(1, 5000) g`,
    );
    const { segments } = await switchUntilStored(30_000);
    assertContiguous(segments);
    assert.deepEqual((await status()).gaps, [], 'no gap: the slot held everything since the last segment');
    const kept = (await storedPartials()).find((p) => p.segment === stale);
    assert.ok(kept, `what ${stale}.partial held is stored`);
    assert.equal(sha256(breakGlass(await store.get(kept.key), tmp, stack)), sha256(held), 'byte for byte');
    // Said by the run that left the timeline once it has ended (the first run of a start ends
    // once streaming is steady): kept in the status `archiver status` and the Web UI show.
    const said = async () => (await status()).alerts.filter((a) => a.kind === 'spool-off-history');
    await waitFor(async () => (await said()).length > 0, 30_000, 'the status says the spool was left');
    const [alert, ...more] = await said();
    assert.deepEqual(more, [], 'said once');
    assert.match(
      alert!.text,
      /no timeline of the primary's history.*streaming went on on timeline \d+ from slot/,
    );
    assert.equal(receiversOn(spool).length, 1, 'one receiver streaming');
  });
});

/** The segment the primary writes into now. */
async function currentSegment(c: pg.Client): Promise<string> {
  return (await c.query<{ f: string }>('select pg_walfile_name(pg_current_wal_lsn()) as f')).rows[0]!.f;
}

/** A segment's position in the WAL stream (its name without the timeline), 16 MiB segments. */
function segmentNumber(name: string): number {
  return parseInt(name.slice(8, 16), 16) * (2 ** 32 / SEG) + parseInt(name.slice(16), 16);
}

function assertContiguous(segments: string[]): void {
  for (let i = 1; i < segments.length; i++)
    assert.equal(segments[i], nextSegment(segments[i - 1]!, SEG), `gap after ${segments[i - 1]}`);
}

/** aws s3 cp … | age -d -i key | zstd -d, with the stock binaries. */
function breakGlass(sealed: Uint8Array, dir: string, stack: TestStack): Buffer {
  const key = path.join(dir, 'age.key');
  if (!fs.existsSync(key)) fs.writeFileSync(key, `${stack.secrets.LIFEBOAT_AGE_IDENTITY}\n`, { mode: 0o600 });
  const compressed = execFileSync('age', ['-d', '-i', key], { input: sealed, maxBuffer: 64 * SEG });
  return execFileSync('zstd', ['-d', '-q', '-c'], { input: compressed, maxBuffer: 64 * SEG });
}

function waldump(file: string): string {
  try {
    return execFileSync('/usr/lib/postgresql/15/bin/pg_waldump', [file], {
      encoding: 'utf8',
      maxBuffer: 256 * SEG,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    // At the end of the segment it looks for the next file, which is not here: what it printed
    // before is what counts.
    return (err as { stdout?: string }).stdout ?? '';
  }
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function receiversOn(spool: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        return cmd.includes('pg_receivewal') && cmd.includes(spool);
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function waitFor(
  check: () => boolean | Promise<boolean>,
  ms: number,
  what: string | (() => string),
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < until, `${typeof what === 'string' ? what : what()}: not within ${ms} ms`);
    await sleep(250);
  }
}

/** INSERTs in a loop on its own connection, with a pg_switch_wal() every so often. */
class WriteLoad {
  readonly conn: { host: string; port: number; user: string };
  readonly password: string;
  running: Promise<void> | undefined;
  stopping = false;
  constructor(conn: { host: string; port: number; user: string }, password: string) {
    this.conn = conn;
    this.password = password;
  }
  start(opts: { switchEveryMs: number }): void {
    this.stopping = false;
    this.running = this.loop(opts.switchEveryMs);
  }
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    this.running = undefined;
  }
  async loop(switchEveryMs: number): Promise<void> {
    const c = new pg.Client({ ...this.conn, database: DB, password: this.password });
    await c.connect();
    try {
      let lastSwitch = Date.now();
      while (!this.stopping) {
        await c.query(
          `insert into wal_archiver_load (payload) select md5(random()::text) from generate_series(1, 2000)`,
        );
        if (Date.now() - lastSwitch >= switchEveryMs) {
          await c.query('select pg_switch_wal()');
          lastSwitch = Date.now();
        }
        await sleep(50);
      }
    } finally {
      await c.end();
    }
  }
}
