// Verification's read-back, run in a pipeline thread (in-thread.ts): the stored base backup read
// back from the plan's primary storage (a store of this thread's own, built as the worker builds
// its own), its sha256 and size taken; with the age identity, also decrypted (age authenticates
// every 64 KiB) and decompressed: either `zstd -t`, which checks zstd's own checksum of the whole
// tar (when its files were checked as they streamed), or `zstd -d` with every file of the tar
// checked against backup_manifest here. Neither the ciphertext nor the 1.5 GB tar enters the main
// thread's heap.
import { createHash } from 'node:crypto';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LifeboatError } from '../../domain/errors.ts';
import type { Plan } from '../../domain/plan.ts';
import type { Environment } from '../ports/environment.ts';
import { planStore } from '../ports/object-store.ts';
import { contentChecker, type ContentCheck } from '../postgres-manifest.ts';
import { storageError } from '../storage-error.ts';
import { createAgeDecryptor, identitiesFromText } from './age.ts';
import { allOrKill, startTool } from './child.ts';
import type { FileChecksumAlgorithm } from './file-checksum.ts';
import type { ThreadTask } from './in-thread.ts';

export interface ContentCheckTaskOptions {
  /**
   * The age identity text (secret keys): it stays in this process. Without it (a worker given
   * only the recipients) the stored bytes are read back, not opened.
   */
  identity?: string;
  /**
   * What opening it checks inside: `files`, every file against backup_manifest; `zstd-checksum`,
   * zstd's checksum of the whole tar (the files were checked as they streamed); a
   * `compressedSha256`, that it decrypts to exactly the compressed bytes whose decompression was
   * checked as they streamed (nothing to decompress again).
   */
  inside: 'files' | 'zstd-checksum' | { compressedSha256: string };
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
  /** The files inside, when the identity opened them and `inside` was `files`. */
  content?: ContentCheck;
}

/** Progress: bytes read back so far. */
export const run: ThreadTask<ContentCheckTaskOptions, ContentCheckTaskResult, number> = async ({
  options,
  signal,
  progressFrom,
}) => {
  const store = planStore(options.source.plan, options.source.env, 'primary');
  let body;
  try {
    body = await store.getStream(options.key);
  } catch (err) {
    throw storageError(err, `reading ${options.key} back`);
  }
  const hash = createHash('sha256');
  let bytes = 0;
  progressFrom(() => bytes);
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const read = () => ({ bytes, sha256: hash.digest('hex') });
  if (options.identity === undefined) {
    await pipeline(body, tap, new Writable({ write: (_chunk, _enc, done) => done() }), { signal });
    return read();
  }
  const decrypted = () => createAgeDecryptor(identitiesFromText(options.identity!));
  if (typeof options.inside === 'object') {
    const plain = createHash('sha256');
    const hashed = new Writable({
      write(chunk: Buffer, _enc, done) {
        plain.update(chunk);
        done();
      },
    });
    await pipeline(body, tap, decrypted(), hashed, { signal });
    const got = plain.digest('hex');
    if (got !== options.inside.compressedSha256)
      throw new LifeboatError(
        'IntegrityError',
        `${options.key} decrypts to bytes with sha256 ${got}, not the ${options.inside.compressedSha256} that were compressed and checked`,
      );
    return read();
  }
  if (options.inside === 'zstd-checksum') {
    const zstd = startTool('zstd', options.zstd, ['-t', '-q'], { stdio: ['pipe', 'ignore', 'pipe'] });
    await allOrKill(
      [pipeline(body, tap, decrypted(), zstd.child.stdin!, { signal }), zstd.done],
      [zstd],
      signal,
    );
    return read();
  }
  const zstd = startTool('zstd', options.zstd, ['-d', '-q', '-c']);
  const checker = contentChecker(options.algorithm);
  await allOrKill(
    [
      pipeline(body, tap, decrypted(), zstd.child.stdin!, { signal }),
      pipeline(zstd.child.stdout!, checker.sink, { signal }),
      zstd.done,
    ],
    [zstd],
    signal,
  );
  return { ...read(), content: checker.finish(options.key) };
};
