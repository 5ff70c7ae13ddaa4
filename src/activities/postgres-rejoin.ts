// Re-attaching a demoted primary as a streaming replica of the new one, after a planned
// switchover: stop it cleanly, `pg_rewind` it onto the new primary's timeline (`-R` writes
// standby.signal and primary_conninfo), lift the fence, point it at its slot on the new primary,
// start it and wait until it streams. Runs on the old primary's own region (its data directory and
// binaries are there), as the PostgreSQL OS user: the server and pg_rewind refuse to run as root.
// Resumable: a retry finds the data directory in its heartbeat, and an attached server is done.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { activityInfo, heartbeat, sleep } from '@temporalio/activity';
import { LifeboatError } from '../domain/errors.ts';
import { dbnameOf, type Plan } from '../domain/plan.ts';
import type { Environment } from './ports/environment.ts';
import { connectPostgres } from './ports/postgres.ts';

const execFileAsync = promisify(execFile);

export interface ReattachResult {
  region: string;
  primaryRegion: string;
  slot: string;
  /** False when a retry found the server already streaming from the new primary. */
  rewound: boolean;
  detail: string;
}

/** The physical slot a region's replica streams from: `replica_us_west_2` for us-west-2. */
export const slotFor = (region: string): string =>
  `replica_${region.replace(/[^a-z0-9]/gi, '_').toLowerCase()}`;

export function createPostgresRejoinActivities(deps: { plan: Plan; env: Environment }) {
  const osUser = deps.env.LIFEBOAT_PG_OS_USER ?? 'postgres';
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const run = async (bin: string, args: string[], env: Record<string, string> = {}): Promise<string> => {
    const [cmd, argv] = asRoot ? ['runuser', ['-u', osUser, '--', bin, ...args]] : [bin, args];
    try {
      const { stdout, stderr } = await execFileAsync(cmd, argv, {
        env: { ...process.env, ...env },
        cwd: '/',
        timeout: 300_000,
        maxBuffer: 16 << 20,
      });
      return `${stdout}${stderr}`;
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(`${path.basename(bin)} ${args[0] ?? ''}: ${(e.stderr || e.message).trim()}`, {
        cause: err,
      });
    }
  };
  const region = (name: string) => {
    const r = deps.plan.regions[name];
    if (!r) throw new LifeboatError('UnknownReference', `region "${name}" is not in the plan`);
    return r;
  };

  return {
    /** Makes the demoted primary of `region` a streaming replica of `primaryRegion` (pg_rewind). */
    async reattachAsReplica(input: {
      database: string;
      region: string;
      primaryRegion: string;
    }): Promise<ReattachResult> {
      const dbname = dbnameOf(deps.plan, input.database);
      const old = region(input.region).postgres;
      const primary = region(input.primaryRegion).postgres;
      const slot = slotFor(input.region);
      const password = primary.passwordEnv ? deps.env[primary.passwordEnv] : undefined;
      if (primary.passwordEnv && !password)
        throw new LifeboatError('MissingSecret', `${primary.passwordEnv} is not set on this worker`);
      let known = activityInfo().heartbeatDetails as { dataDir: string; versionNum: number } | undefined;

      const streamingFromPrimary = async (): Promise<boolean> => {
        const c = await connectPostgres(old, dbname, deps.env, 3000).catch(() => undefined);
        if (!c) return false;
        try {
          const r = await c.query<{ rec: boolean; status: string | null; dir: string; v: string }>(
            `select pg_is_in_recovery() as rec, (select status from pg_stat_wal_receiver) as status,
                    current_setting('data_directory') as dir, current_setting('server_version_num') as v`,
          );
          const row = r.rows[0]!;
          known ??= { dataDir: row.dir, versionNum: Number(row.v) };
          heartbeat(known);
          return row.rec && row.status === 'streaming';
        } finally {
          await c.end().catch(() => undefined);
        }
      };
      if (await streamingFromPrimary())
        return { ...input, slot, rewound: false, detail: `${input.region} already streams (slot ${slot})` };
      if (!known)
        throw new LifeboatError(
          'InvalidInput',
          `${input.region} is unreachable and its data directory unknown; rebuild it as a replica by hand`,
        );
      const { dataDir, versionNum } = known;
      const bin = (name: string) => {
        const dir =
          deps.env.LIFEBOAT_PG_BINDIR ?? `/usr/lib/postgresql/${Math.floor(versionNum / 10000)}/bin`;
        return path.join(dir, name);
      };

      // The slot first, so the WAL the rewound server needs is kept from the moment it exists.
      const pc = await connectPostgres(primary, dbname, deps.env, 5000);
      try {
        // pg_rewind reads the source's timeline from its control file, which a just-promoted
        // server updates only at its next checkpoint: without one it may see no divergence.
        await pc.query('checkpoint');
        await pc.query(
          `select pg_create_physical_replication_slot($1, true)
             where not exists (select from pg_replication_slots where slot_name = $1)`,
          [slot],
        );
      } finally {
        await pc.end().catch(() => undefined);
      }

      // pg_rewind needs a cleanly shut down target.
      if (fs.existsSync(path.join(dataDir, 'postmaster.pid')))
        await run(bin('pg_ctl'), ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60']).catch(
          (err: Error) => {
            if (!/PID file .* does not exist|Is server running/.test(err.message)) throw err;
          },
        );
      heartbeat(known);
      const source = [
        `host=${primary.host}`,
        `port=${primary.port}`,
        `user=${primary.user}`,
        `dbname=${dbname}`,
        `application_name=${input.region}`,
      ].join(' ');
      // pg_rewind copies the source's configuration files too (port, sockets, hba): they belong
      // to this host, so they are kept aside and put back; the recovery settings are written here.
      const confs = fs
        .readdirSync(dataDir)
        .filter((f) => f.endsWith('.conf'))
        .map((f) => [f, fs.readFileSync(path.join(dataDir, f))] as const);
      const rewind = await run(
        bin('pg_rewind'),
        ['--target-pgdata', dataDir, '--source-server', source],
        password ? { PGPASSWORD: password } : {},
      );
      heartbeat(known);
      for (const [f, content] of confs) fs.writeFileSync(path.join(dataDir, f), content);
      // A standby keeps no slots of its own (they would hold WAL forever); the fence is lifted so
      // that a later promotion of this server (the switchback) makes a writable primary.
      const slots = path.join(dataDir, 'pg_replslot');
      for (const e of fs.existsSync(slots) ? fs.readdirSync(slots) : [])
        fs.rmSync(path.join(slots, e), { recursive: true, force: true });
      // libpq quotes a value with backslash escapes; the configuration file doubles quotes.
      const libpq = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
      const quote = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
      const conninfo = `${source}${password ? ` password=${libpq(password)}` : ''}`;
      const auto = path.join(dataDir, 'postgresql.auto.conf');
      const lines = fs
        .readFileSync(auto, 'utf8')
        .split('\n')
        .filter(
          (l) =>
            l.trim() && !/^\s*(default_transaction_read_only|primary_slot_name|primary_conninfo)\s*=/.test(l),
        );
      lines.push(`primary_conninfo = ${quote(conninfo)}`, `primary_slot_name = '${slot}'`, '');
      fs.writeFileSync(auto, lines.join('\n'));
      const signal = path.join(dataDir, 'standby.signal');
      fs.writeFileSync(signal, '');
      if (asRoot) await execFileAsync('chown', [`${osUser}:`, signal]);
      const logFile = path.join(dataDir, 'log-lifeboat-rejoin.log');
      await run(bin('pg_ctl'), ['start', '-D', dataDir, '-w', '-t', '120', '-l', logFile]);
      for (let i = 0; ; i++) {
        if (await streamingFromPrimary()) break;
        if (i > 120)
          throw new Error(
            `${input.region} started as a replica but does not stream from ${input.primaryRegion}`,
          );
        await sleep(500);
      }
      const note = /no rewind required/i.test(rewind) ? 'no rewind required' : 'rewound';
      return {
        ...input,
        slot,
        rewound: true,
        detail: `${input.region} ${note}, streaming from ${input.primaryRegion} on slot ${slot}`,
      };
    },
  };
}
