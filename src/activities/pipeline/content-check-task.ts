// Verification's content check, run in a pipeline thread (in-thread.ts): the stored base backup
// read back from the plan's primary storage (a store of this thread's own, built as the worker
// builds its own), its sha256 and size taken, then through age and `zstd -d`, every file of the
// tar checked against backup_manifest. Neither the ciphertext nor the 1.5 GB tar enters the main
// thread's heap.
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Plan } from '../../domain/plan.ts';
import type { Environment } from '../ports/environment.ts';
import { createObjectStore } from '../ports/object-store.ts';
import { contentChecker, type ContentCheck } from '../postgres-manifest.ts';
import { storageError } from '../storage-error.ts';
import { createAgeDecryptor, identitiesFromText } from './age.ts';
import { allOrKill, startTool } from './child.ts';
import type { FileChecksumAlgorithm } from './file-checksum.ts';
import type { ThreadTask } from './in-thread.ts';

export interface ContentCheckTaskOptions {
  /** The age identity text (secret keys): it stays in this process. */
  identity: string;
  zstd: string;
  algorithm: FileChecksumAlgorithm;
  /** The object, in the plan's primary storage. */
  key: string;
  source: { plan: Plan; env: Environment };
}

export interface ContentCheckTaskResult {
  /** What was read back: the stored object's size and sha256. */
  bytes: number;
  sha256: string;
  content: ContentCheck;
}

const REPORT_EVERY_MS = 500;

/** Progress: bytes read back so far. */
export const run: ThreadTask<ContentCheckTaskOptions, ContentCheckTaskResult, number> = async ({
  options,
  signal,
  report,
}) => {
  const store = createObjectStore(options.source.plan.storage.primary, options.source.env);
  let body;
  try {
    body = await store.getStream(options.key);
  } catch (err) {
    throw storageError(err, `reading ${options.key} back`);
  }
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const zstd = startTool('zstd', options.zstd, ['-d', '-q', '-c']);
  const checker = contentChecker(options.algorithm);
  const beat = setInterval(() => report(bytes), REPORT_EVERY_MS);
  try {
    await allOrKill(
      [
        pipeline(body, tap, createAgeDecryptor(identitiesFromText(options.identity)), zstd.child.stdin!, {
          signal,
        }),
        pipeline(zstd.child.stdout!, checker.sink, { signal }),
        zstd.done,
      ],
      [zstd],
      signal,
    );
  } finally {
    clearInterval(beat);
  }
  report(bytes);
  return { bytes, sha256: hash.digest('hex'), content: checker.finish(options.key) };
};
