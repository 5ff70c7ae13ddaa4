// Re-attaching a demoted primary as a streaming replica of the new one, after a planned
// switchover: stop it cleanly, `pg_rewind` it onto the new primary's timeline, lift the fence,
// point it at its slot on the new primary, start it and wait until it streams. When pg_rewind
// fails (or is interrupted, which leaves a directory that cannot start), the directory is set
// aside — kept, never deleted — and rebuilt with pg_basebackup from the new primary: the
// switchover replayed the old primary to its final LSN first, so the new one holds all it had.
// Runs on the old primary's own region (its data directory and binaries are there), as the
// PostgreSQL OS user: the server, pg_rewind and pg_basebackup refuse to run as root.
// Resumable: a retry finds the data directory (and a rebuild under way) in its heartbeat, and an
// attached server is done.
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
  /** Where the old directory was set aside when pg_rewind failed and it was rebuilt instead. */
  setAside?: string;
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
      // `aside`: the old directory, once set aside for a rebuild; what is at dataDir is then ours.
      let known = activityInfo().heartbeatDetails as
        { dataDir: string; versionNum: number; aside?: string } | undefined;
      // pg_rewind and pg_basebackup may run for minutes: keep the heartbeat going meanwhile.
      const beating = async <T>(work: Promise<T>): Promise<T> => {
        const timer = setInterval(() => heartbeat(known), 5000);
        try {
          return await work;
        } finally {
          clearInterval(timer);
        }
      };

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

      // pg_rewind needs a cleanly shut down target (and a rebuild, a stopped one).
      const stopServer = async () => {
        if (fs.existsSync(path.join(dataDir, 'postmaster.pid')))
          await run(bin('pg_ctl'), ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60']).catch(
            (err: Error) => {
              if (!/PID file .* does not exist|Is server running/.test(err.message)) throw err;
            },
          );
      };
      await stopServer();
      heartbeat(known);
      const source = [
        `host=${primary.host}`,
        `port=${primary.port}`,
        `user=${primary.user}`,
        `dbname=${dbname}`,
        `application_name=${input.region}`,
      ].join(' ');
      const secretEnv: Record<string, string> = password ? { PGPASSWORD: password } : {};
      // The old primary's data directory, copied from the new primary by pg_basebackup through the
      // slot (so no WAL it needs is recycled meanwhile), into an empty directory of the OS user.
      const rebuild = async () => {
        fs.rmSync(dataDir, { recursive: true, force: true });
        fs.mkdirSync(dataDir, { mode: 0o700 });
        if (asRoot) await execFileAsync('chown', [`${osUser}:`, dataDir]);
        await beating(
          run(
            bin('pg_basebackup'),
            ['-D', dataDir, '-d', source, '-X', 'stream', '-S', slot, '-c', 'fast', '--no-password'],
            secretEnv,
          ),
        );
      };
      // pg_rewind copies the source's configuration files too (port, sockets, hba), as does
      // pg_basebackup: they belong to this host, so they are read first and put back; the recovery
      // settings are written here. A rebuild reads them from the directory set aside.
      const confsOf = (dir: string) =>
        fs
          .readdirSync(dir)
          .filter((f) => f.endsWith('.conf'))
          .map((f) => [f, fs.readFileSync(path.join(dir, f))] as const);
      let how: string;
      let confs: (readonly [string, Buffer])[];
      if (known.aside) {
        // A retry of a rebuild: what is at dataDir is our own partial copy, not the old primary's.
        confs = confsOf(known.aside);
        await rebuild();
        how = `rebuilt with pg_basebackup (the old directory kept at ${known.aside})`;
      } else {
        confs = confsOf(dataDir);
        try {
          const rewind = await beating(
            run(bin('pg_rewind'), ['--target-pgdata', dataDir, '--source-server', source], secretEnv),
          );
          how = /no rewind required/i.test(rewind) ? 'no rewind required' : 'rewound';
        } catch (err) {
          const aside = `${dataDir}.before-rejoin-${new Date().toISOString().replace(/[-:.]/g, '')}`;
          fs.renameSync(dataDir, aside);
          known = { ...known, aside };
          heartbeat(known);
          await rebuild();
          how = `pg_rewind failed (${lastLine((err as Error).message)}); rebuilt with pg_basebackup, the old directory kept at ${aside}`;
        }
      }
      heartbeat(known);
      for (const [f, content] of confs) fs.writeFileSync(path.join(dataDir, f), content);
      if (asRoot) await execFileAsync('chown', [`${osUser}:`, ...confs.map(([f]) => path.join(dataDir, f))]);
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
      return {
        ...input,
        slot,
        rewound: true,
        ...(known.aside ? { setAside: known.aside } : {}),
        detail: `${input.region} ${how}, streaming from ${input.primaryRegion} on slot ${slot}`,
      };
    },
  };
}

/** The last non-empty line of a tool's output: where pg_rewind says why it stopped. */
function lastLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .at(-1) ?? text
  );
}
