// A base backup's restore, run in a pipeline thread (in-thread.ts): the stored object downloaded
// (through a store of this thread's own for the plan's location that holds it), through age into
// `zstd -d`, which writes straight into `tar x`. Neither the ciphertext nor the decrypted stream
// (270 MB each for the benchmark's 1.5 GB) enters the main thread's heap, and the restored bytes
// never enter this process at all.
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Plan } from '../../domain/plan.ts';
import type { Environment } from '../ports/environment.ts';
import { planStore, type StorageLocationName } from '../ports/object-store.ts';
import { createAgeDecryptor, identitiesFromText } from './age.ts';
import { allOrKill, startTool } from './child.ts';
import type { ThreadTask } from './in-thread.ts';

export interface ExtractTaskOptions {
  /** The age identity text (secret keys): it stays in this process. */
  identity: string;
  zstd: string;
  /** `tar x` into the data directory, as the PostgreSQL OS user. */
  tar: { command: string; args: string[] };
  /** The object and the plan's storage location that holds it. */
  source: { plan: Plan; env: Environment; location: StorageLocationName; key: string };
}

export interface ExtractTaskResult {
  /** All of tar's stderr (its totals line among it). */
  tarStderr: string;
  /** Bytes downloaded. */
  storedBytes: number;
}

/** Progress: bytes downloaded so far. */
export const run: ThreadTask<ExtractTaskOptions, ExtractTaskResult, number> = async ({
  options,
  signal,
  progressFrom,
}) => {
  const { plan, env, location, key } = options.source;
  const body = await planStore(plan, env, location).getStream(key);
  let storedBytes = 0;
  progressFrom(() => storedBytes);
  const count = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      storedBytes += chunk.length;
      done(null, chunk);
    },
  });
  const zstd = startTool('zstd', options.zstd, ['-d', '-q', '-c']);
  // tar writes its totals line in several writes: read it from all its stderr at the end.
  let tarStderr = '';
  const tar = startTool('tar', options.tar.command, options.tar.args, {
    stdio: [zstd.child.stdout!, 'ignore', 'pipe'],
    onStderr: (text) => (tarStderr = `${tarStderr}${text}`.slice(-4096)),
    isProgress: (line) => /^Total bytes read/.test(line),
  });
  // tar holds its own copy of the pipe; with ours closed, a tar that stops early makes zstd
  // fail on its next write instead of blocking on a pipe nobody reads.
  zstd.child.stdout!.destroy();
  await allOrKill(
    [
      pipeline(body, count, createAgeDecryptor(identitiesFromText(options.identity)), zstd.child.stdin!, {
        signal,
      }),
      zstd.done,
      tar.done,
    ],
    [zstd, tar],
    signal,
  );
  return { tarStderr, storedBytes };
};
