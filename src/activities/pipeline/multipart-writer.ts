// The end of a backup pipeline: bytes in, an S3 multipart upload out, uploaded part by part as
// the stream produces them. Memory stays bounded (the part being filled plus `concurrency` parts
// in flight: backpressure holds the pipeline while they upload), and the sha256 and size of the
// stored object are computed on the way. The object exists only once `final` completes the
// upload; a destroyed writer aborts it, so no partial object is ever visible.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
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
      await this.complete();
    })().then(
      () => done(),
      (err: Error) => done(err),
    );
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.abort().then(
      () => done(err),
      (abortErr: Error) =>
        done(err ?? new Error(`aborting the upload failed: ${abortErr.message}`, { cause: abortErr })),
    );
  }

  /**
   * Instead of being written to: reads `fd` (a FIFO a tool writes) to its end straight into
   * part-sized buffers, each reused once its part is uploaded, then completes the upload (or
   * aborts it and throws). No Buffer is allocated per read: the ~4 000 pieces of a 245 MB
   * ciphertext read through a stream, and their copies into parts, made V8 mark the thread's heap
   * every 64 MB of them.
   */
  async readFrom(fd: number, signal?: AbortSignal): Promise<void> {
    const free: Buffer[] = [];
    try {
      for (;;) {
        const size = partSize(this.nextPart, this.opts.firstPartBytes);
        const reusable = free.findIndex((b) => b.length === size);
        const part = reusable >= 0 ? free.splice(reusable, 1)[0]! : Buffer.allocUnsafeSlow(size);
        let filled = 0;
        while (filled < size) {
          signal?.throwIfAborted();
          const n = await readInto(fd, part, filled, size - filled);
          if (n === 0) break;
          filled += n;
        }
        if (filled > 0 || this.nextPart === 1) {
          const body = part.subarray(0, filled);
          this.hash.update(body);
          this.bytes += filled;
          await this.sendPart(body, () => free.push(part));
        }
        if (filled < size) break;
      }
      await this.complete();
    } catch (err) {
      await this.abort().catch(() => undefined);
      throw err;
    }
  }

  /** Completes the upload once every part is in and beforeComplete allows it. */
  private async complete(): Promise<void> {
    await Promise.all(this.inFlight);
    this.throwIfFailed();
    await this.opts.beforeComplete?.();
    this.parts.sort((a, b) => a.partNumber - b.partNumber);
    await this.opts.store.completeMultipartUpload(this.opts.key, this.opts.uploadId, this.parts);
    this.completed = true;
    this.sha256 = this.hash.digest('hex');
  }

  /** Aborts an upload not completed, once the parts still uploading have settled (or they would be orphaned). */
  private async abort(): Promise<void> {
    if (this.completed) return;
    await Promise.allSettled(this.inFlight);
    await this.opts.store.abortMultipartUpload(this.opts.key, this.opts.uploadId);
  }

  /** Sends the filled part; resolves once fewer than `concurrency` parts are in flight. */
  private async flushPart(): Promise<void> {
    const body = this.filling.length === 1 ? this.filling[0]! : Buffer.concat(this.filling);
    this.filling = [];
    this.fillingBytes = 0;
    await this.sendPart(body);
  }

  /**
   * Uploads `body` as the next part; resolves once fewer than `concurrency` parts are in flight.
   * `release` is called once the part's upload has settled (its buffer may then be reused).
   */
  private async sendPart(body: Buffer, release?: () => void): Promise<void> {
    this.throwIfFailed();
    const partNumber = this.nextPart++;
    if (partNumber > MAX_PARTS) throw new Error(`the object needs more than ${MAX_PARTS} parts`);
    const upload = this.uploadPart(partNumber, body).then(
      (etag) => {
        this.parts.push({ partNumber, etag });
        this.partsUploaded++;
      },
      (err: Error) => {
        this.failure ??= err;
      },
    );
    const tracked = upload.finally(() => {
      this.inFlight.delete(tracked);
      release?.();
    });
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

/** One read of up to `length` bytes into `buffer` at `offset` (0 at the end of the input). */
function readInto(fd: number, buffer: Buffer, offset: number, length: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.read(fd, buffer, offset, length, null, (err, n) => (err ? reject(err) : resolve(n))),
  );
}
