// Verification's read-back, run in a pipeline thread (in-thread.ts): the stored base backup
// downloaded by curl from a presigned URL (of the plan's primary storage), its sha256 and size taken
// here; with the age identity, also opened by age (which authenticates every 64 KiB chunk), and
// inside, as the backup's stream check left to prove: nothing more when the check read the very
// bytes age encrypted; zstd's own checksum of the whole tar (`zstd -t`) when it read the tar
// before a zstd process compressed it; for results from before those, the decrypted bytes
// against the compressed sha256, or every file of the tar against backup_manifest.
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LifeboatError } from '../../domain/errors.ts';
import type { PresignedGet } from '../ports/object-store.ts';
import { contentChecker, type ContentCheck } from '../postgres-manifest.ts';
import { curlError } from '../storage-error.ts';
import type { Binaries } from './binaries.ts';
import { allOrKill, startTool, ToolError, type Tool } from './child.ts';
import { withFifos } from './fifo.ts';
import { startAgeDecrypt, startPresignedGet } from './stock-tools.ts';
import type { FileChecksumAlgorithm } from './file-checksum.ts';
import type { ThreadTask } from './in-thread.ts';

export interface ContentCheckTaskOptions {
  /**
   * The age identity text (secret keys): it stays in this process. Without it (a worker given
   * only the recipients) the stored bytes are read back, not opened.
   */
  identity?: string;
  /**
   * What opening it checks inside: `opens`, nothing more (the files were checked as the very
   * bytes age encrypted streamed); `zstd-checksum`, zstd's checksum of the whole tar (the tar was
   * checked before a zstd process compressed it); a `compressedSha256`, that it decrypts to
   * exactly the compressed bytes whose decompression was checked (results from before `opens`);
   * `files`, every file against backup_manifest (results from before any stream check).
   */
  inside: 'opens' | 'zstd-checksum' | { compressedSha256: string } | 'files';
  binaries: Pick<Binaries, 'curl' | 'age' | 'zstd'>;
  algorithm: FileChecksumAlgorithm;
  /** The object, in the plan's primary storage. */
  key: string;
  /**
   * A presigned GET of it, made by the activity: this thread then loads no AWS SDK (a few hundred
   * milliseconds of its start).
   */
  source: PresignedGet;
}

export interface ContentCheckTaskResult {
  /** What was read back: the stored object's size and sha256. */
  bytes: number;
  sha256: string;
  /** The files inside, when the identity opened them and `inside` was `files`. */
  content?: ContentCheck;
}

/** Progress: bytes read back so far. */
export const run: ThreadTask<ContentCheckTaskOptions, ContentCheckTaskResult, number> = (ctx) =>
  // tee gives age the ciphertext through a FIFO, so that age's standard input can carry the identity.
  withFifos(['ciphertext'], ({ ciphertext }) => readBack(ciphertext, ctx));

async function readBack(
  fifo: string,
  { options, signal, progressFrom }: Parameters<ThreadTask<ContentCheckTaskOptions, never, number>>[0],
): Promise<ContentCheckTaskResult> {
  const { key, binaries, source } = options;
  const curl = startPresignedGet(binaries.curl, source, ['--silent']);
  // The ciphertext passes this thread only to be hashed; with the identity, tee hands age a copy.
  const tee =
    options.identity === undefined
      ? undefined
      : startTool('tee', 'tee', [fifo], { stdio: [curl.child.stdout!, 'pipe', 'pipe'] });
  if (tee) curl.child.stdout!.destroy();
  const hash = createHash('sha256');
  let bytes = 0;
  progressFrom(() => bytes);
  const hashed = new Writable({
    write(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done();
    },
  });
  const read = () => ({ bytes, sha256: hash.digest('hex') });
  const tools: Tool[] = tee ? [curl, tee] : [curl];
  const steps: Promise<unknown>[] = [
    ...tools.map((t) => t.done),
    pipeline((tee ?? curl).child.stdout!, hashed, { signal }),
  ];
  let inside: () => Partial<ContentCheckTaskResult> = () => ({});
  if (options.identity !== undefined) {
    const mode = options.inside;
    const age = startAgeDecrypt(binaries.age, options.identity, fifo, {
      stdio: ['pipe', mode === 'opens' ? 'ignore' : 'pipe', 'pipe'],
    });
    tools.push(age);
    steps.push(age.done);
    if (mode === 'zstd-checksum') {
      const zstd = startTool('zstd -t', binaries.zstd, ['-t', '-q'], {
        stdio: [age.child.stdout!, 'ignore', 'pipe'],
      });
      age.child.stdout!.destroy();
      tools.push(zstd);
      steps.push(zstd.done);
    } else if (mode === 'files') {
      const zstd = startTool('zstd', binaries.zstd, ['-d', '-q', '-c'], {
        stdio: [age.child.stdout!, 'pipe', 'pipe'],
      });
      age.child.stdout!.destroy();
      const checker = contentChecker(options.algorithm);
      tools.push(zstd);
      steps.push(pipeline(zstd.child.stdout!, checker.sink, { signal }), zstd.done);
      inside = () => ({ content: checker.finish(key) });
    } else if (typeof mode === 'object') {
      const plain = createHash('sha256');
      steps.push(
        pipeline(
          age.child.stdout!,
          new Writable({ write: (c: Buffer, _e, done) => (plain.update(c), done()) }),
          { signal },
        ),
      );
      inside = () => {
        const got = plain.digest('hex');
        if (got !== mode.compressedSha256)
          throw new LifeboatError(
            'IntegrityError',
            `${key} decrypts to bytes with sha256 ${got}, not the ${mode.compressedSha256} that were compressed and checked`,
          );
        return {};
      };
    }
  }
  try {
    await allOrKill(steps, tools, signal);
  } catch (err) {
    throw !signal.aborted && err instanceof ToolError && err.tool === 'curl'
      ? curlError(err, `reading ${key} back`)
      : err;
  }
  return { ...read(), ...inside() };
}
