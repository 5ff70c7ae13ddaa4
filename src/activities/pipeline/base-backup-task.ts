// The data path of a full backup, run in a pipeline thread (in-thread.ts): pg_basebackup's tar,
// compressed (by pg_basebackup itself, or by a zstd process after it), then age, then the S3
// multipart upload the activity started, through a store of this thread's own built as the
// worker builds its own. On the way the tar is read for backup_label and backup_manifest and every
// file is checked against backup_manifest (from a `zstd -d` on the side when pg_basebackup
// compresses). Neither the tar (1.5 GB on the benchmark) nor the ciphertext (245 MB) enters the
// main thread's heap.
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { StreamCheck } from '../../domain/backup.ts';
import { LifeboatError } from '../../domain/errors.ts';
import type { Plan } from '../../domain/plan.ts';
import type { Environment } from '../ports/environment.ts';
import { planStore } from '../ports/object-store.ts';
import { contentChecker } from '../postgres-manifest.ts';
import { storageError } from '../storage-error.ts';
import { createAgeEncryptor } from './age.ts';
import { allOrKill, startTool, ToolError, type Tool } from './child.ts';
import type { FileChecksumAlgorithm } from './file-checksum.ts';
import type { ThreadTask } from './in-thread.ts';
import { MultipartWriter } from './multipart-writer.ts';
import { tapInto, teeInto } from './stream-taps.ts';
import { TarObserver } from './tar.ts';

export interface BaseBackupTaskOptions {
  pgBasebackup: { command: string; args: string[]; env: Record<string, string | undefined> };
  /**
   * Who compresses. pg_basebackup itself (`--compress=client-zstd:…` among its args; PostgreSQL 15
   * and later): its compressed tar goes to age as it is, and through `zstd -d` on the side to be
   * read and checked. Or a `zstd` process between the tar and age.
   */
  compression: { by: 'pg_basebackup'; zstd: string } | { by: 'zstd'; command: string; args: string[] };
  /** age recipients (public keys). */
  recipients: string[];
  /** The per-file checksums pg_basebackup was asked for (--manifest-checksums). */
  algorithm: FileChecksumAlgorithm;
  /** The upload to the plan's primary storage, started by the activity. */
  upload: { plan: Plan; env: Environment; key: string; uploadId: string; firstPartBytes: number };
}

export interface BaseBackupTaskProgress {
  rawBytes: number;
  /** pg_basebackup's own estimate of the tar size, once the server has sent it. */
  estimatedRawBytes?: number;
  storedBytes: number;
  partsUploaded: number;
}

export interface BaseBackupTaskResult {
  rawBytes: number;
  firstByteAt?: number;
  pgExitedAt: number;
  backupLabel: string;
  backupManifest: Uint8Array;
  /** The completed object. */
  stored: { bytes: number; sha256: string };
  streamCheck: StreamCheck;
}

const PROGRESS_LINE = /^\s*\d+\/\d+ kB \(\d+%\)/;

export const run: ThreadTask<BaseBackupTaskOptions, BaseBackupTaskResult, BaseBackupTaskProgress> = async ({
  options,
  signal,
  progressFrom,
}) => {
  const { plan, env, key, uploadId, firstPartBytes } = options.upload;
  const store = planStore(plan, env, 'primary');
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
  const observer = new TarObserver(['backup_label', 'backup_manifest']);
  // Every file checked against backup_manifest as it passes (as pg_verifybackup would), so that
  // verification need not decompress and parse the tar again.
  const checker = contentChecker(options.algorithm);
  const writer = new MultipartWriter({
    store,
    key,
    uploadId,
    firstPartBytes,
    beforeComplete: () => producerOk,
  });

  let pgExitedAt = 0;
  const pgExited = pgbb.done.then(() => (pgExitedAt = Date.now()));
  let steps: Promise<unknown>[];
  let tools: Tool[];
  let tarRead: Promise<unknown>;
  const compressedHash = createHash('sha256');
  if (options.compression.by === 'zstd') {
    const zstd = startTool('zstd', options.compression.command, options.compression.args);
    const observed = pipeline(
      pgbb.child.stdout!,
      observer,
      tapInto((chunk) => checker.push(chunk)),
      zstd.child.stdin!,
      {
        signal,
      },
    );
    // zstd has exited once it read all the tar, so every byte went past the observer.
    tarRead = zstd.done;
    steps = [
      observed,
      pipeline(zstd.child.stdout!, createAgeEncryptor(options.recipients), writer, { signal }),
    ];
    tools = [pgbb, zstd];
  } else {
    const unzstd = startTool('zstd -d', options.compression.zstd, ['-d', '-q', '-c']);
    tarRead = Promise.all([unzstd.done, pipeline(unzstd.child.stdout!, observer, checker.sink, { signal })]);
    const tee = teeInto(unzstd.child.stdin!, (chunk) => compressedHash.update(chunk));
    steps = [pipeline(pgbb.child.stdout!, tee, createAgeEncryptor(options.recipients), writer, { signal })];
    tools = [pgbb, unzstd];
  }
  let streamCheck: StreamCheck | undefined;
  const compressed = () =>
    options.compression.by === 'pg_basebackup' ? { compressedSha256: compressedHash.digest('hex') } : {};
  // A tar that ended early, without backup_manifest or with a file that does not match it must
  // never become an object.
  const producerOk = Promise.all([pgExited, tarRead]).then(() => {
    if (!observer.reader.ended)
      throw new Error('the tar stream from pg_basebackup ended without its end blocks');
    if (!observer.captured.has('backup_manifest'))
      throw new Error('pg_basebackup wrote no backup_manifest into the tar stream');
    const content = checker.finish(key);
    streamCheck = { files: content.files, walSegments: Object.fromEntries(content.wal), ...compressed() };
  });
  producerOk.catch(() => undefined);
  progressFrom(() => ({
    rawBytes: observer.bytes,
    estimatedRawBytes,
    storedBytes: writer.bytes,
    partsUploaded: writer.partsUploaded,
  }));
  try {
    await allOrKill([...steps, producerOk], tools, signal);
  } catch (err) {
    throw signal.aborted ? err : pipelineError(err, pgbb);
  }
  return {
    rawBytes: observer.bytes,
    firstByteAt: observer.firstByteAt,
    pgExitedAt,
    backupLabel: observer.captured.get('backup_label')?.toString('utf8') ?? '',
    backupManifest: observer.captured.get('backup_manifest')!,
    stored: { bytes: writer.bytes, sha256: writer.sha256! },
    streamCheck: streamCheck!,
  };
};

/** What went wrong in the pipeline, typed and with pg_basebackup's own words. */
function pipelineError(err: unknown, pgbb: Tool): unknown {
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
  if ((err as { $metadata?: unknown }).$metadata) return storageError(err, 'uploading the base backup');
  if (stderr && pgbb.child.exitCode !== null && pgbb.child.exitCode !== 0)
    return new Error(`pg_basebackup failed: ${stderr}`);
  return err;
}
