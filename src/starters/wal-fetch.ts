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
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { createAgeDecryptor, identitiesFromText } from '../activities/pipeline/age.ts';
import { createObjectStore, type ObjectStore } from '../activities/ports/object-store.ts';
import { readEitherStore } from '../activities/read-either.ts';
import { parseLsn } from '../domain/lsn.ts';
import type { StorageLocation } from '../domain/plan.ts';
import { repository } from '../domain/repository.ts';
import { parseCommandArgs } from './args.ts';
import { printError } from './output.ts';
import { nextSegment } from '../domain/wal.ts';

export const summary = 'restore_command of a restored server: wal-fetch --config <f> --env-file <f> %f %p';

const zstdDecompress = promisify(zlib.zstdDecompress);
const ABSENT = 1;
const FATAL = 200;
/** Segments fetched ahead of replay, in the background. */
const PREFETCH = 4;

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
    { config: { type: 'string' }, 'env-file': { type: 'string' }, prefetch: { type: 'boolean' } },
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
  if (args.prefetch) {
    // A background fetch: its lock goes whatever happens, and it does not retry for long.
    process.on('exit', () => fs.rmSync(`${dest}.lock`, { force: true }));
  }
  // Prefetched segments wait beside the config; a hit is a rename, not a download.
  const prefetchDir = path.join(path.dirname(args.config as string), 'prefetch');
  const isSegment = /^[0-9A-F]{24}$/.test(name);
  if (isSegment && !args.prefetch) {
    try {
      fs.renameSync(path.join(prefetchDir, name), dest);
      startPrefetch(name, config, argv, prefetchDir);
      return 0;
    } catch {
      // not prefetched (yet): fetch it now
    }
  }
  const primary = createObjectStore(config.storage, env);
  // PostgreSQL writes restore_command's stderr to the server log: the secondary serving is said there.
  const store = config.secondary
    ? readEitherStore(primary, createObjectStore(config.secondary, env), (location, key) => {
        if (location === 'secondary')
          printError(`wal-fetch ${name}: ${key} served by the secondary location`);
      })
    : primary;
  // Storage that does not answer is retried for a while: giving up means a FATAL stop.
  for (let attempt = 1; ; attempt++) {
    try {
      const data = await fetchWal(store, config, name, identity, !args.prefetch);
      if (!data) return ABSENT;
      const tmp = `${dest}.lifeboat-tmp`;
      fs.writeFileSync(tmp, data);
      fs.renameSync(tmp, dest);
      if (isSegment && !args.prefetch) startPrefetch(name, config, argv, prefetchDir);
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
 * Starts background fetches of the next segments, so that replay does not wait for storage one
 * segment at a time. Each is claimed with an exclusive lock file (never fetched twice) and only
 * completed segments are prefetched: a partial could be superseded by the time replay needs it.
 */
function startPrefetch(name: string, config: FetchConfig, argv: string[], prefetchDir: string): void {
  fs.mkdirSync(prefetchDir, { recursive: true });
  const options = argv.filter((a, i) => i < argv.length - 2 && a !== '--prefetch');
  let next = name;
  for (let i = 0; i < PREFETCH; i++) {
    next = nextSegment(next, config.walSegmentSize);
    const target = path.join(prefetchDir, next);
    let lock: number;
    try {
      if (fs.existsSync(target)) continue;
      lock = fs.openSync(`${target}.lock`, 'wx');
    } catch {
      continue; // another call is fetching it
    }
    fs.closeSync(lock);
    const child = spawn(
      process.execPath,
      [...process.execArgv, process.argv[1]!, 'wal-fetch', ...options, '--prefetch', next, target],
      {
        detached: true,
        stdio: 'ignore',
      },
    );
    child.unref();
  }
}

async function fetchWal(
  store: ObjectStore,
  config: FetchConfig,
  name: string,
  identity: string,
  withPartials = true,
): Promise<Buffer | undefined> {
  const history = /^([0-9A-F]{8})\.history$/.exec(name);
  if (history) {
    const key = repository.timelineHistory('', config.database, parseInt(history[1]!, 16));
    if (!(await store.head(key))) return undefined;
    return decrypt(await store.get(key), identity);
  }
  if (!/^[0-9A-F]{24}$/.test(name)) return undefined; // .partial, .backup: not served
  const key = repository.walSegment('', config.database, name);
  if (await store.head(key)) return zstd(await decrypt(await store.get(key), identity));
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
  const data = await zstd(await decrypt(await store.get(newest.key), identity));
  // PostgreSQL wants a whole segment; past the partial's end it finds no valid record and stops.
  if (data.length >= config.walSegmentSize) return data;
  return Buffer.concat([data, Buffer.alloc(config.walSegmentSize - data.length)]);
}

async function decrypt(sealed: Uint8Array, identity: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of Readable.from([Buffer.from(sealed)]).pipe(
    createAgeDecryptor(identitiesFromText(identity)),
  ))
    chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function zstd(data: Buffer): Promise<Buffer> {
  return Buffer.from(await zstdDecompress(data));
}
