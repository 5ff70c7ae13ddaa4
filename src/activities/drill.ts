// DR drill activities. The source snapshot runs on the source primary's region; the scratch
// instance's directory, its table digests and its teardown run on the DR region's worker, which
// owns that directory; the report is written to the repository from anywhere. The restore itself
// is the point-in-time restore workflow's (a child of the drill), never duplicated here.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { drillReportSchema, type DrillReport } from '../domain/drill-report.ts';
import { renderDrillReportHtml } from '../domain/drill-html.ts';
import type { Scratch, SourceSnapshot, TableDigest } from '../domain/drill.ts';
import { LifeboatError } from '../domain/errors.ts';
import { dbnameOf, type Plan } from '../domain/plan.ts';
import { repository } from '../domain/repository.ts';
import { resolveRestoreChain } from '../domain/restore.ts';
import { temporalTarget, webUiLink } from '../workers/temporal-connection.ts';
import type { Environment } from './ports/environment.ts';
import type { ObjectStore } from './ports/object-store.ts';
import { connectPostgres, type SqlClient } from './ports/postgres.ts';
import { copyObject } from './replicate.ts';
import { createRestoreActivities, livePostmaster, restoredConnection, stopPostmaster } from './restore.ts';
import { describeAwsError, type StorageLocationName } from './storage.ts';

/** A checksum reads whole tables: far longer than the port's default 5 s query timeout. */
const DIGEST_TIMEOUT_MS = 10 * 60_000;

export interface DrillDeps {
  plan: Plan;
  env: Environment;
  stores: Partial<Record<StorageLocationName, ObjectStore>>;
}

export function createDrillActivities(deps: DrillDeps) {
  const restore = createRestoreActivities(deps);
  const restoreRoot = () => path.resolve(deps.env.LIFEBOAT_RESTORE_ROOT ?? '/var/lib/lifeboat/restores');
  const drillsRoot = () => path.join(restoreRoot(), 'drills');
  const store = (): ObjectStore => {
    const s = deps.stores.primary;
    if (!s) throw new LifeboatError('InvalidInput', 'the plan has no primary storage location');
    return s;
  };

  return {
    /** The Web UI page of the drill as this worker knows Temporal's address (null when unknown). */
    drillWebUiUrl(input: { workflowId: string }): Promise<string | null> {
      const link = webUiLink(temporalTarget(deps.env), input.workflowId, deps.env);
      return Promise.resolve(link.startsWith('http') ? link : null);
    },

    /**
     * The source primary at drill start, in one REPEATABLE READ snapshot: the WAL insert position
     * and the digests of the tables to compare see the same committed data. A commit's WAL record
     * is written a moment (its flush) before it becomes visible, so a snapshot alone can miss a
     * commit that lies before the position read with it; a second session therefore holds a SHARE
     * lock on the compared tables while the snapshot and position are taken (writers to them wait
     * that instant, nothing else does): no write to them is in flight, and a restore that stops
     * just before the position holds exactly the rows the digests saw.
     */
    async captureDrillSource(input: {
      database: string;
      region: string;
      tables: string[];
      allTables: boolean;
    }): Promise<SourceSnapshot> {
      const region = deps.plan.regions[input.region];
      if (!region) throw new LifeboatError('UnknownReference', `region "${input.region}" is not in the plan`);
      const connect = () =>
        connectPostgres(
          region.postgres,
          dbnameOf(deps.plan, input.database),
          deps.env,
          DIGEST_TIMEOUT_MS,
        ).catch((err: Error) => {
          throw new LifeboatError('Unreachable', `the source primary in ${input.region}: ${err.message}`);
        });
      const locker = await connect();
      let c: SqlClient | undefined;
      try {
        c = await connect();
        const rec = await c.query<{ rec: boolean }>('select pg_is_in_recovery() as rec');
        if (rec.rows[0]!.rec)
          throw new LifeboatError(
            'InvalidInput',
            `${input.database}'s server in ${input.region} is a replica, not the primary: drill against the region that holds the primary`,
          );
        // The plan's names first, as written; then every other user table (one table named two
        // ways, `orders` and `public.orders`, is compared once).
        const tables: string[] = [];
        const existing: string[] = [];
        const seen = new Set<number>();
        for (const t of [...input.tables, ...(input.allTables ? await userTables(locker) : [])]) {
          const r = await locker.query<{ oid: number | null; name: string | null }>(
            'select to_regclass($1)::oid as oid, to_regclass($1)::text as name',
            [t],
          );
          const { oid, name } = r.rows[0] ?? {};
          if (oid && seen.has(oid)) continue;
          tables.push(t);
          if (oid && name) {
            seen.add(oid);
            existing.push(name);
          }
        }
        await locker.query('begin');
        if (existing.length) {
          await locker.query(`set local lock_timeout = '30s'`);
          try {
            await locker.query(`lock table ${existing.join(', ')} in share mode`);
          } catch (err) {
            throw new LifeboatError(
              'Unreachable',
              `could not lock ${existing.join(', ')} against writes for the snapshot within 30 s (a long transaction writes to them?): ${(err as Error).message}`,
            );
          }
        }
        await c.query('begin isolation level repeatable read read only');
        // The snapshot is taken as this first statement starts: the position is read after it.
        const head = await c.query<{ lsn: string; tct: string; at: Date }>(
          `select pg_current_wal_insert_lsn()::text as lsn,
                  current_setting('track_commit_timestamp') as tct, clock_timestamp() as at`,
        );
        const h = head.rows[0]!;
        const track = h.tct === 'on';
        let lastCommitTime: string | null = null;
        if (track) {
          const r = await c.query<{ ts: Date | null }>('select (pg_last_committed_xact()).timestamp as ts');
          lastCommitTime = r.rows[0]?.ts ? r.rows[0].ts.toISOString() : null;
        }
        await locker.query('commit');
        const digests = await digestTables(c, tables);
        await c.query('commit');
        return {
          lsn: h.lsn,
          lastCommitTime,
          trackCommitTimestamp: track,
          at: h.at.toISOString(),
          region: input.region,
          tables: digests,
        };
      } finally {
        await locker.end().catch(() => undefined);
        await c?.end().catch(() => undefined);
      }
    },

    /**
     * How far the archive reaches after the backup a restore to `lsn` would use: whether a restore
     * to the source's drill-start position can be resolved yet.
     */
    async drillArchiveReach(input: {
      database: string;
      lsn: string;
    }): Promise<{ reaches: boolean; archiveEndLsn: string | null; problem?: string }> {
      const sources = await restore.listRestoreSources({ database: input.database });
      const resolved = resolveRestoreChain({
        target: { kind: 'lsn', lsn: input.lsn },
        backups: sources.backups,
        wal: sources.wal,
        now: new Date().toISOString(),
      });
      if (resolved.ok) return { reaches: true, archiveEndLsn: resolved.chain.archiveEndLsn };
      return { reaches: false, archiveEndLsn: resolved.window.to?.lsn ?? null, problem: resolved.problem };
    },

    /**
     * A fresh scratch directory and a free port on this (the DR region's) worker, under
     * <LIFEBOAT_RESTORE_ROOT>/drills/<drill id>: never the live replica's directory or port.
     */
    async prepareDrillScratch(input: {
      drillId: string;
      database: string;
      region: string;
    }): Promise<Scratch> {
      // A scheduled run's id ends in its RFC 3339 time (`…-2026-11-22T04:00:00Z`): keep the
      // directory name to characters every filesystem takes.
      const folder = input.drillId.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
      const root = path.join(drillsRoot(), folder);
      fs.mkdirSync(root, { recursive: true, mode: 0o755 });
      // The folders above must be traversable by the PostgreSQL OS user.
      for (const dir of [restoreRoot(), drillsRoot(), root]) fs.chmodSync(dir, 0o755);
      const livePort = deps.plan.regions[input.region]?.postgres.port;
      let port = await freePort();
      while (port === livePort) port = await freePort();
      return { root, dataDir: path.join(root, 'data'), port };
    },

    /** Row count and checksum of each table on the restored scratch instance. */
    async digestRestoredTables(input: {
      database: string;
      port: number;
      tables: string[];
    }): Promise<TableDigest[]> {
      const conn = {
        ...restoredConnection(deps.plan),
        host: '127.0.0.1',
        port: input.port,
        sslMode: 'disable' as const,
      };
      const c = await connectPostgres(conn, dbnameOf(deps.plan, input.database), deps.env, DIGEST_TIMEOUT_MS);
      try {
        await c.query('begin isolation level repeatable read read only');
        const digests = await digestTables(c, input.tables);
        await c.query('commit');
        return digests;
      } finally {
        await c.end().catch(() => undefined);
      }
    },

    /**
     * Stops the scratch server (fast shutdown, then immediate, then kill) and deletes its whole
     * folder; then looks again. Safe to run when nothing was created, and to run twice.
     */
    async teardownDrillScratch(input: {
      root: string;
      dataDir: string;
    }): Promise<{ done: boolean; detail: string }> {
      const root = path.resolve(input.root);
      if (!root.startsWith(drillsRoot() + path.sep) || path.dirname(path.resolve(input.dataDir)) !== root)
        throw new LifeboatError(
          'InvalidInput',
          `${root} is not a drill's scratch folder under ${drillsRoot()}`,
        );
      const did: string[] = [];
      const stopped = await stopPostmaster(input.dataDir);
      if (stopped) did.push(stopped);
      const existed = fs.existsSync(root);
      // A step of the restore still finishing after its cancellation may write for a moment more.
      for (let i = 0; i < 5 && fs.existsSync(root); i++) {
        fs.rmSync(root, { recursive: true, force: true });
        await sleep(300);
      }
      if (existed) did.push(`deleted ${root}`);
      const left: string[] = [];
      const still = livePostmaster(input.dataDir);
      if (still) left.push(`a server still runs (pid ${still.pid})`);
      if (fs.existsSync(root)) left.push(`${root} still exists`);
      if (left.length) return { done: false, detail: `${did.join('; ')}; LEFT BEHIND: ${left.join('; ')}` };
      return {
        done: true,
        detail: did.length
          ? `${did.join('; ')}; no server and no directory left`
          : `nothing was created at ${root}; no server and no directory left`,
      };
    },

    /**
     * report.json and report.html under drills/<database>/<drill id>/, each written once (and
     * copied to the secondary location when the plan has one): a retry that finds the same bytes
     * succeeds, different bytes are never overwritten.
     */
    async writeDrillReport(input: { report: DrillReport }): Promise<{ keys: string[] }> {
      const report = drillReportSchema.parse(input.report);
      const files: [string, string][] = [
        ['report.json', `${JSON.stringify(report, null, 2)}\n`],
        ['report.html', renderDrillReportHtml(report)],
      ];
      const keys: string[] = [];
      for (const [file, body] of files) {
        const key = repository.drillReport('', report.database, report.drillId, file);
        try {
          if (await store().head(key)) {
            const existing = Buffer.from(await store().get(key)).toString('utf8');
            if (existing !== body)
              throw new LifeboatError(
                'IntegrityError',
                `a different ${file} already exists at ${key}; not overwritten`,
              );
          } else await store().put(key, body);
          // The second copy (3-2-1): an auditor's evidence must survive the primary location too.
          if (deps.stores.secondary) await copyObject(store(), deps.stores.secondary, key);
        } catch (err) {
          if (err instanceof LifeboatError) throw err;
          throw new LifeboatError('Unreachable', `writing ${key}: ${describeAwsError(err)}`);
        }
        keys.push(key);
      }
      return { keys };
    },
  };
}

export type DrillActivities = ReturnType<typeof createDrillActivities>;

/** Every user table (not partitions, not unlogged: a restore never holds their rows). */
async function userTables(c: SqlClient): Promise<string[]> {
  const r = await c.query<{ t: string }>(
    `select format('%I.%I', n.nspname, c.relname) as t
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p') and not c.relispartition and c.relpersistence = 'p'
        and n.nspname not in ('pg_catalog', 'information_schema')
        and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
      order by 1`,
  );
  return r.rows.map((x) => x.t);
}

/**
 * Row count and md5 over the md5 of every row's text, in primary-key order (row text order
 * without a primary key), computed in SQL so no row leaves the server. string_agg bounds it at
 * about 30 million rows per table (PostgreSQL's 1 GB value limit).
 */
async function digestTables(c: SqlClient, tables: string[]): Promise<TableDigest[]> {
  const out: TableDigest[] = [];
  for (const table of tables) {
    const rel = await c.query<{ oid: number | null; name: string | null }>(
      'select to_regclass($1)::oid as oid, to_regclass($1)::text as name',
      [table],
    );
    const { oid, name } = rel.rows[0]!;
    if (!oid || !name) {
      out.push({ table, rows: null, checksum: null, detail: `no table ${table}` });
      continue;
    }
    const pk = await c.query<{ cols: string | null }>(
      `select string_agg('t.' || quote_ident(a.attname), ', ' order by array_position(i.indkey, a.attnum)) as cols
         from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
        where i.indrelid = $1 and i.indisprimary`,
      [oid],
    );
    const orderBy = pk.rows[0]?.cols ?? 't::text';
    // `name` is regclass output: already quoted where needed.
    const r = await c.query<{ n: string; sum: string }>(
      `select count(*)::text as n, md5(coalesce(string_agg(md5(t::text), '' order by ${orderBy}), '')) as sum from ${name} t`,
    );
    out.push({ table, rows: Number(r.rows[0]!.n), checksum: r.rows[0]!.sum });
  }
  return out;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}
