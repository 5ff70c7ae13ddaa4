// Reading the tar stream pg_basebackup writes, without staging it: members are seen as they pass.
// pg_basebackup writes ustar headers (names up to 99 bytes plus the 155-byte prefix) and sizes of
// files over 8 GiB in base-256 (GNU), both handled here. Writing to stdout, PostgreSQL appends
// backup_manifest as the tar's last member, so the manifest is captured here rather than lost.
import { Transform, type TransformCallback } from 'node:stream';

const BLOCK = 512;

export interface TarEntry {
  name: string;
  size: number;
  /** '0' regular file, '5' directory, '2' symlink, … (the ustar typeflag). */
  type: string;
}

/** Handlers of a TarReader: `entry` may return a sink for the member's data. */
export interface TarHandlers {
  entry?(entry: TarEntry): ((chunk: Buffer) => void) | undefined;
  entryEnd?(entry: TarEntry): void;
}

export class TarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarError';
  }
}

/** A push parser of tar bytes. `ended` is true once the end-of-archive blocks were seen. */
export class TarReader {
  ended = false;
  entries = 0;
  private header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  private current: { entry: TarEntry; sink?: (chunk: Buffer) => void; left: number } | undefined;
  private padding = 0;
  private zeroBlocks = 0;
  private readonly handlers: TarHandlers;

  constructor(handlers: TarHandlers) {
    this.handlers = handlers;
  }

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.ended) return; // whatever follows the end blocks is padding to the record size
      if (this.current) {
        const n = Math.min(this.current.left, chunk.length - at);
        if (n > 0) this.current.sink?.(chunk.subarray(at, at + n));
        this.current.left -= n;
        at += n;
        if (this.current.left === 0) {
          this.handlers.entryEnd?.(this.current.entry);
          this.current = undefined;
        }
        continue;
      }
      if (this.padding > 0) {
        const n = Math.min(this.padding, chunk.length - at);
        this.padding -= n;
        at += n;
        continue;
      }
      const n = Math.min(BLOCK - this.headerFill, chunk.length - at);
      chunk.copy(this.header, this.headerFill, at, at + n);
      this.headerFill += n;
      at += n;
      if (this.headerFill === BLOCK) {
        this.headerFill = 0;
        this.onHeader();
      }
    }
  }

  private onHeader(): void {
    const h = this.header;
    if (h.every((b) => b === 0)) {
      if (++this.zeroBlocks === 2) this.ended = true;
      return;
    }
    if (this.zeroBlocks > 0) throw new TarError('a header follows a zero block');
    if (!checksumOk(h)) throw new TarError(`bad header checksum after ${this.entries} member(s)`);
    const name = cString(h, 0, 100);
    const prefix = h.subarray(257, 262).toString('latin1') === 'ustar' ? cString(h, 345, 155) : '';
    const type = String.fromCharCode(h[156] || 0x30);
    const entry: TarEntry = { name: prefix ? `${prefix}/${name}` : name, size: tarNumber(h, 124, 12), type };
    this.entries++;
    // Links and directories carry no data, whatever their size field says.
    const dataSize = type === '1' || type === '2' || type === '5' ? 0 : entry.size;
    const sink = this.handlers.entry?.(entry);
    this.padding = (BLOCK - (dataSize % BLOCK)) % BLOCK;
    if (dataSize === 0) this.handlers.entryEnd?.(entry);
    else this.current = { entry, sink, left: dataSize };
  }
}

/**
 * A pass-through stream that reads the tar as it flows: counts bytes, and keeps the members
 * named in `capture` (small files such as backup_label and backup_manifest) in memory.
 */
export class TarObserver extends Transform {
  bytes = 0;
  firstByteAt: number | undefined;
  readonly captured = new Map<string, Buffer>();
  readonly reader: TarReader;

  constructor(capture: string[], maxCaptureBytes = 256 * 1024 * 1024) {
    super();
    let parts: Buffer[] = [];
    this.reader = new TarReader({
      entry: (entry) => {
        if (!capture.includes(entry.name)) return undefined;
        if (entry.size > maxCaptureBytes)
          throw new TarError(`${entry.name} is ${entry.size} bytes, more than the ${maxCaptureBytes} kept`);
        parts = [];
        return (chunk) => parts.push(Buffer.from(chunk));
      },
      entryEnd: (entry) => {
        if (capture.includes(entry.name)) this.captured.set(entry.name, Buffer.concat(parts));
        parts = [];
      },
    });
  }

  /** The next piece of the tar, for a reader that is not a stream (throws on a bad header). */
  see(chunk: Buffer): void {
    this.firstByteAt ??= Date.now();
    this.bytes += chunk.length;
    this.reader.push(chunk);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.see(chunk);
    } catch (err) {
      done(err as Error);
      return;
    }
    done(null, chunk);
  }
}

function cString(buf: Buffer, start: number, length: number): string {
  const field = buf.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? length : end).toString('utf8');
}

/** Octal, or base-256 when the high bit of the first byte is set (sizes of 8 GiB and more). */
function tarNumber(buf: Buffer, start: number, length: number): number {
  if (buf[start]! & 0x80) {
    let n = buf[start]! & 0x7f;
    for (let i = 1; i < length; i++) n = n * 256 + buf[start + i]!;
    return n;
  }
  const text = cString(buf, start, length).trim();
  return text ? parseInt(text, 8) : 0;
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum === tarNumber(h, 148, 8);
}
