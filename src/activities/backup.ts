// Backup activities: PostgreSQL's base backup streamed into the repository, then read back.
// streamBaseBackup runs on the task queue of the database's primary region (it runs
// pg_basebackup against that server); the others touch only storage and run anywhere.
import fs from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import {
  walSegmentsBetween,
  type BaseBackupResult,
  type CleanUpResult,
  type FullBackupOptions,
  type StoredObjectRef,
  type StreamCheck,
  type StreamProgress,
  type VerificationResult,
  type VerifyProgress,
} from '../domain/backup.ts';
import { LifeboatError } from '../domain/errors.ts';
import {
  backupManifestSchema,
  COMPRESSION_LEVEL,
  serializeManifest,
  type BackupManifest,
} from '../domain/manifest.ts';
import { dbnameOf, type Plan, type PostgresConnection } from '../domain/plan.ts';
import { BASE_BACKUP_FILE, repository } from '../domain/repository.ts';
import { readCatalog, type Catalog } from './catalog.ts';
import type {
  BaseBackupTaskOptions,
  BaseBackupTaskProgress,
  BaseBackupTaskResult,
} from './pipeline/base-backup-task.ts';
import type { ContentCheckTaskOptions, ContentCheckTaskResult } from './pipeline/content-check-task.ts';
import { binaries } from './pipeline/binaries.ts';
import { runInThread } from './pipeline/in-thread.ts';
import { parseRecipient } from './pipeline/age.ts';
import {
  FILE_CHECKSUM_ALGORITHMS,
  isFileChecksumAlgorithm,
  type FileChecksumAlgorithm,
} from './pipeline/file-checksum.ts';
import { parsePostgresManifest, type ContentCheck } from './postgres-manifest.ts';
import { requireEnv, type Environment } from './ports/environment.ts';
import type { ObjectStore, PresignedGet } from './ports/object-store.ts';
import { connectPostgres } from './ports/postgres.ts';
import type { StorageLocationName } from './storage.ts';
import { storageError } from './storage-error.ts';
import { backupMetrics } from './backup-metrics.ts';

const MiB = 1024 * 1024;
/** zstd threads: DESIGN.md measured 2 threads at 440 MB/s in, the pipeline's bound. */
const ZSTD_THREADS = 2;
/** backup_manifest's per-file checksums, asked of pg_basebackup. */
const FILE_CHECKSUMS: FileChecksumAlgorithm = 'CRC32C';
const HEARTBEAT_EVERY_MS = 1000;
/** How long verification's presigned URL of an object is valid: curl starts at once. */
const READ_BACK_URL_VALID_S = 15 * 60;
const BASE_BACKUP_TASK = new URL('./pipeline/base-backup-task.ts', import.meta.url);
const CONTENT_CHECK_TASK = new URL('./pipeline/content-check-task.ts', import.meta.url);

export interface BackupDeps {
  plan: Plan;
  env: Environment;
  stores: Partial<Record<StorageLocationName, ObjectStore>>;
}

export function createBackupActivities(deps: BackupDeps) {
  const primaryStore = (): ObjectStore => {
    const store = deps.stores.primary;
    if (!store) throw new LifeboatError('InvalidInput', 'the plan has no primary storage location');
    return store;
  };
  const where = () => deps.plan.storage.primary.url;

  return {
    /** The primary bucket answers and lets us in; retried by the workflow while it does not. */
    async checkBackupStorage(): Promise<void> {
      let lockProblem: string | undefined;
      try {
        await primaryStore().headBucket();
        lockProblem = await primaryStore().objectLockProblem();
      } catch (err) {
        throw storageError(err, `storage ${where()}`);
      }
      // Written unlocked, a backup could be deleted by anyone holding the worker's credentials.
      if (lockProblem) throw new LifeboatError('InvalidInput', `storage ${where()}: ${lockProblem}`);
    },

    /**
     * pg_basebackup (tar, WAL fetched into it) → zstd → age → S3 multipart upload, never staged on
     * disk. Each attempt writes under its own attempt folder after discarding whatever earlier
     * attempts of this backup left: nothing under the backup's folder is part of a backup until
     * the manifest names it. Heartbeats carry byte counts and the upload a retry must abort.
     */
    async streamBaseBackup(input: {
      database: string;
      backupId: string;
      options: FullBackupOptions;
    }): Promise<BaseBackupResult> {
      const ctx = Context.current();
      const attempt = ctx.info.attempt;
      const db = deps.plan.databases[input.database];
      if (!db) throw new LifeboatError('UnknownReference', `database "${input.database}" is not in the plan`);
      const region = deps.plan.regions[db.primaryRegion]!;
      const store = primaryStore();
      const recipients = loadRecipients(deps.plan);

      const previous = ctx.info.heartbeatDetails as StreamProgress | undefined;
      try {
        if (previous?.uploadId) await store.abortMultipartUpload(previous.key, previous.uploadId);
        await removeUnder(store, backupFolder(input.database, input.backupId), []);
      } catch (err) {
        throw storageError(err, `cleaning up earlier attempts under ${where()}`);
      }

      const facts = await postgresFacts(region.postgres, dbnameOf(deps.plan, input.database), deps.env);
      const key = repository.backupAttemptObject(
        '',
        input.database,
        input.backupId,
        attempt,
        BASE_BACKUP_FILE,
      );
      let uploadId: string;
      try {
        uploadId = await store.createMultipartUpload(key);
      } catch (err) {
        throw storageError(err, `starting the upload to ${where()}`);
      }
      const progress: StreamProgress = {
        attempt,
        key,
        uploadId,
        rawBytes: 0,
        storedBytes: 0,
        partsUploaded: 0,
      };
      ctx.heartbeat(progress);

      const started = Date.now();
      const password = region.postgres.passwordEnv
        ? requireEnv(deps.env, region.postgres.passwordEnv, `the password of ${region.postgres.user}`)
        : undefined;
      // pg_basebackup compresses by itself from PostgreSQL 15 on.
      const clientZstd = facts.versionNum >= 150000;
      const pgArgs = [
        ...['-h', region.postgres.host, '-p', String(region.postgres.port), '-U', region.postgres.user],
        ...['-D', '-', '-F', 't', '-X', 'fetch', '-c', input.options.checkpoint],
        // Hardware CRC32C on the server; verification computes the same (file-checksum.ts).
        `--manifest-checksums=${FILE_CHECKSUMS}`,
        ...['-l', `lifeboat ${input.backupId}`],
        ...(input.options.maxRate ? ['-r', input.options.maxRate] : []),
        // Compressed inside pg_basebackup (libzstd, its own threads): 2.9-3.3 s for the
        // benchmark's tar against 5.1 s piped into `zstd -T2`, the same bytes stored.
        ...(clientZstd ? [`--compress=client-zstd:level=${COMPRESSION_LEVEL},workers=${ZSTD_THREADS}`] : []),
        '--no-password',
        '--verbose',
        '--progress',
      ];
      const tools = binaries(deps.env);
      const thread = runInThread<BaseBackupTaskOptions, BaseBackupTaskResult, BaseBackupTaskProgress>(
        BASE_BACKUP_TASK,
        {
          pgBasebackup: {
            command: pgBinary(deps.env, facts.versionNum, 'pg_basebackup'),
            args: pgArgs,
            env: {
              PATH: process.env.PATH,
              ...(password ? { PGPASSWORD: password } : {}),
              PGSSLMODE: region.postgres.sslMode === 'verify-full' ? 'verify-full' : region.postgres.sslMode,
              ...(region.postgres.caFile ? { PGSSLROOTCERT: region.postgres.caFile } : {}),
              PGCONNECT_TIMEOUT: '10',
              PGAPPNAME: 'lifeboat-backup',
            },
          },
          compression: clientZstd
            ? { by: 'pg_basebackup', zstd: tools.zstd }
            : {
                by: 'zstd',
                command: tools.zstd,
                args: [`-${COMPRESSION_LEVEL}`, `-T${ZSTD_THREADS}`, '-q', '-c'],
              },
          age: tools.age,
          recipients,
          algorithm: FILE_CHECKSUMS,
          upload: {
            plan: deps.plan,
            env: { ...deps.env },
            key,
            uploadId,
            firstPartBytes: input.options.partSizeMiB * MiB,
          },
        },
      );
      const onCancel = () => thread.abort(new Error(`cancelled: ${String(ctx.cancellationSignal.reason)}`));
      ctx.cancellationSignal.addEventListener('abort', onCancel);
      const beat = setInterval(() => {
        Object.assign(progress, thread.progress());
        ctx.heartbeat(progress);
      }, HEARTBEAT_EVERY_MS);
      let produced: BaseBackupTaskResult;
      try {
        produced = await thread.result;
      } catch (err) {
        await store.abortMultipartUpload(key, uploadId).catch(() => undefined);
        // A cancelled activity must end as cancelled (not failed), once its upload is aborted.
        if (ctx.cancellationSignal.aborted) throw cancelledFailure(ctx.cancellationSignal.reason);
        throw err;
      } finally {
        clearInterval(beat);
        ctx.cancellationSignal.removeEventListener('abort', onCancel);
      }

      const label = parseBackupLabel(produced.backupLabel);
      const pgManifest = parsePostgresManifest(Buffer.from(produced.backupManifest));
      return {
        attempt,
        recipients,
        object: { key, ...produced.stored },
        rawBytes: produced.rawBytes,
        postgres: { ...facts, timeline: label.timeline },
        startLsn: label.startLsn,
        stopLsn: pgManifest.stopLsn,
        startTime: label.startTime ?? new Date(produced.firstByteAt ?? started).toISOString(),
        stopTime: new Date(produced.pgExitedAt || Date.now()).toISOString(),
        label: label.label,
        postgresManifest: { checksum: pgManifest.checksum, files: pgManifest.files },
        fileChecksums: FILE_CHECKSUMS,
        streamCheck: produced.streamCheck,
        timings: {
          checkpointMs: (produced.firstByteAt ?? started) - started,
          streamMs: Date.now() - started,
        },
      };
    },

    /**
     * Aborts every unfinished upload under the backup's folder and deletes every object there
     * except `keep`: what crashed or lost attempts left behind. Idempotent.
     */
    async cleanUpBackup(input: {
      database: string;
      backupId: string;
      keep: string[];
    }): Promise<CleanUpResult> {
      try {
        return await removeUnder(primaryStore(), backupFolder(input.database, input.backupId), input.keep);
      } catch (err) {
        throw storageError(err, `cleaning up ${backupFolder(input.database, input.backupId)}`);
      }
    },

    /**
     * Removes everything of a backup that has no manifest (a failed or cancelled run). A backup
     * whose manifest exists is complete and is left alone, whatever the workflow believed.
     */
    async discardUnfinishedBackup(input: { database: string; backupId: string }): Promise<CleanUpResult> {
      const store = primaryStore();
      try {
        if (await store.head(repository.manifest('', input.database, input.backupId)))
          return { abortedUploads: 0, deletedObjects: 0 };
        return await removeUnder(store, backupFolder(input.database, input.backupId), []);
      } catch (err) {
        throw storageError(err, `removing the unfinished backup ${input.backupId}`);
      }
    },

    /**
     * Reads every stored object back: size and sha256 against what the upload computed. With the
     * age identity in this worker's environment, also opens it: decrypted and decompressed, and
     * when its files were not checked as they streamed (a result from before that), every file
     * checked here against PostgreSQL's backup_manifest. Either way the WAL from start to stop
     * must be inside.
     */
    async verifyBackup(input: {
      objects: StoredObjectRef[];
      timeline: number;
      startLsn: string;
      stopLsn: string;
      walSegmentSize: number;
      /** backup_manifest's per-file algorithm; absent: SHA256, what streams used before it was passed. */
      fileChecksums?: string;
      /** The base backup's files as checked while it streamed; absent: checked here. */
      streamCheck?: StreamCheck;
    }): Promise<VerificationResult> {
      const ctx = Context.current();
      const store = primaryStore();
      const identityEnv = deps.plan.storage.encryption.identityEnv;
      const identity = deps.env[identityEnv];
      const algorithm = input.fileChecksums ?? 'SHA256';
      if (!isFileChecksumAlgorithm(algorithm))
        throw new LifeboatError(
          'InvalidInput',
          `file checksums "${algorithm}" are not one of ${FILE_CHECKSUM_ALGORITHMS.join(', ')}`,
        );
      const progress: VerifyProgress = {
        verifiedBytes: 0,
        totalBytes: input.objects.reduce((n, o) => n + o.bytes, 0),
      };
      const beat = setInterval(() => ctx.heartbeat(progress), HEARTBEAT_EVERY_MS);
      const inside = whatIsLeftInside(input.streamCheck);
      const expectedWal = walSegmentsBetween(
        input.timeline,
        input.startLsn,
        input.stopLsn,
        input.walSegmentSize,
      );
      const walPresent = (key: string, wal: ReadonlyMap<string, number>) => {
        const missing = expectedWal.filter((s) => wal.get(s) !== input.walSegmentSize);
        if (missing.length)
          throw new LifeboatError(
            'IntegrityError',
            `${key} lacks WAL the backup needs: ${missing.join(', ')} (missing or not ${input.walSegmentSize} bytes)`,
          );
        return expectedWal.length;
      };
      let files = 0;
      let walSegments = 0;
      if (input.streamCheck) {
        files = input.streamCheck.files;
        walSegments = walPresent(
          input.objects[0]?.key ?? 'the base backup',
          new Map(Object.entries(input.streamCheck.walSegments)),
        );
      }
      try {
        for (const object of input.objects) {
          let head;
          try {
            head = await store.head(object.key);
          } catch (err) {
            throw storageError(err, `reading ${object.key} back`);
          }
          if (!head) throw new LifeboatError('IntegrityError', `${object.key} is missing from storage`);
          if (head.size !== object.bytes)
            throw new LifeboatError(
              'IntegrityError',
              `${object.key} is ${head.size} bytes in storage, ${object.bytes} were written`,
            );
          const checked = await readBack(
            object,
            { identity, inside, algorithm, store, env: deps.env },
            progress,
            ctx.cancellationSignal,
          );
          if (checked.content) {
            files += checked.content.files;
            walSegments += walPresent(object.key, checked.content.wal);
          }
        }
      } finally {
        clearInterval(beat);
      }
      const mb = (progress.totalBytes / MiB).toFixed(1);
      const filesChecked = input.streamCheck
        ? `${files} files matched backup_manifest as they streamed, ${walSegments} WAL segment(s) from ${input.startLsn} to ${input.stopLsn} present`
        : `${files} files match backup_manifest, ${walSegments} WAL segment(s) from ${input.startLsn} to ${input.stopLsn} present`;
      if (identity)
        return {
          method: 'content',
          verifiedBytes: progress.verifiedBytes,
          files,
          walSegments,
          detail: `${input.objects.length} object(s), ${mb} MiB: sizes and sha256 match; ${OPENED[typeof inside === 'object' ? 'compressedSha256' : inside]}; ${filesChecked}`,
        };
      return {
        method: 'checksums',
        verifiedBytes: progress.verifiedBytes,
        ...(input.streamCheck ? { files, walSegments } : {}),
        detail: `${input.objects.length} object(s), ${mb} MiB: sizes and sha256 match${input.streamCheck ? `; ${filesChecked}` : ''} (not opened: ${identityEnv} is not set on this worker)`,
      };
    },

    /** The database's catalog, from its manifests (oldest first). */
    async listBackups(input: { database: string }): Promise<Catalog> {
      try {
        return await readCatalog(primaryStore(), input.database);
      } catch (err) {
        throw storageError(err, `listing the manifests of ${input.database}`);
      }
    },

    /**
     * Writes the manifest, once. A retry that finds the same bytes already there succeeds; a
     * different manifest under the same key is never overwritten.
     */
    async writeBackupManifest(input: { manifest: BackupManifest }): Promise<{ key: string }> {
      const manifest = backupManifestSchema.parse(input.manifest);
      const key = repository.manifest('', manifest.database, manifest.id);
      const body = serializeManifest(manifest);
      const store = primaryStore();
      try {
        if (await store.head(key)) {
          const existing = Buffer.from(await store.get(key)).toString('utf8');
          if (existing === body) return { key };
          throw new LifeboatError(
            'IntegrityError',
            `a different manifest already exists at ${key}; not overwritten`,
          );
        }
        await store.put(key, body);
      } catch (err) {
        if (err instanceof LifeboatError) throw err;
        throw storageError(err, `writing the manifest ${key}`);
      }
      backupMetrics()?.succeeded(manifest);
      return { key };
    },
  };
}

export type BackupActivities = ReturnType<typeof createBackupActivities>;

const backupFolder = (database: string, id: string) => `${repository.backupFolder('', database, id)}/`;

/** Aborts the unfinished uploads and deletes the objects under `folder`, except `keep`. */
async function removeUnder(store: ObjectStore, folder: string, keep: string[]): Promise<CleanUpResult> {
  const uploads = await store.listMultipartUploads(folder);
  for (const u of uploads) await store.abortMultipartUpload(u.key, u.uploadId);
  const stray = (await store.list(folder)).filter((o) => !keep.includes(o.key));
  for (const o of stray) await store.delete(o.key);
  return { abortedUploads: uploads.length, deletedObjects: stray.length };
}

/** The plan's age recipients: inline, or the `age1…` lines of recipientsFile. */
export function loadRecipients(plan: Plan): string[] {
  const enc = plan.storage.encryption;
  let recipients = enc.recipients ?? [];
  if (enc.recipientsFile) {
    let text: string;
    try {
      text = fs.readFileSync(enc.recipientsFile, 'utf8');
    } catch (err) {
      throw new LifeboatError(
        'InvalidInput',
        `storage.encryption.recipientsFile: cannot read ${enc.recipientsFile}: ${(err as Error).message}`,
      );
    }
    recipients = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('age1'));
  }
  if (recipients.length === 0)
    throw new LifeboatError('InvalidInput', 'storage.encryption: no age recipient (age1…) to encrypt for');
  for (const r of recipients) {
    try {
      parseRecipient(r);
    } catch (err) {
      throw new LifeboatError('InvalidInput', `storage.encryption: ${(err as Error).message}`);
    }
  }
  return recipients;
}

interface PostgresFacts {
  systemIdentifier: string;
  version: string;
  versionNum: number;
  walSegmentSize: number;
}

async function postgresFacts(
  conn: PostgresConnection,
  dbname: string,
  env: Environment,
): Promise<PostgresFacts> {
  let client;
  try {
    client = await connectPostgres(conn, dbname, env, 10_000);
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    const code = (err as { code?: string }).code;
    // 28P01 invalid_password, 28000 invalid_authorization_specification
    if (code === '28P01' || code === '28000')
      throw new LifeboatError(
        'AccessDenied',
        `${conn.user}@${conn.host}:${conn.port}: ${(err as Error).message}`,
      );
    throw new LifeboatError(
      'Unreachable',
      `PostgreSQL at ${conn.host}:${conn.port}: ${(err as Error).message}`,
    );
  }
  try {
    const { rows } = await client.query<{ sysid: string; version: string; num: number; seg: string }>(
      `select system_identifier::text as sysid, current_setting('server_version') as version,
              current_setting('server_version_num')::int as num,
              (select setting from pg_settings where name = 'wal_segment_size') as seg
         from pg_control_system()`,
    );
    const r = rows[0]!;
    return {
      systemIdentifier: r.sysid,
      version: r.version,
      versionNum: r.num,
      walSegmentSize: Number(r.seg),
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The server's major version's pg_basebackup (Debian's layout), unless LIFEBOAT_PG_BINDIR says. */
function pgBinary(env: Environment, versionNum: number, name: string): string {
  if (env.LIFEBOAT_PG_BINDIR) return path.join(env.LIFEBOAT_PG_BINDIR, name);
  const debian = `/usr/lib/postgresql/${Math.floor(versionNum / 10000)}/bin/${name}`;
  return fs.existsSync(debian) ? debian : name;
}

/** START WAL LOCATION, START TIME, START TIMELINE and LABEL of a backup_label file. */
export function parseBackupLabel(text: string): {
  startLsn: string;
  timeline: number;
  startTime?: string;
  label: string;
} {
  const field = (name: string) => new RegExp(`^${name}: (.*)$`, 'm').exec(text)?.[1]?.trim();
  const startLsn = /^([0-9A-F]+\/[0-9A-F]+)/.exec(field('START WAL LOCATION') ?? '')?.[1];
  const timeline = Number(field('START TIMELINE'));
  if (!startLsn || !Number.isInteger(timeline) || timeline < 1)
    throw new Error(`backup_label from pg_basebackup is not as expected:\n${text.slice(0, 500)}`);
  // The server writes START TIME in its log_timezone; only UTC/GMT is unambiguous.
  const time = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) (UTC|GMT)$/.exec(field('START TIME') ?? '');
  return {
    startLsn,
    timeline,
    startTime: time ? new Date(`${time[1]}T${time[2]}Z`).toISOString() : undefined,
    label: field('LABEL') ?? '',
  };
}

/** What opening a stored base backup must still prove, from what its stream check read. */
function whatIsLeftInside(streamCheck: StreamCheck | undefined): ContentCheckTaskOptions['inside'] {
  if (!streamCheck) return 'files';
  if (streamCheck.checked === 'compressed') return 'opens';
  if (streamCheck.compressedSha256) return { compressedSha256: streamCheck.compressedSha256 };
  return 'zstd-checksum';
}

/** How verification's detail says the object was opened, by what was left to prove inside. */
const OPENED: Record<'opens' | 'zstd-checksum' | 'compressedSha256' | 'files', string> = {
  opens:
    'decrypted by age (every chunk authenticated): the very bytes whose files were checked as they streamed',
  'zstd-checksum': "decrypted, decompressed with zstd's checksum of the tar matching",
  compressedSha256:
    'decrypted to the very compressed tar that was decompressed and checked as it streamed (sha256 matches)',
  files: 'decrypted, decompressed',
};

/**
 * Reads an object back in a pipeline thread: its sha256 and size; with the identity, also opened
 * and, inside, what `inside` says is left to prove.
 */
async function readBack(
  object: StoredObjectRef,
  check: {
    identity: string | undefined;
    inside: ContentCheckTaskOptions['inside'];
    algorithm: FileChecksumAlgorithm;
    store: ObjectStore;
    env: Environment;
  },
  progress: VerifyProgress,
  cancelled: AbortSignal,
): Promise<{ content?: ContentCheck }> {
  let source: PresignedGet;
  try {
    source = await check.store.presignGet(object.key, READ_BACK_URL_VALID_S);
  } catch (err) {
    throw storageError(err, `reading ${object.key} back`);
  }
  const thread = runInThread<ContentCheckTaskOptions, ContentCheckTaskResult, number>(CONTENT_CHECK_TASK, {
    identity: check.identity,
    inside: check.inside,
    binaries: binaries(check.env),
    algorithm: check.algorithm,
    key: object.key,
    source,
  });
  const before = progress.verifiedBytes;
  const beat = setInterval(() => (progress.verifiedBytes = before + (thread.progress() ?? 0)), 250);
  const onCancel = () => thread.abort(cancelled.reason);
  cancelled.addEventListener('abort', onCancel);
  let read: ContentCheckTaskResult;
  try {
    read = await thread.result;
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    if (cancelled.aborted) throw cancelledFailure(cancelled.reason);
    throw new LifeboatError('IntegrityError', `${object.key} does not open: ${(err as Error).message}`);
  } finally {
    clearInterval(beat);
    cancelled.removeEventListener('abort', onCancel);
    progress.verifiedBytes = before + (thread.progress() ?? 0);
  }
  if (read.bytes !== object.bytes || read.sha256 !== object.sha256)
    throw new LifeboatError(
      'IntegrityError',
      `${object.key} read back as ${read.bytes} bytes with sha256 ${read.sha256}; ${object.bytes} bytes with sha256 ${object.sha256} were written`,
    );
  return { content: read.content };
}

function cancelledFailure(reason: unknown): CancelledFailure {
  return reason instanceof CancelledFailure ? reason : new CancelledFailure(String(reason));
}
