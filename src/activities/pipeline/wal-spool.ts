// The worker-local WAL spool: the directory pg_receivewal writes into and the archiver uploads
// from. pg_receivewal names files as PostgreSQL does: `<segment>.partial` while a segment is being
// received (pre-allocated to the full segment size, zero-filled), renamed to `<segment>` once
// complete, and `<timeline>.history` when it follows a timeline switch.
import fs from 'node:fs';
import path from 'node:path';
import { parseWalFileName, segmentNumber, type WalFile } from '../../domain/wal.ts';

export interface SpoolContents {
  /** Completed segments, oldest first (by position, then timeline). */
  segments: WalFile[];
  /** Partial segments, oldest first; the last one is the segment being received. */
  partials: WalFile[];
  histories: WalFile[];
  /** Bytes of completed segments waiting for upload. */
  bytes: number;
}

export function scanSpool(dir: string, segmentSize: number): SpoolContents {
  const files = fs
    .readdirSync(dir)
    .map(parseWalFileName)
    .filter((f): f is WalFile => f !== undefined);
  const order = (a: WalFile, b: WalFile) =>
    a.kind === 'history' || b.kind === 'history'
      ? a.timeline - b.timeline
      : segmentNumber(a.segment, segmentSize) - segmentNumber(b.segment, segmentSize) ||
        a.timeline - b.timeline;
  const segments = files.filter((f) => f.kind === 'segment').sort(order);
  let bytes = 0;
  for (const s of segments) bytes += fileSize(path.join(dir, s.name));
  return {
    segments,
    partials: files.filter((f) => f.kind === 'partial').sort(order),
    histories: files.filter((f) => f.kind === 'history').sort(order),
    bytes,
  };
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** True when the spool holds a segment file pg_receivewal would resume from. */
export function spoolHasWal(dir: string): boolean {
  return fs.readdirSync(dir).some((n) => {
    const f = parseWalFileName(n);
    return f !== undefined && f.kind !== 'history';
  });
}

/**
 * Makes pg_receivewal start streaming at the beginning of `segment`. With no slot of its own it
 * resumes from the newest file in its directory, and from a `.partial` file it restarts at that
 * segment's beginning; a zero-filled file is exactly what it pre-allocates itself.
 */
export function seedPartial(dir: string, segment: string, segmentSize: number): void {
  const file = path.join(dir, `${segment}.partial`);
  const tmp = `${file}.seed`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.ftruncateSync(fd, segmentSize);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/**
 * How many bytes of a partial segment hold WAL: the file is zero-filled ahead of what was
 * received, so this is the end of its last non-zero byte, rounded up to PostgreSQL's 8-byte
 * alignment of records. A lower bound is all a restore needs: recovery stops at the first invalid
 * record anyway.
 */
export function validExtent(data: Uint8Array): number {
  let end = data.length;
  // Whole 8-byte words first: the zero tail of a 16 MiB segment is scanned quickly.
  if (data.byteOffset % 8 === 0 && data.length % 8 === 0) {
    const words = new BigUint64Array(data.buffer, data.byteOffset, data.length / 8);
    let w = words.length;
    while (w > 0 && words[w - 1] === 0n) w--;
    end = w * 8;
  }
  while (end > 0 && data[end - 1] === 0) end--;
  return Math.min(data.length, Math.ceil(end / 8) * 8);
}
