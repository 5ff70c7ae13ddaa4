// `lifeboat wal-fetch --config <file> --env-file <file> %f %p`: the restore_command of a server
// restored by Lifeboat. Fetches one WAL file from the repository (a completed segment, else the
// newest partial upload of that segment, zero-padded to a whole segment, or a timeline history
// file), decrypts and decompresses it, and writes it to %p.
// Exit codes follow PostgreSQL's rules, not the CLI's: 1 when the file is not in the archive (the
// server then ends recovery), and 200 when storage cannot be read, so that the server stops with
// FATAL instead of ending recovery early and promoting at the wrong point.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createAgeDecryptor, identitiesFromText } from '../activities/pipeline/age.ts';
import { zstdDecompressBufferSync } from '../activities/pipeline/zstd-buffer.ts';
import { createObjectStore, type ObjectStore } from '../activities/ports/object-store.ts';
import { readEitherStore } from '../activities/read-either.ts';
import { prefetcherRunning } from '../activities/restore-wal-fetch.ts';
import { parseLsn } from '../domain/lsn.ts';
import type { StorageLocation } from '../domain/plan.ts';
import { repository } from '../domain/repository.ts';
import { parseCommandArgs } from './args.ts';
import { printError } from './output.ts';
import { nextSegment } from '../domain/wal.ts';
import { PREFETCH, type PrefetchUntil } from '../domain/wal-prefetch.ts';
import { endsTransactionAtOrAfter } from '../domain/wal-records.ts';

const ABSENT = 1;
const FATAL = 200;
/** Completed segments the background prefetcher has ready before the server starts (16 MiB each). */
const PREFETCH_AHEAD = 16;
/**
 * … and keeps ready ahead of replay once it runs. Fewer: replay takes the first ones in tens of
 * milliseconds each, and every segment fetched past the target is CPU taken from replay itself.
 */
const PREFETCH_AHEAD_REPLAYING = 6;
/** Segments it downloads at once. */
const PREFETCH_PARALLEL = 3;
/** A prefetcher whose segments nobody takes for this long has outlived its server: it exits. */
const PREFETCH_IDLE_MS = 120_000;
/** … and before the server started: the base backup may still be downloading. */
const PREFETCH_IDLE_BEFORE_SERVER_MS = 30 * 60_000;

interface FetchConfig {
  database: string;
  storage: StorageLocation;
  /** storage.secondary: read when the primary lacks a file or cannot be read (3-2-1). */
  secondary?: StorageLocation;
  identityEnv: string;
  walSegmentSize: number;
}

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs(
    'wal-fetch',
    argv,
    {
      config: { type: 'string' },
      'env-file': { type: 'string' },
      prefetch: { type: 'boolean' },
      'prefetch-after': { type: 'boolean' },
      'prefetch-from': { type: 'boolean' },
      'until-segment': { type: 'string' },
      'until-time': { type: 'string' },
    },
    true,
  );
  if (!args || args._.length !== 2 || !args.config) {
    printError('wal-fetch: expected --config <file> [--env-file <file>] <wal file name> <destination>');
    return FATAL;
  }
  const [name, dest] = args._ as [string, string];
  let config: FetchConfig;
  const env: Record<string, string | undefined> = { ...process.env };
  try {
    config = JSON.parse(fs.readFileSync(args.config as string, 'utf8')) as FetchConfig;
    if (args['env-file'])
      for (const line of fs.readFileSync(args['env-file'] as string, 'utf8').split('\n')) {
        const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
        if (m) env[m[1]!] = m[2]!;
      }
  } catch (err) {
    printError(`wal-fetch: ${(err as Error).message}`);
    return FATAL;
  }
  const identity = env[config.identityEnv];
  if (!identity) {
    printError(`wal-fetch: ${config.identityEnv} is not set`);
    return FATAL;
  }
  // Prefetched segments wait beside the config; a hit is a rename, not a download (the
  // restore_command's shell part makes that rename itself, without starting Node).
  const prefetchDir = path.join(path.dirname(args.config as string), 'prefetch');
  const primary = createObjectStore(config.storage, env);
  // PostgreSQL writes restore_command's stderr to the server log: the secondary serving is said
  // there. The prefetcher, detached, has no such stderr: it appends the same line to that log.
  const prefetching = !!(args['prefetch-after'] || args['prefetch-from']);
  const serverLog = path.join(path.dirname(args.config as string), 'postgres.log');
  const say = (line: string) => {
    if (!prefetching) return printError(line);
    try {
      fs.appendFileSync(serverLog, `${new Date().toISOString()} ${line}\n`);
    } catch {
      // No sidecar folder any more: nobody to tell.
    }
  };
  const store = config.secondary
    ? readEitherStore(primary, createObjectStore(config.secondary, env), (location, key) => {
        if (location === 'secondary')
          say(`wal-fetch ${prefetching ? 'prefetcher' : name}: ${key} served by the secondary location`);
      })
    : primary;
  if (prefetching)
    return prefetchAfter(name, dest, store, config, identity, {
      inclusive: !!args['prefetch-from'],
      until: {
        ...(args['until-segment'] ? { segment: args['until-segment'] as string } : {}),
        ...(args['until-time'] ? { time: new Date(args['until-time'] as string) } : {}),
      },
    });
  const isSegment = /^[0-9A-F]{24}$/.test(name);
  if (isSegment && !args.prefetch) {
    try {
      fs.renameSync(path.join(prefetchDir, name), dest);
      startPrefetcher(name, argv, prefetchDir);
      return 0;
    } catch {
      // Not prefetched (yet): fetch it now, the prefetcher booting meanwhile.
      startPrefetcher(name, argv, prefetchDir);
    }
  }
  // Storage that does not answer is retried for a while: giving up means a FATAL stop.
  for (let attempt = 1; ; attempt++) {
    try {
      const got = await fetchWal(store, config, name, identity, !args.prefetch);
      if (!got) return ABSENT;
      const tmp = `${dest}.lifeboat-tmp`;
      fs.writeFileSync(tmp, got.data);
      fs.renameSync(tmp, dest);
      // Replay asks for the archive's last segment again as it ends (to start the new timeline
      // from it): the same bytes are kept for that, instead of starting Node once more. The
      // prefetcher removes them with the rest when the server is promoted or stops.
      if (got.partial && isSegment) {
        try {
          writeAtomically(path.join(prefetchDir, `${name}${PREFETCH.served}`), got.data);
        } catch {
          // No prefetch folder (a server restored by hand): the next ask fetches it again.
        }
      }
      return 0;
    } catch (err) {
      if (attempt >= (args.prefetch ? 1 : 6)) {
        printError(`wal-fetch ${name}: ${(err as Error).message}`);
        return FATAL;
      }
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
}

/**
 * Makes sure one background prefetcher runs for this server, and tells it which segment replay
 * asked for last (it skips ahead to after it and drops what replay no longer needs). One Node
 * process for the whole replay, not one per segment: on a busy machine the start of Node, not
 * the download, was the cost of each segment.
 */
function startPrefetcher(name: string, argv: string[], prefetchDir: string): void {
  fs.mkdirSync(prefetchDir, { recursive: true });
  writeAtomically(path.join(prefetchDir, PREFETCH.wanted), name);
  if (prefetcherRunning(prefetchDir)) return;
  fs.rmSync(path.join(prefetchDir, PREFETCH.stopped), { force: true });
  const options = argv.filter((a, i) => i < argv.length - 2 && a !== '--prefetch');
  spawn(
    process.execPath,
    [...process.execArgv, process.argv[1]!, 'wal-fetch', ...options, '--prefetch-after', name, prefetchDir],
    { detached: true, stdio: 'ignore' },
  ).unref();
}

/**
 * The prefetcher: keeps up to PREFETCH_AHEAD completed segments after the one replay wants in
 * the prefetch folder, PREFETCH_PARALLEL downloads at a time, each written under a temporary
 * name and renamed (a segment is there whole or not at all). It stops at the first segment the
 * archive does not hold as completed (the archive's end, or a timeline switch: replay's next
 * miss starts a new one), and when nobody takes its segments for PREFETCH_IDLE_MS. Told where
 * replay stops (the segment of a target LSN, or the first segment with a commit or abort at or
 * after a target time), it fetches up to there and goes further only once replay has taken that
 * segment: segments past the target are work done for nothing while the base backup downloads on
 * the same cores (on the benchmark's time target, 6 of the 18 segments it fetched). A bound too
 * early costs replay a wait for the next segment, never a wrong answer.
 */
async function prefetchAfter(
  first: string,
  dir: string,
  store: ObjectStore,
  config: FetchConfig,
  identity: string,
  options: {
    /** Whether `first` itself is fetched (a start before replay asks for anything). */
    inclusive?: boolean;
    until?: PrefetchUntil;
  } = {},
): Promise<number> {
  const { inclusive = false, until = {} } = options;
  fs.mkdirSync(dir, { recursive: true });
  // One prefetcher per server: the lock holds its pid; one left by a dead process is taken over.
  const lock = path.join(dir, PREFETCH.lock);
  const claim = () => {
    const fd = fs.openSync(lock, 'wx');
    fs.writeSync(fd, String(process.pid));
    fs.closeSync(fd);
  };
  try {
    claim();
  } catch {
    if (prefetcherRunning(dir)) return 0;
    fs.rmSync(lock, { force: true });
    try {
      claim();
    } catch {
      return 0; // another one took it over first
    }
  }
  process.on('exit', () => {
    try {
      if (fs.readFileSync(lock, 'utf8') !== String(process.pid)) return;
      fs.writeFileSync(path.join(dir, PREFETCH.stopped), String(process.pid));
      fs.rmSync(lock);
    } catch {
      // The folder went with its restore.
    }
  });
  const ready = () => fs.readdirSync(dir).filter((f) => /^[0-9A-F]{24}$/.test(f));
  let next = inclusive ? first : nextSegment(first, config.walSegmentSize);
  const announce = (segment: string) => writeAtomically(path.join(dir, PREFETCH.next), segment);
  announce(next);
  await fetchHistories(dir, store, config, identity).catch((err: Error) =>
    // Without the marker restore-command.sh asks `lifeboat wal-fetch` for each history file.
    printError(`wal-fetch prefetcher: timeline history files not listed: ${err.message}`),
  );
  let idleSince = Date.now();
  let readyBefore = 0;
  let serverSeenBefore = false;
  let endAt: string | undefined;
  /** The last segment fetched ahead of replay until replay takes it; never set again after. */
  let stopAt = until.segment;
  let unbounded = false;
  // The server's data directory (the prefetch folder is in `<data dir>.lifeboat/`): once it is
  // promoted (recovery.signal gone) or stopped, no segment will be asked for again, and a
  // prefetcher left behind would outlive a drill's teardown. Started while the base backup is
  // still downloading, it waits for the server (no recovery.signal yet) and stops with the
  // directory if the restore is given up.
  const dataDir = path.dirname(dir).replace(/\.lifeboat$/, '');
  let serverSeen = false;
  const replayOver = () => {
    if (!fs.existsSync(dataDir)) return true;
    if (fs.existsSync(path.join(dataDir, 'postmaster.pid'))) serverSeen = true;
    if (!serverSeen) return false;
    return (
      !fs.existsSync(path.join(dataDir, 'recovery.signal')) ||
      !fs.existsSync(path.join(dataDir, 'postmaster.pid'))
    );
  };
  for (;;) {
    if (replayOver()) {
      for (const f of fs.readdirSync(dir))
        if (f === PREFETCH.end || SEGMENT_FILE_SUFFIXES.includes(segmentFileSuffix(f) as never))
          fs.rmSync(path.join(dir, f), { force: true });
      return 0;
    }
    // Replay may have fetched past us itself: skip to after what it wants, drop the stale.
    const wanted = fs.existsSync(path.join(dir, PREFETCH.wanted))
      ? fs.readFileSync(path.join(dir, PREFETCH.wanted), 'utf8')
      : undefined;
    if (wanted && /^[0-9A-F]{24}$/.test(wanted)) {
      if (wanted.slice(0, 8) === next.slice(0, 8) && wanted >= next)
        next = nextSegment(wanted, config.walSegmentSize);
      for (const f of ready()) if (f <= wanted) fs.rmSync(path.join(dir, f), { force: true });
    }
    // Past the archive's end (replay fetched the partial itself): look further again.
    if (endAt && next > endAt) {
      endAt = undefined;
      fs.rmSync(path.join(dir, PREFETCH.end), { force: true });
    }
    if (await serveRequests(dir, store, config, identity)) idleSince = Date.now();
    // Idle means nobody takes segments: replay taking one, or the server's start, is activity
    // (a prefetcher that had filled its window during a long download is not idle at the start).
    const readyNow = ready().length;
    if (readyNow !== readyBefore || serverSeen !== serverSeenBefore) idleSince = Date.now();
    readyBefore = readyNow;
    serverSeenBefore = serverSeen;
    // Replay took the segment of its stop (or skipped past it) and wants more: no bound any more.
    if (stopAt && next > stopAt && !fs.existsSync(path.join(dir, stopAt))) {
      stopAt = undefined;
      unbounded = true;
    }
    const held = endAt !== undefined || (stopAt !== undefined && next > stopAt);
    const room = held ? 0 : (serverSeen ? PREFETCH_AHEAD_REPLAYING : PREFETCH_AHEAD) - readyNow;
    if (room <= 0) {
      if (Date.now() - idleSince > (serverSeen ? PREFETCH_IDLE_MS : PREFETCH_IDLE_BEFORE_SERVER_MS)) {
        for (const f of ready()) fs.rmSync(path.join(dir, f), { force: true });
        return 0;
      }
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    idleSince = Date.now();
    announce(next);
    const batch: string[] = [];
    for (
      let seg = next;
      batch.length < Math.min(room, PREFETCH_PARALLEL) && !(stopAt && seg > stopAt);
      seg = nextSegment(seg, config.walSegmentSize)
    )
      batch.push(seg);
    const got = await Promise.all(
      batch.map(async (seg) => {
        const got = await fetchWal(store, config, seg, identity, false).catch(() => undefined);
        if (!got) return false;
        writeAtomically(path.join(dir, seg), got.data);
        // The first segment with a commit or abort at or after a target time holds the stop.
        if (
          until.time &&
          !unbounded &&
          (!stopAt || seg < stopAt) &&
          endsTransactionAtOrAfter(got.data, until.time)
        )
          stopAt = seg;
        return true;
      }),
    );
    const fetched = got.indexOf(false) === -1 ? got.length : got.indexOf(false);
    if (fetched < got.length) {
      // Keep only the contiguous run: a later segment without its predecessor is of no use yet.
      for (const seg of batch.slice(fetched)) fs.rmSync(path.join(dir, seg), { force: true });
      endAt = batch[fetched]!;
      next = endAt;
      writeAtomically(path.join(dir, PREFETCH.end), endAt);
      announce(next);
      continue;
    }
    next = nextSegment(batch.at(-1)!, config.walSegmentSize);
  }
}

/**
 * What restore-command.sh asked for (`<segment>.want`: the archive's end, or a segment replay reads
 * again): the segment, else its newest partial upload at the time of asking, as `lifeboat
 * wal-fetch` would serve it, written as `<segment>.served` (or `.absent`; `.error` leaves it to
 * wal-fetch, which retries storage). This Node process is already running; starting another
 * costs more than the download. True when there was a request.
 */
async function serveRequests(
  dir: string,
  store: ObjectStore,
  config: FetchConfig,
  identity: string,
): Promise<boolean> {
  const requests = fs.readdirSync(dir).filter((f) => segmentFileSuffix(f) === PREFETCH.want);
  for (const request of requests) {
    const segment = request.slice(0, 24);
    fs.rmSync(path.join(dir, request), { force: true });
    const got = await fetchWal(store, config, segment, identity, true).catch(() => 'error' as const);
    if (got === 'error') writeAtomically(path.join(dir, `${segment}${PREFETCH.error}`), '');
    else if (!got) writeAtomically(path.join(dir, `${segment}${PREFETCH.absent}`), '');
    else writeAtomically(path.join(dir, `${segment}${PREFETCH.served}`), got.data);
  }
  return requests.length > 0;
}

/**
 * Every timeline history file of the archive into the prefetch folder, then the marker that says
 * the list is whole: replay asks for the next timeline's history file at start and again when
 * it promotes, and each answer used to start Node.
 */
async function fetchHistories(
  dir: string,
  store: ObjectStore,
  config: FetchConfig,
  identity: string,
): Promise<void> {
  const folder = path.posix.dirname(repository.timelineHistory('', config.database, 1)) + '/';
  for (const object of await store.list(folder)) {
    const name = /\/([0-9A-F]{8}\.history)\.age$/.exec(object.key)?.[1];
    if (name) writeAtomically(path.join(dir, name), await decrypt(await store.get(object.key), identity));
  }
  writeAtomically(path.join(dir, PREFETCH.histories), new Date().toISOString());
}

/** Of a file named after a segment in the prefetch folder: what follows the name ('' for the segment itself). */
function segmentFileSuffix(file: string): string | undefined {
  return /^[0-9A-F]{24}/.test(file) ? file.slice(24) : undefined;
}
/** The segment files a prefetcher leaves behind: the segments, requests and answers. */
const SEGMENT_FILE_SUFFIXES = ['', PREFETCH.want, PREFETCH.served, PREFETCH.absent, PREFETCH.error];

function writeAtomically(file: string, data: string | Buffer): void {
  fs.writeFileSync(`${file}.lifeboat-tmp`, data);
  fs.renameSync(`${file}.lifeboat-tmp`, file);
}

async function fetchWal(
  store: ObjectStore,
  config: FetchConfig,
  name: string,
  identity: string,
  withPartials = true,
): Promise<{ data: Buffer; partial: boolean } | undefined> {
  const history = /^([0-9A-F]{8})\.history$/.exec(name);
  if (history) {
    const key = repository.timelineHistory('', config.database, parseInt(history[1]!, 16));
    const sealed = await store.getIfPresent(key);
    return sealed && { data: await decrypt(sealed, identity), partial: false };
  }
  if (!/^[0-9A-F]{24}$/.test(name)) return undefined; // .partial, .backup: not served
  const key = repository.walSegment('', config.database, name);
  const sealed = await store.getIfPresent(key);
  if (sealed) return { data: zstdDecompressBufferSync(await decrypt(sealed, identity)), partial: false };
  if (!withPartials) return undefined;
  // The newest partial upload of this segment: the archive's very end.
  const folder = path.posix.dirname(key) + '/';
  const partials = (await store.list(folder))
    .map((o) => ({
      key: o.key,
      m: /\/([0-9A-F]{24})\.partial\.([0-9A-F]+)-([0-9A-F]+)\.zst\.age$/.exec(o.key),
    }))
    .filter((p) => p.m?.[1] === name)
    .sort((a, b) => (parseLsn(`${a.m![2]}/${a.m![3]}`) < parseLsn(`${b.m![2]}/${b.m![3]}`) ? 1 : -1));
  const newest = partials[0];
  if (!newest) return undefined;
  const data = zstdDecompressBufferSync(await decrypt(await store.get(newest.key), identity));
  // PostgreSQL wants a whole segment; past the partial's end it finds no valid record and stops.
  if (data.length >= config.walSegmentSize) return { data, partial: true };
  return { data: Buffer.concat([data, Buffer.alloc(config.walSegmentSize - data.length)]), partial: true };
}

async function decrypt(sealed: Uint8Array, identity: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of Readable.from([Buffer.from(sealed)]).pipe(
    createAgeDecryptor(identitiesFromText(identity)),
  ))
    chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
