// The data path of a full backup, run in a pipeline thread (in-thread.ts): pg_basebackup's tar,
// read for backup_label and backup_manifest as it passes, into zstd, then age; the ciphertext
// goes to the main thread, which uploads it. The tar (1.5 GB for 270 MB stored on the benchmark)
// never enters the main thread's heap.
import { pipeline } from 'node:stream/promises';
import { LifeboatError } from '../../domain/errors.ts';
import { createAgeEncryptor } from './age.ts';
import { allOrKill, startTool, ToolError, type Tool } from './child.ts';
import type { ThreadTask } from './in-thread.ts';
import { TarObserver } from './tar.ts';

export interface BaseBackupTaskOptions {
  pgBasebackup: { command: string; args: string[]; env: Record<string, string | undefined> };
  zstd: { command: string; args: string[] };
  /** age recipients (public keys). */
  recipients: string[];
}

export interface BaseBackupTaskProgress {
  rawBytes: number;
  /** pg_basebackup's own estimate of the tar size, once the server has sent it. */
  estimatedRawBytes?: number;
}

export interface BaseBackupTaskResult {
  rawBytes: number;
  firstByteAt?: number;
  pgExitedAt: number;
  backupLabel: string;
  backupManifest: Uint8Array;
}

const PROGRESS_LINE = /^\s*\d+\/\d+ kB \(\d+%\)/;
const REPORT_EVERY_MS = 500;

export const run: ThreadTask<BaseBackupTaskOptions, BaseBackupTaskResult, BaseBackupTaskProgress> = async ({
  options,
  output,
  signal,
  report,
}) => {
  let estimatedRawBytes: number | undefined;
  const pgbb = startTool('pg_basebackup', options.pgBasebackup.command, options.pgBasebackup.args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.pgBasebackup.env,
    isProgress: (line) => PROGRESS_LINE.test(line),
    onStderr: (text) => {
      const last = [...text.matchAll(/(\d+)\/(\d+) kB/g)].at(-1);
      if (last) estimatedRawBytes = Number(last[2]) * 1024;
    },
  });
  const zstd = startTool('zstd', options.zstd.command, options.zstd.args);
  const observer = new TarObserver(['backup_label', 'backup_manifest']);
  let pgExitedAt = 0;
  const beat = setInterval(() => report({ rawBytes: observer.bytes, estimatedRawBytes }), REPORT_EVERY_MS);
  try {
    await allOrKill(
      [
        pipeline(pgbb.child.stdout!, observer, zstd.child.stdin!, { signal }),
        pipeline(zstd.child.stdout!, createAgeEncryptor(options.recipients), output, { signal }),
        pgbb.done.then(() => (pgExitedAt = Date.now())),
        zstd.done,
      ],
      [pgbb, zstd],
      signal,
    );
  } catch (err) {
    throw signal.aborted ? err : pgBasebackupError(err, pgbb);
  } finally {
    clearInterval(beat);
  }
  if (!observer.reader.ended)
    throw new Error('the tar stream from pg_basebackup ended without its end blocks');
  const manifest = observer.captured.get('backup_manifest');
  if (!manifest) throw new Error('pg_basebackup wrote no backup_manifest into the tar stream');
  return {
    rawBytes: observer.bytes,
    firstByteAt: observer.firstByteAt,
    pgExitedAt,
    backupLabel: observer.captured.get('backup_label')?.toString('utf8') ?? '',
    backupManifest: manifest,
  };
};

/** What went wrong in the pipeline, typed and with pg_basebackup's own words. */
function pgBasebackupError(err: unknown, pgbb: Tool): unknown {
  if (err instanceof LifeboatError) return err;
  if (err instanceof ToolError && err.notFound)
    return new LifeboatError(
      'InvalidInput',
      `${err.message} on this worker: install the PostgreSQL client of the server's major version (or set LIFEBOAT_PG_BINDIR) and zstd`,
    );
  const stderr = pgbb.stderrTail();
  if (
    /password authentication failed|no pg_hba\.conf entry|must be superuser or replication role|permission denied/i.test(
      stderr,
    )
  )
    return new LifeboatError('AccessDenied', `pg_basebackup was refused: ${stderr}`);
  if (err instanceof ToolError && err.tool === 'pg_basebackup') return err;
  if (stderr && pgbb.child.exitCode !== null && pgbb.child.exitCode !== 0)
    return new Error(`pg_basebackup failed: ${stderr}`);
  return err;
}
