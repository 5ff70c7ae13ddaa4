// Point-in-time restore activities. listRestoreSources reads storage only and runs anywhere; the
// others run on the task queue of the region restored into: they own a data directory there and
// the PostgreSQL server started on it. Every step is safe to run again after a lost worker:
// the download redoes itself into the same fresh directory (a marker says it is ours), a server
// already running on the directory is adopted rather than started twice, and recovery progress
// is read from the server, which keeps replaying while no worker watches it.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Context, log } from '@temporalio/activity';
import { LifeboatError } from '../domain/errors.ts';
import { lsnDistance } from '../domain/lsn.ts';
import { segmentOfLsn } from '../domain/wal.ts';
import { prefetchUntil } from '../domain/wal-prefetch.ts';
import type { CatalogEntry } from '../domain/manifest.ts';
import { dbnameOf, type Plan, type PostgresConnection } from '../domain/plan.ts';
import {
  quoteSetting,
  recoverySettings,
  RESTORE_ID,
  type AchievedPoint,
  type DownloadProgress,
  type RestoreTarget,
  type WalListing,
} from '../domain/restore.ts';
import { processAlive, ToolError } from './pipeline/child.ts';
import { binaries, installHint } from './pipeline/binaries.ts';
import { extractBaseBackup, type ExtractResult } from './pipeline/extract.ts';
import { requireEnv, type Environment } from './ports/environment.ts';
import type { ObjectStore } from './ports/object-store.ts';
import { connectPostgres, type SqlClient } from './ports/postgres.ts';
import type { StorageLocationName } from './storage.ts';
import { locate, readCatalogEither, readingOrder, readWalListingEither } from './read-either.ts';
import { startWalPrefetcher, writeWalFetchSidecar } from './restore-wal-fetch.ts';
import { curlError } from './storage-error.ts';

const run = promisify(execFile);
const HEARTBEAT_EVERY_MS = 1000;
/**
 * How long the base backup's presigned URL is valid: curl starts at once; once started, a
 * download is not cut off when the URL expires.
 */
const DOWNLOAD_URL_VALID_S = 15 * 60;
/** Written into the data directory before anything else: the directory belongs to this restore. */
export const RESTORE_MARKER = 'lifeboat_restore.json';
const DEFAULT_SEGMENT = 16 * 1024 * 1024;

export interface RestoreDeps {
  plan: Plan;
  env: Environment;
  stores: Partial<Record<StorageLocationName, ObjectStore>>;
}

interface Marker {
  restoreId: string;
  backupId: string;
  state: 'downloading' | 'downloaded';
  storedBytes?: number;
  rawBytes?: number;
}

/** The sidecar folder beside a data directory: wal-fetch config, storage CA, server log. */
export function sidecarOf(dataDir: string): string {
  return path.join(path.dirname(dataDir), `${path.basename(dataDir)}.lifeboat`);
}

export function createRestoreActivities(deps: RestoreDeps) {
  const osUser = deps.env.LIFEBOAT_PG_OS_USER ?? 'postgres';
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  /** A command as the PostgreSQL OS user: the server refuses to run as root. */
  const asUser = (command: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', osUser, '--', command, ...args]] : [command, args];
  const pgBin = (versionNum: number, name: string) => {
    if (deps.env.LIFEBOAT_PG_BINDIR) return path.join(deps.env.LIFEBOAT_PG_BINDIR, name);
    const debian = `/usr/lib/postgresql/${Math.floor(versionNum / 10000)}/bin/${name}`;
    return fs.existsSync(debian) ? debian : name;
  };
  const restoreRoot = () => deps.env.LIFEBOAT_RESTORE_ROOT ?? '/var/lib/lifeboat/restores';
  const readMarker = (dataDir: string): Marker | undefined => {
    try {
      return JSON.parse(fs.readFileSync(path.join(dataDir, RESTORE_MARKER), 'utf8')) as Marker;
    } catch {
      return undefined;
    }
  };
  const chown = async (p: string) => {
    if (asRoot) await run('chown', ['-R', `${osUser}:`, p]);
  };
  /**
   * The sidecar `lifeboat wal-fetch` and restore_command read (written again: idempotent), and the
   * restore's one background prefetcher from `firstSegment` (a no-op while it runs).
   */
  const prepareWalFetch = async (
    dataDir: string,
    database: string,
    walSegmentSize: number,
    firstSegment: string | undefined,
    target: RestoreTarget | undefined,
  ) => {
    const setup = writeWalFetchSidecar({
      plan: deps.plan,
      env: deps.env,
      sidecar: sidecarOf(dataDir),
      database,
      walSegmentSize,
    });
    await chown(setup.sidecar);
    if (firstSegment)
      startWalPrefetcher(
        setup.sidecar,
        firstSegment,
        asUser,
        target ? prefetchUntil(target, parseInt(firstSegment.slice(0, 8), 16), walSegmentSize) : {},
      );
    return setup;
  };
  /** The recovery settings, owned by the PostgreSQL OS user (the rest came from its own tar). */
  const writeRecovery = async (dataDir: string, settings: Record<string, string>) => {
    writeRecoveryConfig(dataDir, settings);
    if (asRoot)
      await run('chown', [
        `${osUser}:`,
        path.join(dataDir, 'postgresql.auto.conf'),
        path.join(dataDir, 'recovery.signal'),
      ]);
  };

  return {
    /** The catalog and the WAL archive's listing of a database, for chain resolution. */
    async listRestoreSources(input: {
      database: string;
    }): Promise<{ backups: CatalogEntry[]; wal: WalListing; versionNums: Record<string, number> }> {
      const sources = readingOrder(deps.stores);
      const { catalog, unreadable } = await readCatalogEither(sources, input.database);
      const newest = catalog.manifests.at(-1);
      const walSegmentSize = newest?.postgres.walSegmentSize ?? DEFAULT_SEGMENT;
      const listing = await readWalListingEither(sources, input.database, walSegmentSize);
      const wal = listing.wal;
      for (const why of new Set([...unreadable, ...listing.unreadable]))
        log.warn(`restore sources of ${input.database}: could not read ${why}; using the other copy`);
      return {
        backups: catalog.entries,
        wal,
        versionNums: Object.fromEntries(catalog.manifests.map((m) => [m.id, m.postgres.versionNum])),
      };
    },

    /**
     * Base backup: storage → age → bsdtar (zstd and tar), streamed into a fresh data directory, never staged.
     * Refuses a directory that is not empty and not this restore's, or that a server runs on. A
     * retry of this restore wipes what an interrupted attempt left and starts over.
     */
    async restoreBaseBackup(input: {
      restoreId: string;
      database: string;
      backupId: string;
      /** Default `<LIFEBOAT_RESTORE_ROOT>/<restore id>/data`. */
      dataDir?: string;
      /** Where replay will stop: the WAL prefetcher fetches no further ahead (absent: as far as it may). */
      target?: RestoreTarget;
    }): Promise<{
      dataDir: string;
      storedBytes: number;
      rawBytes: number;
      downloadMs: number;
      /** The location the base backup was read from (absent when an earlier attempt's download is kept). */
      servedBy?: StorageLocationName;
    }> {
      const ctx = Context.current();
      const dataDir = path.resolve(input.dataDir ?? path.join(restoreRoot(), input.restoreId, 'data'));
      // The folders above must be traversable by the PostgreSQL OS user.
      fs.mkdirSync(path.dirname(dataDir), { recursive: true, mode: 0o755 });
      const sources = readingOrder(deps.stores);
      const { catalog } = await readCatalogEither(sources, input.database);
      const manifest = catalog.manifests.find((m) => m.id === input.backupId);
      if (!manifest) throw new LifeboatError('UnknownReference', `backup ${input.backupId} has no manifest`);
      const base = manifest.objects.find((o) => o.role === 'base')!;

      if (fs.existsSync(dataDir)) {
        const marker = readMarker(dataDir);
        if (livePostmaster(dataDir))
          throw new LifeboatError(
            'InvalidInput',
            `${dataDir} holds a running PostgreSQL server (postmaster.pid); refusing to restore over it`,
          );
        if (marker?.restoreId === input.restoreId && marker.state === 'downloaded')
          return {
            dataDir,
            storedBytes: marker.storedBytes ?? 0,
            rawBytes: marker.rawBytes ?? 0,
            downloadMs: 0,
          };
        const entries = fs.readdirSync(dataDir);
        if (entries.length > 0 && marker?.restoreId !== input.restoreId)
          throw new LifeboatError(
            'InvalidInput',
            `${dataDir} is not empty and not this restore's (${entries.slice(0, 5).join(', ')}${entries.length > 5 ? ', …' : ''}); restore into a fresh directory`,
          );
        // An interrupted attempt of this same restore: redo from nothing.
        for (const e of entries) fs.rmSync(path.join(dataDir, e), { recursive: true, force: true });
      }
      fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      fs.chmodSync(dataDir, 0o700);
      const marker: Marker = { restoreId: input.restoreId, backupId: input.backupId, state: 'downloading' };
      fs.writeFileSync(path.join(dataDir, RESTORE_MARKER), JSON.stringify(marker));
      await chown(dataDir);
      // The WAL replay will need is fetched while the base backup downloads: by the time the
      // server starts, its first segments (and the timeline history files) are on local disk.
      const { walSegmentSize, timeline } = manifest.postgres;
      await prepareWalFetch(
        dataDir,
        input.database,
        walSegmentSize,
        segmentOfLsn(timeline, manifest.start.lsn, walSegmentSize),
        input.target,
      );

      const identity = requireEnv(
        deps.env,
        deps.plan.storage.encryption.identityEnv,
        'the age identity that decrypts backups',
      );
      const progress: DownloadProgress = { storedBytes: 0, totalBytes: base.bytes, rawBytes: 0 };
      const started = Date.now();
      // Either copy serves (3-2-1): the primary, else the secondary; the result says which.
      const source = await locate(sources, base.key);
      if (source.skipped.length)
        log.warn(`${base.key}: read from the ${source.name} location (${source.skipped.join('; ')})`);
      let extracted: ExtractResult;
      const beat = setInterval(() => ctx.heartbeat(progress), HEARTBEAT_EVERY_MS);
      try {
        extracted = await extractBaseBackup({
          source: await source.store.presignGet(base.key, DOWNLOAD_URL_VALID_S),
          identity,
          binaries: binaries(deps.env),
          dataDir,
          runAs: asUser,
          signal: ctx.cancellationSignal,
          onProgress: (fraction) => (progress.storedBytes = Math.round(fraction * base.bytes)),
        });
      } catch (err) {
        if (ctx.cancellationSignal.aborted || err instanceof LifeboatError) throw err;
        if (err instanceof ToolError && err.notFound)
          throw new LifeboatError(
            'InvalidInput',
            `${err.message} on this worker: a restore needs curl, age and bsdtar (${installHint(['curl', 'age', 'bsdtar'])})`,
          );
        if (err instanceof ToolError && err.tool === 'curl') throw curlError(err, `downloading ${base.key}`);
        throw new LifeboatError('Unreachable', `downloading ${base.key}: ${(err as Error).message}`);
      } finally {
        clearInterval(beat);
      }
      progress.storedBytes = extracted.storedBytes;
      // The tar's size as the backup counted it: bsdtar does not report one.
      progress.rawBytes = manifest.sizes.raw;
      if (extracted.storedBytes !== base.bytes)
        throw new LifeboatError(
          'IntegrityError',
          `${base.key}: read ${extracted.storedBytes} bytes, the manifest says ${base.bytes}`,
        );
      // Only now is the directory a whole base backup.
      const done: Marker = {
        ...marker,
        state: 'downloaded',
        storedBytes: progress.storedBytes,
        rawBytes: progress.rawBytes,
      };
      fs.writeFileSync(path.join(dataDir, RESTORE_MARKER), JSON.stringify(done));
      return {
        dataDir,
        storedBytes: progress.storedBytes,
        rawBytes: progress.rawBytes,
        downloadMs: Date.now() - started,
        servedBy: source.name,
      };
    },

    /**
     * Writes the recovery settings and starts the server as the PostgreSQL OS user. A server that
     * already runs on this directory (started by an earlier attempt) is adopted, never doubled.
     */
    async startRestoredServer(input: {
      restoreId: string;
      database: string;
      dataDir: string;
      port?: number;
      target: RestoreTarget;
      action: 'promote' | 'pause';
      inclusive: boolean;
      versionNum: number;
      walSegmentSize: number;
    }): Promise<{ port: number; startMs: number; adopted: boolean }> {
      const { dataDir } = input;
      const marker = readMarker(dataDir);
      if (marker?.restoreId !== input.restoreId || marker.state !== 'downloaded')
        throw new LifeboatError(
          'InvalidInput',
          `${dataDir} does not hold a finished download of ${input.restoreId}`,
        );
      const sidecar = sidecarOf(dataDir);
      const live = livePostmaster(dataDir);
      if (live) return { port: live.port, startMs: 0, adopted: true };

      const started = Date.now();
      const port = input.port ?? (await freePort());
      // The prefetcher started during the download already; started again here (a no-op while it
      // runs) for a restore whose download an earlier attempt finished.
      const label = /^START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)$/m.exec(
        tail(path.join(dataDir, 'backup_label'), 0),
      );
      const { restoreCommand } = await prepareWalFetch(
        dataDir,
        input.database,
        input.walSegmentSize,
        label?.[1],
        input.target,
      );
      await writeRecovery(dataDir, recoverySettings({ ...input, restoreCommand }));
      // pg_ctl -w returns once the server is consistent, which may take long: heartbeat meanwhile
      // so that a lost worker is noticed in seconds (the server it started is adopted on retry).
      const ctx = Context.current();
      const beat = setInterval(() => ctx.heartbeat({ port }), HEARTBEAT_EVERY_MS);
      try {
        await pgCtlStart(dataDir, port, sidecar);
      } finally {
        clearInterval(beat);
      }
      // An orphaned pg_ctl of a lost attempt may have won the race for the directory's lock:
      // whichever server holds postmaster.pid is the one, on its port.
      return { port: livePostmaster(dataDir)?.port ?? port, startMs: Date.now() - started, adopted: false };

      async function pgCtlStart(dir: string, p: number, side: string) {
        const options = [
          `-c port=${p}`,
          `-c listen_addresses='127.0.0.1'`,
          // TCP only: a socket path under a long data directory exceeds the 107-byte limit.
          "-c unix_socket_directories=''",
          `-c cluster_name='${input.restoreId}'`,
          // The restored server must never write into the source's archive or stream from it.
          '-c archive_mode=off',
          "-c primary_conninfo=''",
          '-c hot_standby=on',
        ].join(' ');
        const [cmd, args] = asUserOuter('pg_ctl', [
          'start',
          '-w',
          '-t',
          '3600',
          '-D',
          dir,
          '-l',
          path.join(side, 'postgres.log'),
          '-o',
          options,
        ]);
        try {
          await run(cmd, args, { maxBuffer: 1 << 20 });
        } catch (err) {
          // pg_ctl gives up when the server exits during recovery; the log says why.
          if (livePostmaster(dir)) return;
          const log = tail(path.join(side, 'postgres.log'));
          if (/recovery ended before configured recovery target was reached/.test(log)) return;
          throw new LifeboatError(
            'InvalidInput',
            `the restored server did not start: ${(err as Error).message}\n${log}`,
          );
        }
      }
      function asUserOuter(name: string, args: string[]) {
        return asUser(pgBin(input.versionNum, name), args);
      }
    },

    /**
     * Waits until the server reached the target (promoted, or paused there) and reads the point
     * it reached from the server itself. A time target past the archive's end makes PostgreSQL
     * stop with FATAL; the server is then restarted to replay to the end of the archive (which is
     * everything up to the target), and the result says so.
     */
    async awaitRecovery(input: {
      restoreId: string;
      database: string;
      dataDir: string;
      port: number;
      target: RestoreTarget;
      action: 'promote' | 'pause';
      inclusive: boolean;
      versionNum: number;
    }): Promise<{ achieved: AchievedPoint; replayMs: number }> {
      const ctx = Context.current();
      const started = Date.now();
      const sidecar = sidecarOf(input.dataDir);
      const logFile = path.join(sidecar, 'postgres.log');
      let endOfArchive =
        input.target.kind === 'latest' || fs.existsSync(path.join(sidecar, 'end-of-archive'));
      // One connection for the polls, opened again only after an error: a new one every 25 ms
      // would cost the server a backend start and authentication each time.
      let poller: SqlClient | undefined;
      const dropPoller = () => {
        void poller?.end().catch(() => undefined);
        poller = undefined;
      };
      try {
        for (;;) {
          if (ctx.cancellationSignal.aborted) throw new Error('cancelled');
          const live = livePostmaster(input.dataDir);
          if (!live) {
            const log = tail(logFile);
            if (/recovery ended before configured recovery target was reached/.test(log) && !endOfArchive) {
              // Everything archived is before the target: replay all of it and promote.
              fs.writeFileSync(path.join(sidecar, 'end-of-archive'), '');
              endOfArchive = true;
              const settings = recoverySettings({
                target: { kind: 'latest' },
                action: input.action,
                inclusive: input.inclusive,
                restoreCommand: readRestoreCommand(input.dataDir),
              });
              await writeRecovery(input.dataDir, settings);
              const [cmd, args] = asUser(pgBin(input.versionNum, 'pg_ctl'), [
                'start',
                '-w',
                '-t',
                '3600',
                '-D',
                input.dataDir,
                '-l',
                logFile,
                '-o',
                `-c port=${input.port} -c listen_addresses='127.0.0.1' -c unix_socket_directories='' -c archive_mode=off -c hot_standby=on`,
              ]);
              await run(cmd, args).catch(() => undefined);
              continue;
            }
            throw new LifeboatError('InvalidInput', `the restored server is not running:\n${log}`);
          }
          let state:
            { inRecovery: boolean; paused: boolean; lsn: string | null; ts: Date | null } | undefined;
          try {
            poller ??= await connectPostgres(serverConnection(input.port), 'postgres', deps.env, 10_000);
            const r = await poller.query<{
              rec: boolean;
              paused: string | null;
              lsn: string | null;
              ts: Date | null;
            }>(
              `select pg_is_in_recovery() as rec,
                      case when pg_is_in_recovery() then pg_get_wal_replay_pause_state() end as paused,
                      pg_last_wal_replay_lsn()::text as lsn, pg_last_xact_replay_timestamp() as ts`,
            );
            const row = r.rows[0]!;
            state = { inRecovery: row.rec, paused: row.paused === 'paused', lsn: row.lsn, ts: row.ts };
          } catch {
            state = undefined; // still starting up or not consistent yet
            dropPoller();
          }
          ctx.heartbeat({ lsn: state?.lsn ?? null, lastTransactionTime: state?.ts?.toISOString() ?? null });
          const reached = state && (!state.inRecovery || (input.action === 'pause' && state.paused));
          if (state && reached) {
            const promoted = !state.inRecovery;
            // On the connection the poll just used: it answered, so it is open.
            const c = poller!;
            if (promoted) await c.query('checkpoint');
            const r = await c.query<{ lsn: string | null; ts: Date | null; tli: number }>(
              `select pg_last_wal_replay_lsn()::text as lsn, pg_last_xact_replay_timestamp() as ts,
                      (select timeline_id from pg_control_checkpoint()) as tli`,
            );
            const row = r.rows[0]!;
            const achieved = {
              lsn: row.lsn ?? '0/0',
              lastTransactionTime: row.ts ? row.ts.toISOString() : null,
              timeline: row.tli,
              state: promoted ? ('promoted' as const) : ('paused' as const),
              reachedEndOfArchive: endOfArchive,
            };
            return { achieved, replayMs: Date.now() - started };
          }
          // A local server and a cheap query on an open connection: polling often keeps the
          // reported RTO close to the truth, and the restore's end close to the server's.
          await new Promise((r) => setTimeout(r, 25));
        }
      } finally {
        dropPoller();
      }
    },

    /**
     * The plan's validation queries, that every database accepts connections, and (if promoted)
     * that the server accepts writes. Results are data; the workflow fails on any failure.
     */
    async validateRestored(input: {
      database: string;
      port: number;
      promoted: boolean;
    }): Promise<{ name: string; ok: boolean; detail: string }[]> {
      const results: { name: string; ok: boolean; detail: string }[] = [];
      const dbname = dbnameOf(deps.plan, input.database);
      const databases = await withServer(input.port, 'postgres', async (c) =>
        (
          await c.query<{ datname: string }>(
            'select datname from pg_database where datallowconn and not datistemplate order by 1',
          )
        ).rows.map((r) => r.datname),
      );
      // All at once: each is a backend start and an authentication, waited on one after the other
      // before.
      results.push(
        ...(await Promise.all(
          databases.map((db) =>
            withServer(input.port, db, (c) => c.query('select 1')).then(
              () => ({ name: `connect:${db}`, ok: true, detail: 'connects' }),
              (err: Error) => ({ name: `connect:${db}`, ok: false, detail: err.message }),
            ),
          ),
        )),
      );
      for (const q of deps.plan.databases[input.database]?.validationQueries ?? []) {
        try {
          const r = await withServer(input.port, dbname, (c) => c.query({ text: q.sql, rowMode: 'array' }));
          const first = (r.rows[0] as unknown[] | undefined)?.[0];
          const got = String(first);
          const ok = q.expect === undefined || got === q.expect || (q.expect === 't' && got === 'true');
          results.push({
            name: q.name,
            ok,
            detail: ok ? `returned ${got}` : `returned ${got}, expected ${q.expect}`,
          });
        } catch (err) {
          results.push({ name: q.name, ok: false, detail: (err as Error).message });
        }
      }
      if (input.promoted)
        try {
          await withServer(input.port, dbname, async (c) => {
            await c.query('begin');
            await c.query('create temporary table lifeboat_restore_probe (x int)');
            await c.query('insert into lifeboat_restore_probe values (1)');
            await c.query('rollback');
          });
          results.push({ name: 'accepts-writes', ok: true, detail: 'a write transaction succeeded' });
        } catch (err) {
          results.push({ name: 'accepts-writes', ok: false, detail: (err as Error).message });
        }
      return results;
    },

    /**
     * Removes a restored instance when the operator is done with it: stops its server, deletes
     * its data directory and sidecar (the prefetcher stops with them). Only a directory whose
     * marker names this restore is touched; one already gone is not an error.
     */
    async discardRestoredInstance(input: {
      restoreId: string;
      /** Default `<LIFEBOAT_RESTORE_ROOT>/<restore id>/data`, as the restore chose it. */
      dataDir?: string;
    }): Promise<{ done: boolean; detail: string }> {
      // The id names a folder under the restore root: a path in disguise is refused here too.
      if (!RESTORE_ID.test(input.restoreId))
        throw new LifeboatError('InvalidInput', `"${input.restoreId}" is not a restore id`);
      const defaultDir = path.resolve(restoreRoot(), input.restoreId, 'data');
      const dataDir = path.resolve(input.dataDir ?? defaultDir);
      // In the default layout the restore's folder (`<root>/<id>/`) is its own and goes too.
      const byDefault = dataDir === defaultDir;
      if (!fs.existsSync(dataDir)) return { done: true, detail: `nothing at ${dataDir}: already discarded` };
      const marker = readMarker(dataDir);
      if (marker?.restoreId !== input.restoreId)
        throw new LifeboatError(
          'InvalidInput',
          `${dataDir} is not the data directory of restore ${input.restoreId} (its marker ${marker ? `names ${marker.restoreId}` : 'is missing'}); nothing was touched`,
        );
      const did: string[] = [];
      const stopped = await stopPostmaster(dataDir);
      if (stopped) did.push(stopped);
      if (livePostmaster(dataDir))
        return { done: false, detail: `the server on ${dataDir} did not stop; nothing was deleted` };
      // The marker goes last: a discard interrupted half-way is recognised as ours next time.
      for (const entry of fs.readdirSync(dataDir))
        if (entry !== RESTORE_MARKER) fs.rmSync(path.join(dataDir, entry), { recursive: true, force: true });
      fs.rmSync(sidecarOf(dataDir), { recursive: true, force: true });
      fs.rmSync(dataDir, { recursive: true, force: true });
      // The restore's own folder under the restore root: it held only these two.
      if (byDefault) fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
      did.push(`deleted ${byDefault ? path.dirname(dataDir) : `${dataDir} and ${sidecarOf(dataDir)}`}`);
      return { done: true, detail: did.join('; ') };
    },

    /** Stops the restored server if it runs (as `stopPostmaster`); used when a restore fails or is cancelled. */
    async stopRestoredServer(input: { dataDir: string }): Promise<{ stopped: boolean }> {
      return { stopped: (await stopPostmaster(input.dataDir)) !== undefined };
    },
  };

  /** The restored server over 127.0.0.1, as the plan's user of the source region. */
  function serverConnection(port: number): PostgresConnection {
    return { ...restoredConnection(deps.plan), host: '127.0.0.1', port, sslMode: 'disable' };
  }

  /** A client to the restored server for `fn`, closed afterwards. */
  async function withServer<T>(
    port: number,
    dbname: string,
    fn: (c: Awaited<ReturnType<typeof connectPostgres>>) => Promise<T>,
  ): Promise<T> {
    const c = await connectPostgres(serverConnection(port), dbname, deps.env, 10_000);
    try {
      return await fn(c);
    } finally {
      await c.end().catch(() => undefined);
    }
  }
}

export type RestoreActivities = ReturnType<typeof createRestoreActivities>;

/** The roles of a restored server are the source's: connect as the plan's user of any region. */
export function restoredConnection(plan: Plan): PostgresConnection {
  return Object.values(plan.regions)[0]!.postgres;
}

/** The postmaster running on a data directory, from postmaster.pid, if its process lives. */
export function livePostmaster(dataDir: string): { pid: number; port: number } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  return processAlive(pid) ? { pid, port } : undefined;
}

/**
 * Stops the server running on a data directory, if any: fast shutdown, then immediate, then
 * kill. Says what it did, or undefined when no server ran.
 */
export async function stopPostmaster(dataDir: string): Promise<string | undefined> {
  const pm = livePostmaster(dataDir);
  if (!pm) return undefined;
  for (const [signal, waitMs] of [
    ['SIGINT', 30_000],
    ['SIGQUIT', 10_000],
    ['SIGKILL', 5_000],
  ] as const) {
    try {
      process.kill(pm.pid, signal);
    } catch {
      break; // already gone
    }
    if (await gone(pm.pid, waitMs)) return `stopped the server on port ${pm.port} (pid ${pm.pid}, ${signal})`;
  }
  return livePostmaster(dataDir) ? undefined : `stopped the server on port ${pm.port} (pid ${pm.pid})`;
}

async function gone(pid: number, withinMs: number): Promise<boolean> {
  for (let waited = 0; waited < withinMs; waited += 200) {
    if (!processAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

function writeRecoveryConfig(dataDir: string, settings: Record<string, string>): void {
  // postgresql.auto.conf is read last: later lines win. Our block replaces an earlier one of ours.
  const file = path.join(dataDir, 'postgresql.auto.conf');
  const before = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const kept = before.split('\n# lifeboat restore\n')[0]!.replace(/\n*$/, '\n');
  const block = Object.entries(settings)
    .map(([k, v]) => `${k} = ${quoteSetting(v)}`)
    .join('\n');
  fs.writeFileSync(file, `${kept}\n# lifeboat restore\n${block}\n`);
  fs.writeFileSync(path.join(dataDir, 'recovery.signal'), '');
  fs.rmSync(path.join(dataDir, 'standby.signal'), { force: true });
}

function readRestoreCommand(dataDir: string): string {
  const text = fs.readFileSync(path.join(dataDir, 'postgresql.auto.conf'), 'utf8');
  const m = /^restore_command = '(.*)'$/m.exec(text);
  return m ? m[1]!.replace(/''/g, "'") : '';
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

/** How far `lsn` is behind `end`, in words. */
export function behindBy(end: string, lsn: string): string {
  const d = lsnDistance(end, lsn);
  return d === 0 ? 'at the end of the archive' : `${d} bytes before the end of the archive`;
}

/** The last `lines` lines of a text file (0: all of it), or '' when it cannot be read. */
function tail(file: string, lines = 15): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
