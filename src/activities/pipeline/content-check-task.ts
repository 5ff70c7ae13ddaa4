// Verification's content check, run in a pipeline thread (in-thread.ts): the stored base backup,
// as the main thread downloads it, through age and `zstd -d`, every file of the tar checked
// against backup_manifest. The 1.5 GB tar never enters the main thread's heap.
import { pipeline } from 'node:stream/promises';
import { contentChecker, type ContentCheck } from '../postgres-manifest.ts';
import { createAgeDecryptor, identitiesFromText } from './age.ts';
import { allOrKill, startTool } from './child.ts';
import type { FileChecksumAlgorithm } from './file-checksum.ts';
import type { ThreadTask } from './in-thread.ts';

export interface ContentCheckTaskOptions {
  /** The age identity text (secret keys): it stays in this process. */
  identity: string;
  zstd: string;
  algorithm: FileChecksumAlgorithm;
  /** The object's key, for messages. */
  key: string;
}

export const run: ThreadTask<ContentCheckTaskOptions, ContentCheck, never> = async ({
  options,
  input,
  signal,
}) => {
  const zstd = startTool('zstd', options.zstd, ['-d', '-q', '-c']);
  const checker = contentChecker(options.algorithm);
  await allOrKill(
    [
      pipeline(input, createAgeDecryptor(identitiesFromText(options.identity)), zstd.child.stdin!, {
        signal,
      }),
      pipeline(zstd.child.stdout!, checker.sink, { signal }),
      zstd.done,
    ],
    [zstd],
    signal,
  );
  return checker.finish(options.key);
};
