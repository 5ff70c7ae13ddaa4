// PostgreSQL 15 of the local stack: a primary (us-east-1) and a streaming replica (us-west-2) on
// loopback, each a real cluster under the state folder, run by the unprivileged OS user
// `postgres` (the server refuses to run as root). The primary holds the `orders` database and the
// role `lifeboat`, which has exactly the rights backup, restore and failover need (replication,
// backup functions, promotion, pg_rewind's file functions) without being a superuser.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { STACK_SECRET_ENV, STACK_REGIONS, type StackLayout, type StackRegion } from './layout.ts';
import { type PartProcess, isAlive, logFile, portOpen, tailLog } from './processes.ts';

const execFileAsync = promisify(execFile);

type Cluster = StackLayout['postgres'][StackRegion];

export const postgresPart = (layout: StackLayout, region: StackRegion): PartProcess => ({
  name: `postgres-${region}`,
  runDir: layout.runDir,
  logDir: layout.logDir,
});

/** Folder of the cluster's unix socket (trust auth for local admin work by the stack). */
export const socketDir = (layout: StackLayout, region: StackRegion): string =>
  path.join(layout.runDir, `pg-${region}`);

/** `postgres://lifeboat@127.0.0.1:15432/orders`: the connection URL without the password. */
export function connectionUrl(layout: StackLayout, region: StackRegion): string {
  const c = layout.postgres[region];
  return `postgres://${layout.postgres.appUser}@${c.host}:${c.port}/${layout.postgres.database}`;
}

/** The region whose cluster the layout makes the primary (the source of replicas' base backups). */
export function primaryRegion(layout: StackLayout): StackRegion {
  return STACK_REGIONS.find((r) => layout.postgres[r].role === 'primary') ?? STACK_REGIONS[0];
}

const ownPidFile = (layout: StackLayout, region: StackRegion) =>
  path.join(layout.runDir, `postgres-${region}.pid`);
const isCluster = (dir: string) => fs.existsSync(path.join(dir, 'PG_VERSION'));

/** The postmaster serving the region's data directory, if one runs (from its postmaster.pid). */
export function postgresPid(layout: StackLayout, region: StackRegion): number | undefined {
  const pid = lockFilePid(layout.postgres[region].dataDir);
  if (pid === undefined || !isAlive(pid)) return undefined;
  try {
    if (fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') return undefined;
  } catch {
    /* no /proc: trust kill(0) */
  }
  return pid;
}

/** The pid PostgreSQL's lock file (postmaster.pid) names, alive or not. */
function lockFilePid(dataDir: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * After a postmaster was killed (SIGKILL in a chaos test), its pid lingers as a zombie until init
 * reaps it and its children take a moment to notice; PostgreSQL refuses to start meanwhile
 * ("lock file already exists", "pre-existing shared memory block is still in use"). Waits for
 * the old pid to vanish; the lock file itself is left for PostgreSQL to judge.
 */
async function waitForKilledPostmaster(dataDir: string, timeoutMs: number): Promise<void> {
  const pid = lockFilePid(dataDir);
  if (pid === undefined) return;
  const deadline = Date.now() + timeoutMs;
  while (fs.existsSync(`/proc/${pid}`) && !isAlive(pid) && Date.now() < deadline) await sleep(100);
}

const STALE_LOCK = /lock file "postmaster\.pid" already exists|pre-existing shared memory block/;

export function postgresRunning(layout: StackLayout, region: StackRegion): boolean {
  return postgresPid(layout, region) !== undefined;
}

// ---------------------------------------------------------------------------------------------
// Running PostgreSQL programs as the postgres OS user

const asRoot = () => process.getuid?.() === 0;

function pgOwner(layout: StackLayout): { uid: number; gid: number } | undefined {
  if (!asRoot()) return undefined;
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${layout.postgres.osUser}:`));
  if (!line)
    throw new Error(`OS user ${layout.postgres.osUser} does not exist; PostgreSQL refuses to run as root`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Makes a folder (and its parents) the postgres OS user owns, with the given mode. */
function ownedDir(layout: StackLayout, dir: string, mode: number): void {
  fs.mkdirSync(dir, { recursive: true });
  const owner = pgOwner(layout);
  if (owner) fs.chownSync(dir, owner.uid, owner.gid);
  fs.chmodSync(dir, mode);
}

function ownedFile(layout: StackLayout, file: string, content: string | undefined, mode: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (content === undefined) fs.closeSync(fs.openSync(file, 'a'));
  else fs.writeFileSync(file, content);
  const owner = pgOwner(layout);
  if (owner) fs.chownSync(file, owner.uid, owner.gid);
  fs.chmodSync(file, mode);
}

async function runPg(
  layout: StackLayout,
  program: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 300_000,
): Promise<string> {
  const bin = path.join(layout.postgres.binDir, program);
  const [command, argv] = asRoot()
    ? ['runuser', ['-u', layout.postgres.osUser, '--', bin, ...args]]
    : [bin, args];
  try {
    const { stdout } = await execFileAsync(command, argv, {
      env,
      cwd: '/',
      timeout: timeoutMs,
      maxBuffer: 16 << 20,
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    const detail = (e.stderr || e.stdout || e.message).trim();
    throw new Error(`${program} ${args.join(' ')} failed: ${detail}`, { cause: err });
  }
}

/** Fails clearly when the postgres OS user cannot reach a folder (a parent lacks o+x). */
async function assertReachable(layout: StackLayout, dir: string): Promise<void> {
  if (!asRoot()) return;
  try {
    await execFileAsync('runuser', ['-u', layout.postgres.osUser, '--', 'test', '-w', dir, '-a', '-x', dir]);
  } catch {
    const blocked: string[] = [];
    for (let d = path.dirname(dir); ; d = path.dirname(d)) {
      try {
        if ((fs.statSync(d).mode & 0o001) === 0) blocked.push(d);
      } catch {
        /* ignore */
      }
      if (d === path.dirname(d)) break;
    }
    throw new Error(
      `the OS user ${layout.postgres.osUser} cannot reach ${dir}` +
        (blocked.length
          ? `: ${blocked.join(', ')} lack o+x (chmod o+x ${blocked.join(' ')}), or choose a state folder elsewhere (--state)`
          : ''),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Configuration

function clusterConf(layout: StackLayout, region: StackRegion): string {
  const c = layout.postgres[region];
  return `# Written by the Lifeboat local stack at every start; edits here are overwritten.
listen_addresses = '${c.host}'
port = ${c.port}
unix_socket_directories = '${socketDir(layout, region)}'
cluster_name = '${region}'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '256MB'
# A lost replica's slot must not fill the primary's disk.
max_slot_wal_keep_size = '4GB'
hot_standby = on
# pg_rewind needs it to bring a failed primary back as a replica.
wal_log_hints = on
# DR drills read the source's last commit time (pg_last_committed_xact) to measure RPO.
track_commit_timestamp = on
archive_mode = off
shared_buffers = '64MB'
max_connections = 100
fsync = on
password_encryption = 'scram-sha-256'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
`;
}

function hbaConf(layout: StackLayout, c: Cluster): string {
  const net = `${c.host}/32`;
  const app = layout.postgres.appUser;
  return `# Written by the Lifeboat local stack. Local (unix socket) trust is for the stack's own admin work.
local   all             all                     trust
local   replication     all                     trust
host    all             ${app.padEnd(15)} ${net.padEnd(23)} scram-sha-256
host    replication     ${app.padEnd(15)} ${net.padEnd(23)} scram-sha-256
host    all             all             ${net.padEnd(23)} scram-sha-256
`;
}

function writeConfig(layout: StackLayout, region: StackRegion, dataDir: string): void {
  const c = layout.postgres[region];
  ownedFile(layout, path.join(dataDir, 'lifeboat.conf'), clusterConf(layout, region), 0o600);
  ownedFile(layout, path.join(dataDir, 'pg_hba.conf'), hbaConf(layout, c), 0o600);
  const main = path.join(dataDir, 'postgresql.conf');
  const include = "include_if_exists = 'lifeboat.conf'";
  const text = fs.readFileSync(main, 'utf8');
  if (!text.includes(include)) fs.appendFileSync(main, `\n# Lifeboat local stack\n${include}\n`);
}

// ---------------------------------------------------------------------------------------------
// SQL over the unix socket

async function withClient<T>(
  layout: StackLayout,
  region: StackRegion,
  opts: { user?: string; database?: string },
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({
    host: socketDir(layout, region),
    port: layout.postgres[region].port,
    user: opts.user ?? layout.postgres.superuser,
    database: opts.database ?? 'postgres',
    connectionTimeoutMillis: 5000,
    application_name: 'lifeboat-stack',
  });
  // A dead socket rejects the pending query; the 'error' event pg also emits must not crash us.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Whether the running cluster is in recovery (a replica); undefined when it does not answer. */
export async function postgresInRecovery(
  layout: StackLayout,
  region: StackRegion,
): Promise<boolean | undefined> {
  try {
    return await withClient(layout, region, {}, async (c) => {
      const r = await c.query<{ rec: boolean }>('select pg_is_in_recovery() as rec');
      return r.rows[0]?.rec;
    });
  } catch {
    return undefined;
  }
}

/** The replica's WAL receiver status (`streaming`, …), or undefined when there is none. */
export async function walReceiverStatus(
  layout: StackLayout,
  region: StackRegion,
): Promise<string | undefined> {
  return withClient(layout, region, {}, async (c) => {
    const r = await c.query<{ status: string }>('select status from pg_stat_wal_receiver');
    return r.rows[0]?.status;
  });
}

/** Functions that are superuser-only by default and that backup, PITR, failover and pg_rewind call. */
const GRANTED_FUNCTIONS = [
  'pg_promote(boolean, integer)',
  'pg_switch_wal()',
  'pg_create_restore_point(text)',
  'pg_backup_start(text, boolean)',
  'pg_backup_stop(boolean)',
  'pg_walfile_name(pg_lsn)',
  'pg_walfile_name_offset(pg_lsn)',
  'pg_wal_replay_pause()',
  'pg_wal_replay_resume()',
  'pg_reload_conf()',
  'pg_ls_dir(text, boolean, boolean)',
  'pg_stat_file(text, boolean)',
  'pg_read_binary_file(text)',
  'pg_read_binary_file(text, bigint, bigint, boolean)',
];
const GRANTED_ROLES = [
  'pg_monitor',
  'pg_checkpoint',
  'pg_read_all_data',
  'pg_write_all_data',
  'pg_signal_backend',
];
/** Settings the role may ALTER SYSTEM: fencing (read-only) and re-pointing a replica. */
const GRANTED_PARAMETERS = [
  'default_transaction_read_only',
  'primary_conninfo',
  'primary_slot_name',
  'synchronous_standby_names',
];

/**
 * On a writable primary: the role `lifeboat` (LOGIN REPLICATION, the stack's password, the grants
 * above), the `orders` database it owns with its table and a few rows (only when the table is
 * created), and the physical slot of every replica in the layout. Idempotent.
 */
async function setupPrimary(layout: StackLayout, region: StackRegion, password: string): Promise<void> {
  const app = layout.postgres.appUser;
  const database = layout.postgres.database;
  await withClient(layout, region, {}, async (c) => {
    const ident = (s: string) => c.escapeIdentifier(s);
    await c.query(`do $$ begin
        if not exists (select from pg_roles where rolname = ${c.escapeLiteral(app)}) then
          create role ${ident(app)} login replication;
        end if;
      end $$`);
    await c.query(`alter role ${ident(app)} login replication password ${c.escapeLiteral(password)}`);
    await c.query(`grant ${GRANTED_ROLES.join(', ')} to ${ident(app)}`);
    await c.query(`grant alter system on parameter ${GRANTED_PARAMETERS.join(', ')} to ${ident(app)}`);
    const db = await c.query('select 1 from pg_database where datname = $1', [database]);
    if (db.rowCount === 0) await c.query(`create database ${ident(database)} owner ${ident(app)}`);
    for (const r of STACK_REGIONS) {
      const slot = layout.postgres[r].slot;
      if (r === region || !slot) continue;
      await c.query(
        `select pg_create_physical_replication_slot($1, true)
           where not exists (select from pg_replication_slots where slot_name = $1)`,
        [slot],
      );
    }
  });
  // Function privileges live in each database's catalog: template1 (so new databases inherit
  // them), postgres and the app's database.
  for (const db of ['template1', 'postgres', database]) {
    await withClient(layout, region, { database: db }, async (c) => {
      const fns = GRANTED_FUNCTIONS.map((f) => `pg_catalog.${f}`).join(', ');
      await c.query(`grant execute on function ${fns} to ${c.escapeIdentifier(app)}`);
    });
  }
  await withClient(layout, region, { user: app, database }, async (c) => {
    await c.query('begin');
    try {
      const exists = await c.query<{ t: string | null }>("select to_regclass('public.orders')::text as t");
      if (exists.rows[0]?.t == null) {
        await c.query(`create table public.orders (
            id bigserial primary key,
            created_at timestamptz not null default now(),
            amount numeric not null
          )`);
        await c.query('insert into public.orders (amount) values (19.99), (5.00), (120.50), (42.00), (7.25)');
      }
      await c.query('commit');
    } catch (err) {
      await c.query('rollback').catch(() => undefined);
      throw err;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Start and stop

export interface PostgresUpResult {
  region: StackRegion;
  /** `created` (initdb or base backup, then started), `started` (existing cluster) or `reused` (already running). */
  action: 'created' | 'started' | 'reused';
  pid: number;
  /** What the cluster is now: a failover may have swapped the layout's roles. */
  inRecovery: boolean;
}

export interface StartPostgresOptions {
  /** For a replica: wait until its WAL receiver streams (default true). */
  waitStreaming?: boolean;
  timeoutMs?: number;
}

/**
 * Starts the region's existing cluster (config rewritten from the layout) with `pg_ctl -w` and,
 * for a replica, waits until it streams from its primary. Reuses a running one.
 */
export async function startPostgres(
  layout: StackLayout,
  region: StackRegion,
  opts: StartPostgresOptions = {},
): Promise<PostgresUpResult> {
  const c = layout.postgres[region];
  const part = postgresPart(layout, region);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  if (!isCluster(c.dataDir))
    throw new Error(`${part.name}: no cluster in ${c.dataDir}; run lifeboat stack up`);
  let pid = postgresPid(layout, region);
  let action: PostgresUpResult['action'] = 'reused';
  if (pid === undefined) {
    if (await portOpen(c.host, c.port))
      throw new Error(
        `${part.name}: port ${c.port} on ${c.host} is in use by a process the stack did not start; free it`,
      );
    const sockets = socketDir(layout, region);
    if (path.join(sockets, `.s.PGSQL.${c.port}`).length > 107)
      throw new Error(
        `${part.name}: the unix socket path under ${sockets} is too long; use a shorter state folder (--state)`,
      );
    ownedDir(layout, sockets, 0o755);
    ownedFile(layout, logFile(part), undefined, 0o640);
    writeConfig(layout, region, c.dataDir);
    await waitForKilledPostmaster(c.dataDir, 15_000);
    const staleDeadline = Date.now() + 15_000;
    for (;;) {
      const logSize = fs.statSync(logFile(part)).size;
      try {
        await runPg(layout, 'pg_ctl', [
          'start',
          '-w',
          '-t',
          String(Math.ceil(timeoutMs / 1000)),
          '-D',
          c.dataDir,
          '-l',
          logFile(part),
        ]);
        break;
      } catch (err) {
        const fresh = readFrom(logFile(part), logSize);
        if (STALE_LOCK.test(fresh) && Date.now() < staleDeadline) {
          await sleep(500);
          continue;
        }
        throw new Error(`${part.name}: could not start: ${(err as Error).message}\n${tailLog(part)}`, {
          cause: err,
        });
      }
    }
    pid = postgresPid(layout, region);
    if (pid === undefined)
      throw new Error(`${part.name}: pg_ctl reported a start but no postmaster runs\n${tailLog(part)}`);
    action = 'started';
  }
  fs.mkdirSync(layout.runDir, { recursive: true });
  fs.writeFileSync(ownPidFile(layout, region), `${pid}\n`);
  const inRecovery = (await postgresInRecovery(layout, region)) ?? false;
  if (inRecovery && opts.waitStreaming !== false) await waitStreaming(layout, region, timeoutMs);
  return { region, action, pid, inRecovery };
}

function readFrom(file: string, offset: number): string {
  try {
    return fs.readFileSync(file).subarray(offset).toString('utf8');
  } catch {
    return '';
  }
}

async function waitStreaming(layout: StackLayout, region: StackRegion, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string | undefined;
  for (;;) {
    last = await walReceiverStatus(layout, region).catch((e: Error) => `error: ${e.message}`);
    if (last === 'streaming') return;
    if (Date.now() > deadline)
      throw new Error(
        `postgres-${region}: the replica is not streaming after ${timeoutMs / 1000}s (WAL receiver: ${last ?? 'none'})\n` +
          tailLog(postgresPart(layout, region)),
      );
    await sleep(200);
  }
}

/** Stops the region's cluster (`pg_ctl stop -m fast`, then immediate); false when it was not running. */
export async function stopPostgres(layout: StackLayout, region: StackRegion): Promise<boolean> {
  const c = layout.postgres[region];
  fs.rmSync(ownPidFile(layout, region), { force: true });
  const pid = postgresPid(layout, region);
  if (pid === undefined) return false;
  try {
    await runPg(layout, 'pg_ctl', ['stop', '-w', '-t', '60', '-m', 'fast', '-D', c.dataDir]);
  } catch {
    if (postgresPid(layout, region) !== undefined)
      await runPg(layout, 'pg_ctl', ['stop', '-w', '-t', '30', '-m', 'immediate', '-D', c.dataDir]);
  }
  while (isAlive(pid)) await sleep(50);
  return true;
}

/** A partial folder the postgres OS user owns; renamed into place once complete, so a crash leaves no half cluster. */
async function freshPartialDir(layout: StackLayout, dataDir: string): Promise<string> {
  const partial = `${dataDir}.partial`;
  fs.rmSync(partial, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dataDir), { recursive: true, mode: 0o755 });
  ownedDir(layout, partial, 0o700);
  await assertReachable(layout, partial);
  return partial;
}

/**
 * A stopped primary is not started as a writable cluster while another region runs as a primary
 * (after a failover promoted the replica): that would make two primaries.
 */
async function refuseSecondPrimary(layout: StackLayout, region: StackRegion): Promise<void> {
  const dataDir = layout.postgres[region].dataDir;
  if (postgresPid(layout, region) !== undefined || fs.existsSync(path.join(dataDir, 'standby.signal')))
    return;
  for (const other of STACK_REGIONS) {
    if (other === region || postgresPid(layout, other) === undefined) continue;
    if ((await postgresInRecovery(layout, other)) === false)
      throw new Error(
        `postgres-${region}: not started: postgres-${other} runs as a primary (a failover promoted it), so ` +
          `starting ${region} would make two primaries. Bring ${region} back as a replica of ${other} ` +
          `(pg_rewind, standby.signal), or reset the stack's PostgreSQL: lifeboat stack down && ` +
          `rm -rf ${path.dirname(dataDir)} && lifeboat stack up`,
      );
  }
}

/**
 * The primary: initdb when there is no cluster yet, start (or reuse), then the role, database,
 * table and replication slots (on a writable cluster).
 */
export async function ensurePostgresPrimary(
  layout: StackLayout,
  secrets: Record<string, string>,
  region: StackRegion = primaryRegion(layout),
): Promise<PostgresUpResult> {
  const password = secrets[STACK_SECRET_ENV.pgPassword];
  if (!password) throw new Error(`${STACK_SECRET_ENV.pgPassword} is missing from the stack's secrets`);
  const dataDir = layout.postgres[region].dataDir;
  let created = false;
  if (!isCluster(dataDir)) {
    const partial = await freshPartialDir(layout, dataDir);
    await runPg(layout, 'initdb', [
      '-D',
      partial,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '-U',
      layout.postgres.superuser,
      '--data-checksums',
      '--encoding=UTF8',
      '--locale=C',
      '--no-instructions',
    ]);
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.renameSync(partial, dataDir);
    created = true;
  } else {
    await refuseSecondPrimary(layout, region);
  }
  const result = await startPostgres(layout, region);
  if (!result.inRecovery) await setupPrimary(layout, region, password);
  return created ? { ...result, action: 'created' } : result;
}

/**
 * A replica: when there is no cluster yet, a base backup of the primary over its slot
 * (`pg_basebackup -R -S <slot> -X stream` as lifeboat); then start (or reuse) and wait until it
 * streams.
 */
export async function ensurePostgresReplica(
  layout: StackLayout,
  secrets: Record<string, string>,
  region: StackRegion,
  from: StackRegion = primaryRegion(layout),
): Promise<PostgresUpResult> {
  const c = layout.postgres[region];
  const source = layout.postgres[from];
  let created = false;
  if (!isCluster(c.dataDir)) {
    const password = secrets[STACK_SECRET_ENV.pgPassword];
    if (!password) throw new Error(`${STACK_SECRET_ENV.pgPassword} is missing from the stack's secrets`);
    if (!c.slot) throw new Error(`postgres-${region}: the layout gives the replica no slot`);
    const partial = await freshPartialDir(layout, c.dataDir);
    await runPg(
      layout,
      'pg_basebackup',
      [
        '-h',
        source.host,
        '-p',
        String(source.port),
        '-U',
        layout.postgres.appUser,
        '-D',
        partial,
        '-R',
        '-S',
        c.slot,
        '-X',
        'stream',
        '-c',
        'fast',
        '--no-password',
      ],
      // application_name in primary_conninfo: pg_stat_replication on the primary names the region.
      { ...process.env, PGPASSWORD: password, PGAPPNAME: region },
    );
    fs.rmSync(path.join(partial, 'postmaster.pid'), { force: true });
    fs.rmSync(c.dataDir, { recursive: true, force: true });
    fs.renameSync(partial, c.dataDir);
    created = true;
  }
  const result = await startPostgres(layout, region);
  return created ? { ...result, action: 'created' } : result;
}
