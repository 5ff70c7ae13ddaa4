// The base backup's tar checked as pg_basebackup's stream passes: every file against
// backup_manifest (as pg_verifybackup would), the WAL under pg_wal/ listed, backup_label and
// backup_manifest kept. It reads with blocking reads into one reused 1 MiB buffer: the 1.5 GB tar
// of the benchmark through Node's streams allocated a Buffer for every 64 KiB read and marked
// the heap every 64 MB of them (about 2.5 s of CPU per backup, against 0.6 s this way). It runs
// in a process of its own (tar-check-main.ts), which can always be killed, where a thread blocked
// in a read cannot be interrupted.
import fs from 'node:fs';
import type { ErrorCode } from '../../domain/errors.ts';
import { LifeboatError } from '../../domain/errors.ts';
import { contentChecker } from '../postgres-manifest.ts';
import type { FileChecksumAlgorithm } from './file-checksum.ts';
import { TarObserver } from './tar.ts';

export type TarCheckReport =
  | {
      ok: true;
      /** Bytes of the tar. */
      bytes: number;
      firstByteAt?: number;
      backupLabel: string;
      /** backup_manifest, base64. */
      backupManifest: string;
      files: number;
      /** WAL segment name → size, as found under pg_wal/. */
      walSegments: Record<string, number>;
    }
  | { ok: false; bytes: number; error: { code?: ErrorCode; message: string } };

const BUFFER_BYTES = 1024 * 1024;
const PROGRESS_EVERY_MS = 250;

/**
 * Reads the tar from `fd` to its end and checks it. `name` is what messages call it (the object
 * key); `progress` hears the tar bytes read so far, every quarter second.
 */
export function checkTar(
  fd: number,
  options: { algorithm: FileChecksumAlgorithm; name: string; progress?: (bytes: number) => void },
): TarCheckReport {
  const observer = new TarObserver(['backup_label', 'backup_manifest']);
  const checker = contentChecker(options.algorithm);
  const buffer = Buffer.allocUnsafeSlow(BUFFER_BYTES);
  let reported = 0;
  try {
    for (;;) {
      const n = readBlocking(fd, buffer);
      if (n === 0) break;
      const piece = buffer.subarray(0, n);
      observer.see(piece);
      checker.push(piece);
      if (options.progress && Date.now() - reported >= PROGRESS_EVERY_MS) {
        reported = Date.now();
        options.progress(observer.bytes);
      }
    }
    // A tar that ended early, without backup_manifest or with a file that does not match it must
    // never become an object.
    if (!observer.reader.ended)
      throw new Error('the tar stream from pg_basebackup ended without its end blocks');
    const manifest = observer.captured.get('backup_manifest');
    if (!manifest) throw new Error('pg_basebackup wrote no backup_manifest into the tar stream');
    const content = checker.finish(options.name);
    return {
      ok: true,
      bytes: observer.bytes,
      ...(observer.firstByteAt ? { firstByteAt: observer.firstByteAt } : {}),
      backupLabel: observer.captured.get('backup_label')?.toString('utf8') ?? '',
      backupManifest: manifest.toString('base64'),
      files: content.files,
      walSegments: Object.fromEntries(content.wal),
    };
  } catch (err) {
    const error = err as Error;
    return {
      ok: false,
      bytes: observer.bytes,
      error: { ...(err instanceof LifeboatError ? { code: err.code } : {}), message: error.message },
    };
  }
}

/** The error a failed report stands for, typed as it was. */
export function reportError(report: Extract<TarCheckReport, { ok: false }>): Error {
  return report.error.code
    ? new LifeboatError(report.error.code, report.error.message)
    : new Error(report.error.message);
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * One read; a descriptor left non-blocking by whoever shared it (EAGAIN) is waited on a
 * millisecond at a time instead of failing.
 */
function readBlocking(fd: number, buffer: Buffer): number {
  for (;;) {
    try {
      return fs.readSync(fd, buffer, 0, buffer.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}
