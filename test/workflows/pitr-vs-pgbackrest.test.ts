// Against the incumbent: the same database restored to the same time T by Lifeboat and by
// `pgbackrest restore --type=time` from pgBackRest's own repository (S3 on the stack's SeaweedFS
// over TLS with the stack's CA), with its own full backup and the WAL it needs pushed with
// `pgbackrest archive-push` from the primary's pg_wal (the stack runs without archive_mode; a
// physical slot keeps those segments). Every user table's rows, ordered, hash the same in both.
// Needs root (pgBackRest and the servers run as the PostgreSQL OS user) and Debian's pgbackrest.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { livePostmaster } from '../../src/activities/restore.ts';
import { createObjectStore, type ObjectStore } from '../../src/activities/ports/object-store.ts';
import { workflowIds } from '../../src/domain/naming.ts';
import { repository } from '../../src/domain/repository.ts';
import { postgresTime, summarizeRestore, type RestoreResult } from '../../src/domain/restore.ts';
import { socketDir } from '../../src/stack/postgres-clusters.ts';
import type { pointInTimeRestoreWorkflow } from '../../src/workflows/point-in-time-restore.ts';
import {
  DB,
  dropSlot,
  fullBackup,
  releasePrimary,
  resetArchiver,
  startArchiver,
  terminateArchiver,
  writeArchivingPlan,
} from '../support/archiving.ts';
import { freePort } from '../support/backups.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { startWorker, type WorkerProcess } from '../support/workers.ts';

const STANZA = 'orders';
const SLOT = 'pgbackrest_compare';

describe('point-in-time restore against pgBackRest', () => {
  let stack: TestStack;
  let connection: Connection;
  let client: Client;
  let store: ObjectStore;
  let repoStore: ObjectStore;
  let tmp: string;
  let pgbr: string;
  let admin: pg.Client;
  let east: WorkerProcess;
  let west: WorkerProcess;
  let target: string;
  let pgbrData: string;
  /** pgBackRest's backup set, named to its restore: its own choice by time compares T with a stop time in whole seconds. */
  let pgbrSet: string;
  let lifeboat: RestoreResult | undefined;
  const repoPath = `test-pgbackrest-${Date.now()}`;

  const pgbackrest = (...args: string[]) =>
    execFileSync(
      'runuser',
      [
        '-u',
        stack.layout.postgres.osUser,
        '--',
        'pgbackrest',
        `--config=${pgbr}/pgbackrest.conf`,
        `--stanza=${STANZA}`,
        ...args,
      ],
      { encoding: 'utf8' },
    );
  const pgCtl = (...args: string[]) =>
    execFileSync('runuser', [
      '-u',
      stack.layout.postgres.osUser,
      '--',
      path.join(stack.layout.postgres.binDir, 'pg_ctl'),
      ...args,
    ]);
  const connect = async (port: number) => {
    const c = new pg.Client({
      host: '127.0.0.1',
      port,
      user: stack.plan.regions['us-east-1']!.postgres.user,
      password: stack.secrets.LIFEBOAT_PG_PASSWORD,
      database: DB,
    });
    // A server stopped by after() must not surface as an uncaught error of a finished test.
    c.on('error', () => undefined);
    await c.connect();
    return c;
  };

  before(async () => {
    stack = await ensureStack();
    connection = await Connection.connect({ address: stack.layout.temporal.address });
    client = new Client({ connection });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-vs-pgbackrest-'));
    fs.chmodSync(tmp, 0o755);
    const { planFile, plan } = writeArchivingPlan(stack, tmp, {
      name: 'vs-pgbackrest',
      walPartialUpload: '3s',
    });
    store = createObjectStore(plan.storage.primary, stack.env);
    repoStore = createObjectStore(
      { ...plan.storage.primary, url: `s3://${stack.layout.s3.bucket}/${repoPath}` },
      stack.env,
    );
    const workerEnv = {
      ...stack.env,
      LIFEBOAT_SPOOL: path.join(tmp, 'spool'),
      LIFEBOAT_RESTORE_ROOT: path.join(tmp, 'restores'),
    };
    [east, west] = await Promise.all([
      startWorker('us-east-1', stack.layout.secretsFile, planFile, workerEnv),
      startWorker('us-west-2', stack.layout.secretsFile, planFile, workerEnv),
    ]);

    const primary = stack.layout.postgres['us-east-1'];
    admin = await connect(primary.port);
    await resetArchiver(client, admin);
    await dropSlot(admin, SLOT);
    // Keeps every segment from here on in pg_wal, for pgBackRest's archive-push.
    await admin.query('select pg_create_physical_replication_slot($1, true)', [SLOT]);
    await admin.query('drop table if exists public.cmp_accounts, public.cmp_events');
    await admin.query(
      `create table public.cmp_accounts (id int primary key, balance numeric(12,2) not null, note text);
       create table public.cmp_events (id bigserial primary key, account int not null, at timestamptz not null default clock_timestamp(), payload jsonb);
       insert into public.cmp_accounts select g, g * 10, md5(g::text) from generate_series(1, 5000) g;
       insert into public.cmp_events (account, payload) select g % 5000 + 1, jsonb_build_object('seed', g) from generate_series(1, 20000) g;`,
    );

    // Lifeboat: the WAL archiver, then a full backup.
    await startArchiver(client, '30s');
    await fullBackup(client);

    // pgBackRest: its own repository and full backup. The stack does not archive (archive_mode
    // off), so archive-check=n; the WAL is pushed below.
    pgbr = path.join(tmp, 'pgbackrest');
    for (const d of ['', 'lock', 'log', 'spool']) fs.mkdirSync(path.join(pgbr, d), { recursive: true });
    const s3 = new URL(stack.layout.s3.endpoint);
    fs.writeFileSync(
      path.join(pgbr, 'pgbackrest.conf'),
      [
        '[global]',
        'repo1-type=s3',
        // pgBackRest 2.45 checks only DNS names of the certificate; the stack's names localhost.
        'repo1-s3-endpoint=localhost',
        `repo1-s3-port=${s3.port}`,
        `repo1-s3-bucket=${stack.layout.s3.bucket}`,
        `repo1-path=/${repoPath}`,
        `repo1-s3-region=${stack.layout.s3.region}`,
        'repo1-s3-uri-style=path',
        `repo1-s3-key=${stack.secrets.LIFEBOAT_S3_ACCESS_KEY_ID}`,
        `repo1-s3-key-secret=${stack.secrets.LIFEBOAT_S3_SECRET_ACCESS_KEY}`,
        `repo1-storage-ca-file=${path.join(stack.layout.state, 'tls', 'ca.pem')}`,
        'repo1-retention-full=1',
        'compress-type=zst',
        'start-fast=y',
        'archive-check=n',
        `lock-path=${pgbr}/lock`,
        `log-path=${pgbr}/log`,
        `spool-path=${pgbr}/spool`,
        'log-level-console=warn',
        '',
        `[${STANZA}]`,
        `pg1-path=${primary.dataDir}`,
        `pg1-port=${primary.port}`,
        `pg1-socket-path=${socketDir(stack.layout, 'us-east-1')}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    execFileSync('chown', ['-R', `${stack.layout.postgres.osUser}:`, pgbr]);
    pgbackrest('stanza-create');
    pgbackrest('backup', '--type=full');

    // The workload after both backups: updates, inserts, deletes, one transaction each; T is
    // the server's clock just after the 20th commit.
    for (let i = 1; i <= 40; i++) {
      await admin.query('begin');
      await admin.query('update public.cmp_accounts set balance = balance + $1 where id % 40 = $2', [
        i,
        i % 40,
      ]);
      await admin.query(
        `insert into public.cmp_events (account, payload) values ($1, jsonb_build_object('step', $1::int))`,
        [i],
      );
      await admin.query('delete from public.cmp_events where id = $1', [i * 97]);
      await admin.query('commit');
      if (i === 20)
        target = (
          await admin.query<{ t: string }>(
            `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as t`,
          )
        ).rows[0]!.t;
      await sleep(20);
    }
    const end = (await admin.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn'))
      .rows[0]!.lsn;
    await admin.query('select pg_switch_wal()');
    const last = (await admin.query<{ f: string }>('select pg_walfile_name($1) as f', [end])).rows[0]!.f;
    for (let i = 0; !(await store.head(repository.walSegment('', DB, last))); i++) {
      assert.ok(i < 120, `${last} not in Lifeboat's archive within 60 s`);
      await sleep(500);
    }

    // pgBackRest's archive: every history file and every complete segment from its backup's
    // first WAL to the last one written, pushed from pg_wal as archive_command would have.
    const info = JSON.parse(pgbackrest('info', '--output=json')) as {
      backup: { label: string; archive: { start: string } }[];
    }[];
    pgbrSet = info[0]!.backup.at(-1)!.label;
    const first = info[0]!.backup.at(-1)!.archive.start;
    const walDir = path.join(primary.dataDir, 'pg_wal');
    const files = fs.readdirSync(walDir).sort();
    const pushed = [
      ...files.filter((f) => f.endsWith('.history')),
      ...files.filter(
        (f) =>
          /^[0-9A-F]{24}$/.test(f) &&
          f.slice(8) >= first.slice(8) &&
          f.slice(8) <= last.slice(8) &&
          f.slice(0, 8) === last.slice(0, 8),
      ),
    ];
    assert.ok(pushed.includes(last), `${last} is in pg_wal`);
    for (const f of pushed) pgbackrest('archive-push', path.join(walDir, f));
    console.log(`pgBackRest: backup from ${first}, pushed ${pushed.length} WAL files; target ${target}`);
  });

  after(async () => {
    if (lifeboat && livePostmaster(lifeboat.instance.dataDir))
      pgCtl('stop', '-m', 'immediate', '-w', '-D', lifeboat.instance.dataDir);
    if (pgbrData && livePostmaster(pgbrData)) pgCtl('stop', '-m', 'immediate', '-w', '-D', pgbrData);
    if (client) await terminateArchiver(client, 'test over');
    await Promise.all([east?.stop('SIGTERM'), west?.stop('SIGTERM')]);
    await releasePrimary(admin, 'public.cmp_accounts, public.cmp_events', [SLOT]);
    for (const o of repoStore ? await repoStore.list('').catch(() => []) : []) await repoStore.delete(o.key);
    for (const o of store ? await store.list('').catch(() => []) : []) await store.delete(o.key);
    await connection?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it(
    'restores the same time T as pgbackrest restore --type=time: every user table hashes the same',
    { timeout: 180_000 },
    async () => {
      // pgBackRest into a temp directory on its own port, promoted at the target like Lifeboat.
      pgbrData = path.join(tmp, 'pgbackrest-restore');
      fs.mkdirSync(pgbrData, { mode: 0o700 });
      execFileSync('chown', [`${stack.layout.postgres.osUser}:`, pgbrData]);
      pgbackrest(
        'restore',
        `--pg1-path=${pgbrData}`,
        '--type=time',
        `--set=${pgbrSet}`,
        `--target=${postgresTime(target)}`,
        '--target-action=promote',
      );
      const port = await freePort();
      pgCtl(
        'start',
        '-w',
        '-t',
        '120',
        '-D',
        pgbrData,
        '-l',
        path.join(pgbr, 'log', 'restored-postgres.log'),
        '-o',
        `-c port=${port} -c listen_addresses='127.0.0.1' -c unix_socket_directories='' -c archive_mode=off -c primary_conninfo='' -c hot_standby=on`,
      );
      const theirs = await connect(port);
      for (let i = 0; (await theirs.query('select pg_is_in_recovery() as r')).rows[0].r; i++) {
        assert.ok(i < 600, 'pgBackRest restore did not promote within 60 s');
        await sleep(100);
      }

      const handle = await client.workflow.start<typeof pointInTimeRestoreWorkflow>(
        'pointInTimeRestoreWorkflow',
        {
          taskQueue: 'lifeboat',
          workflowId: `${workflowIds.restore(DB, new Date())}-vs-pgbackrest`,
          args: [{ database: DB, region: 'us-west-2', target, requestedBy: 'test' }],
        },
      );
      lifeboat = await handle.result();
      console.log(summarizeRestore(lifeboat));
      const ours = await connect(lifeboat.instance.port);
      try {
        const [a, b] = [await tableChecksums(ours), await tableChecksums(theirs)];
        console.log(`${Object.keys(a).length} user tables compared: ${JSON.stringify(a)}`);
        assert.deepEqual(a, b);
        // The comparison means something: T is inside the workload, so both hold 20 of its 40 steps.
        const steps = await ours.query<{ n: string }>(
          "select count(*) as n from public.cmp_events where payload ? 'step'",
        );
        assert.equal(steps.rows[0]!.n, '20');
        assert.ok(a['public.cmp_accounts'] && a['public.cmp_events']);
      } finally {
        await ours.end();
        await theirs.end();
      }
    },
  );
});

/** `schema.table` → row count and the md5 of its rows as text, ordered, for every user table. */
async function tableChecksums(c: pg.Client): Promise<Record<string, string>> {
  const tables = await c.query<{ t: string }>(
    `select format('%I.%I', n.nspname, c.relname) as t from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'
      order by 1`,
  );
  const out: Record<string, string> = {};
  for (const { t } of tables.rows) {
    const r = await c.query<{ n: string; h: string }>(
      `select count(*) as n, md5(coalesce(string_agg(x::text, E'\\n' order by x::text), '')) as h from ${t} x`,
    );
    out[t] = `${r.rows[0]!.n} rows ${r.rows[0]!.h}`;
  }
  return out;
}
