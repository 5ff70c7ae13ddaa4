// A base backup's restore, run in a pipeline thread (in-thread.ts): the stored object, as the main
// thread downloads it, through age into `zstd -d`, which writes straight into `tar x`. The
// decrypted stream (270 MB for the benchmark's 1.5 GB) never enters the main thread's heap, and
// the restored bytes never enter this process at all.
import { pipeline } from 'node:stream/promises';
import { createAgeDecryptor, identitiesFromText } from './age.ts';
import { allOrKill, startTool } from './child.ts';
import type { ThreadTask } from './in-thread.ts';

export interface ExtractTaskOptions {
  /** The age identity text (secret keys): it stays in this process. */
  identity: string;
  zstd: string;
  /** `tar x` into the data directory, as the PostgreSQL OS user. */
  tar: { command: string; args: string[] };
}

export interface ExtractTaskResult {
  /** All of tar's stderr (its totals line among it). */
  tarStderr: string;
}

export const run: ThreadTask<ExtractTaskOptions, ExtractTaskResult, never> = async ({
  options,
  input,
  signal,
}) => {
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
      pipeline(input, createAgeDecryptor(identitiesFromText(options.identity)), zstd.child.stdin!, {
        signal,
      }),
      zstd.done,
      tar.done,
    ],
    [zstd, tar],
    signal,
  );
  return { tarStderr };
};
