// Bytes between the worker's main thread and a pipeline thread, with backpressure: the receiver
// acknowledges a chunk once its stream has taken it, and the sender stops with WINDOW chunks
// unacknowledged. Errors cross as plain data and come back as the typed errors they were.
import { Readable, Writable } from 'node:stream';
import { LifeboatError, type ErrorCode } from '../../domain/errors.ts';
import { ToolError } from './child.ts';

export type Direction = 'in' | 'out';

export type ChannelMessage =
  | { t: 'chunk'; stream: Direction; bytes: Uint8Array }
  | { t: 'end'; stream: Direction }
  | { t: 'ack'; stream: Direction }
  | { t: 'progress'; value: unknown }
  | { t: 'result'; value: unknown }
  | { t: 'error'; error: SerializedError }
  | { t: 'abort'; error: SerializedError };

/** 32 pipe reads of 64 KiB: 2 MiB in flight per direction. */
const WINDOW = 32;

export class ChannelWritable extends Writable {
  private unacked = 0;
  private blocked: (() => void) | undefined;
  private readonly post: (message: ChannelMessage) => void;
  private readonly stream: Direction;

  constructor(post: (message: ChannelMessage) => void, stream: Direction) {
    super({ highWaterMark: 256 * 1024 });
    this.post = post;
    this.stream = stream;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    // Cloning a view clones its whole ArrayBuffer: send a view of a shared buffer as a copy.
    const whole = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength;
    this.post({
      t: 'chunk',
      stream: this.stream,
      bytes: whole ? chunk : Uint8Array.prototype.slice.call(chunk),
    });
    if (++this.unacked < WINDOW) done();
    else this.blocked = done;
  }

  override _final(done: (err?: Error | null) => void): void {
    this.post({ t: 'end', stream: this.stream });
    done();
  }

  acked(): void {
    this.unacked--;
    const blocked = this.blocked;
    if (blocked && this.unacked < WINDOW) {
      this.blocked = undefined;
      blocked();
    }
  }
}

export class ChannelReadable extends Readable {
  private owed = 0;
  private readonly ack: () => void;

  constructor(ack: () => void) {
    super({ highWaterMark: 1024 * 1024 });
    this.ack = ack;
  }

  receive(bytes: Uint8Array): void {
    if (this.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))) this.ack();
    else this.owed++;
  }

  override _read(): void {
    for (; this.owed > 0; this.owed--) this.ack();
  }
}

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  context?: Record<string, unknown>;
  tool?: string;
  stderr?: string;
  notFound?: boolean;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof LifeboatError)
    return { name: err.name, message: err.message, code: err.code, context: err.context };
  if (err instanceof ToolError)
    return {
      name: err.name,
      message: err.message,
      tool: err.tool,
      stderr: err.stderr,
      notFound: err.notFound,
    };
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: 'Error', message: String(err) };
}

export function deserializeError(e: SerializedError): Error {
  if (e.name === 'LifeboatError' && e.code)
    return new LifeboatError(e.code as ErrorCode, e.message, e.context);
  if (e.name === 'ToolError') return new ToolError(e.tool ?? '', e.message, e.stderr ?? '', e.notFound);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}
