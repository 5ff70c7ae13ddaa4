// The end of a backup pipeline: bytes in, an S3 multipart upload out, uploaded part by part as
// the stream produces them. Memory stays bounded (the part being filled plus `concurrency` parts
// in flight: backpressure holds the pipeline while they upload), and the sha256 and size of the
// stored object are computed on the way. The object exists only once `final` completes the
// upload; a destroyed writer aborts it, so no partial object is ever visible.
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { MAX_PARTS, partSize } from '../../domain/backup.ts';
import type { CompletedPart, ObjectStore } from '../ports/object-store.ts';

export interface MultipartWriterOptions {
  store: ObjectStore;
  key: string;
  uploadId: string;
  firstPartBytes: number;
  /** Parts uploading at once while the next one fills. */
  concurrency?: number;
  /** Tries per part: a part is in memory, so a transient S3 error costs one part, not the backup. */
  partTries?: number;
  /**
   * Awaited before the upload is completed; a rejection aborts it instead. The producer's exit
   * status goes here: a stream that merely ended (a crashed pg_basebackup closes its stdout too)
   * must never become an object.
   */
  beforeComplete?: () => Promise<void>;
}

export class MultipartWriter extends Writable {
  bytes = 0;
  partsUploaded = 0;
  sha256: string | undefined;
  completed = false;
  private readonly hash = createHash('sha256');
  private readonly opts: Required<Omit<MultipartWriterOptions, 'beforeComplete'>> &
    Pick<MultipartWriterOptions, 'beforeComplete'>;
  private filling: Buffer[] = [];
  private fillingBytes = 0;
  private nextPart = 1;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly parts: CompletedPart[] = [];
  private failure: Error | undefined;

  constructor(opts: MultipartWriterOptions) {
    super({ highWaterMark: 1024 * 1024 });
    this.opts = { concurrency: 2, partTries: 4, ...opts };
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.filling.push(chunk);
    this.fillingBytes += chunk.length;
    if (this.fillingBytes < partSize(this.nextPart, this.opts.firstPartBytes)) return done();
    this.flushPart()
      .then(() => done())
      .catch((err: Error) => done(err));
  }

  override _final(done: (err?: Error | null) => void): void {
    (async () => {
      if (this.fillingBytes > 0 || this.nextPart === 1) await this.flushPart();
      await Promise.all(this.inFlight);
      this.throwIfFailed();
      await this.opts.beforeComplete?.();
      this.parts.sort((a, b) => a.partNumber - b.partNumber);
      await this.opts.store.completeMultipartUpload(this.opts.key, this.opts.uploadId, this.parts);
      this.completed = true;
      this.sha256 = this.hash.digest('hex');
    })().then(
      () => done(),
      (err: Error) => done(err),
    );
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (this.completed) return done(err);
    // Parts still uploading would be orphaned by the abort; wait for them, then abort.
    Promise.allSettled(this.inFlight)
      .then(() => this.opts.store.abortMultipartUpload(this.opts.key, this.opts.uploadId))
      .then(
        () => done(err),
        (abortErr: Error) =>
          done(err ?? new Error(`aborting the upload failed: ${abortErr.message}`, { cause: abortErr })),
      );
  }

  /** Sends the filled part; resolves once fewer than `concurrency` parts are in flight. */
  private async flushPart(): Promise<void> {
    this.throwIfFailed();
    const partNumber = this.nextPart++;
    if (partNumber > MAX_PARTS) throw new Error(`the object needs more than ${MAX_PARTS} parts`);
    const body = this.filling.length === 1 ? this.filling[0]! : Buffer.concat(this.filling);
    this.filling = [];
    this.fillingBytes = 0;
    const upload = this.uploadPart(partNumber, body).then(
      (etag) => {
        this.parts.push({ partNumber, etag });
        this.partsUploaded++;
      },
      (err: Error) => {
        this.failure ??= err;
      },
    );
    const tracked = upload.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    while (this.inFlight.size >= this.opts.concurrency) await Promise.race(this.inFlight);
    this.throwIfFailed();
  }

  /** A part that failed (after its tries) fails the whole upload. */
  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  private async uploadPart(partNumber: number, body: Buffer): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.opts.store.uploadPart(this.opts.key, this.opts.uploadId, partNumber, body);
      } catch (err) {
        if (attempt >= this.opts.partTries || isPermanent(err)) throw err;
        await sleep(500 * 2 ** attempt);
      }
    }
  }
}

/** Errors a retry of the same part cannot fix: the upload is gone or we are not allowed. */
function isPermanent(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  return e.name === 'NoSuchUpload' || status === 403 || status === 404;
}
