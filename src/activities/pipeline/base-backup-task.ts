// The data path of a full backup, run in a pipeline thread (in-thread.ts). The bytes flow through
// stock tools, piped straight from one to the next:
//
//   pg_basebackup ─▶ tee ─▶ [zstd -3 -T2] ─▶ age -e ─▶ this thread ─▶ S3 multipart upload
//                     └─▶ FIFO ─▶ [zstd -d] ─▶ tar check (a Node process of its own)
//
// pg_basebackup compresses by itself from PostgreSQL 15 on (the tar check then reads it through
// `zstd -d`); for older servers a zstd process compresses after tee (the check reads the tar
// itself). The tar check (tar-check.ts) reads every file against backup_manifest and keeps
// backup_label and backup_manifest; the upload is completed only once it and every tool have
// succeeded, so a tar that ended early or a file that does not match never becomes an object.
// This thread sees only the ciphertext (245 MB on the benchmark, of a 1.5 GB tar): it hashes it
// and uploads it, through a store of its own built as the worker builds its own. Before, the tee,
// the encryption and the 1.5 GB of the check all ran in Node and cost the worker ~7 s of CPU per
// benchmark backup, half of it garbage collection; the tools do the same in ~2.5 s.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { StreamCheck } from '../../domain/backup.ts';
import { LifeboatError } from '../../domain/errors.ts';
import type { Plan } from '../../domain/plan.ts';
import type { Environment } from '../ports/environment.ts';
import { planStore } from '../ports/object-store.ts';
import { storageError } from '../storage-error.ts';
import { allOrKill, startTool, ToolError, type Tool } from './child.ts';
import { openFifoForChild, withFifos } from './fifo.ts';
import type { FileChecksumAlgorithm } from './file-checksum.ts';
import type { ThreadTask } from './in-thread.ts';
import { MultipartWriter } from './multipart-writer.ts';
import { reportError, type TarCheckReport } from './tar-check.ts';

export interface BaseBackupTaskOptions {
  pgBasebackup: { command: string; args: string[]; env: Record<string, string | undefined> };
  /**
   * Who compresses. pg_basebackup itself (`--compress=client-zstd:…` among its args; PostgreSQL 15
   * and later): its compressed tar goes to age as it is, and through `zstd -d` to the check. Or a
   * `zstd` process between tee and age.
   */
  compression: { by: 'pg_basebackup'; zstd: string } | { by: 'zstd'; command: string; args: string[] };
  /** The age binary, and the recipients (public keys) it encrypts to. */
  age: string;
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
const TAR_BYTES = /tar-bytes (\d+)/g;
const TAR_CHECK = fileURLToPath(new URL('./tar-check-main.ts', import.meta.url));

export const run: ThreadTask<BaseBackupTaskOptions, BaseBackupTaskResult, BaseBackupTaskProgress> = (ctx) =>
  // tee writes the tar (or the compressed tar) into `tee` for the check's side; age writes the
  // ciphertext into `age`, which this thread reads.
  withFifos(['tee', 'age'], (fifos) => stream(fifos, ctx));

async function stream(
  fifos: { tee: string; age: string },
  {
    options,
    signal,
    progressFrom,
  }: Parameters<ThreadTask<BaseBackupTaskOptions, never, BaseBackupTaskProgress>>[0],
): Promise<BaseBackupTaskResult> {
  const { plan, env, key, uploadId, firstPartBytes } = options.upload;
  const { compression } = options;
  let estimatedRawBytes: number | undefined;
  let rawBytes = 0;
  const pgbb = startTool('pg_basebackup', options.pgBasebackup.command, options.pgBasebackup.args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.pgBasebackup.env,
    isProgress: (line) => PROGRESS_LINE.test(line),
    onStderr: (text) => {
      const last = [...text.matchAll(/(\d+)\/(\d+) kB/g)].at(-1);
      if (last) estimatedRawBytes = Number(last[2]) * 1024;
    },
  });
  const tee = startTool('tee', 'tee', [fifos.tee], { stdio: [pgbb.child.stdout!, 'pipe', 'pipe'] });
  const zstd =
    compression.by === 'zstd'
      ? startTool('zstd', compression.command, compression.args, {
          stdio: [tee.child.stdout!, 'pipe', 'pipe'],
        })
      : undefined;
  // age writes into a FIFO that this thread reads straight into the parts it uploads.
  const ciphertext = openFifoForChild(fifos.age);
  const age = startTool('age', options.age, ['-e', ...options.recipients.flatMap((r) => ['-r', r])], {
    stdio: [(zstd ?? tee).child.stdout!, ciphertext.writeFd, 'pipe'],
  });
  fs.closeSync(ciphertext.writeFd);
  const unzstd =
    compression.by === 'pg_basebackup'
      ? startTool('zstd -d', compression.zstd, ['-d', '-q', '-c', fifos.tee], {
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : undefined;
  let report = '';
  const check = startTool(
    'tar check',
    process.execPath,
    [
      '--disable-warning=ExperimentalWarning',
      TAR_CHECK,
      ...['--algorithm', options.algorithm, '--name', key],
      ...(unzstd ? [] : ['--input', fifos.tee]),
    ],
    {
      stdio: [unzstd ? unzstd.child.stdout! : 'ignore', 'pipe', 'pipe'],
      onStderr: (text) => {
        const last = [...text.matchAll(TAR_BYTES)].at(-1);
        if (last) rawBytes = Number(last[1]);
      },
      isProgress: (line) => /^tar-bytes \d+$/.test(line),
    },
  );
  check.child.stdout!.setEncoding('utf8');
  check.child.stdout!.on('data', (text: string) => (report += text));
  // Each tool holds its own end of the pipes between them; with ours closed, a tool that stops
  // early makes the one before it fail on its next write instead of blocking forever.
  for (const tool of [pgbb, tee, zstd, unzstd]) tool?.child.stdout!.destroy();
  const tools = [pgbb, tee, zstd, age, unzstd, check].filter((t): t is Tool => t !== undefined);

  let pgExitedAt = 0;
  const pgExited = pgbb.done.then(() => (pgExitedAt = Date.now()));
  let checked: Extract<TarCheckReport, { ok: true }> | undefined;
  // The upload is completed only once every tool has exited 0 and the check has passed.
  const producerOk = Promise.all([pgExited, ...tools.map((t) => t.done)]).then(() => {
    const parsed = JSON.parse(report) as TarCheckReport;
    if (!parsed.ok) throw reportError(parsed);
    checked = parsed;
    rawBytes = parsed.bytes;
  });
  producerOk.catch(() => undefined);
  const writer = new MultipartWriter({
    store: planStore(plan, env, 'primary'),
    key,
    uploadId,
    firstPartBytes,
    beforeComplete: () => producerOk,
  });
  progressFrom(() => ({
    rawBytes,
    estimatedRawBytes,
    storedBytes: writer.bytes,
    partsUploaded: writer.partsUploaded,
  }));
  const upload = writer.readFrom(ciphertext.readFd, signal).finally(() => fs.closeSync(ciphertext.readFd));
  try {
    await allOrKill([upload, producerOk], tools, signal);
  } catch (err) {
    throw signal.aborted ? err : pipelineError(err, pgbb);
  }
  return {
    rawBytes: checked!.bytes,
    ...(checked!.firstByteAt ? { firstByteAt: checked!.firstByteAt } : {}),
    pgExitedAt,
    backupLabel: checked!.backupLabel,
    backupManifest: Buffer.from(checked!.backupManifest, 'base64'),
    stored: { bytes: writer.bytes, sha256: writer.sha256! },
    streamCheck: {
      files: checked!.files,
      walSegments: checked!.walSegments,
      checked: compression.by === 'pg_basebackup' ? 'compressed' : 'tar',
    },
  };
}

/** What went wrong in the pipeline, typed and with pg_basebackup's own words. */
function pipelineError(err: unknown, pgbb: Tool): unknown {
  if (err instanceof LifeboatError) return err;
  if (err instanceof ToolError && err.notFound)
    return new LifeboatError(
      'InvalidInput',
      `${err.message} on this worker: install the PostgreSQL client of the server's major version (or set LIFEBOAT_PG_BINDIR), zstd and age (or LIFEBOAT_ZSTD, LIFEBOAT_AGE)`,
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
