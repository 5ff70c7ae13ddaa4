// The full backup as data: its input, its phases, what its activities report, and the pure rules
// (upload part sizes, WAL segment names) that both the workflow and the activities rely on.
import { z } from 'zod';
import type { KubernetesExportSummary } from './kubernetes-snapshot.ts';
import { parseLsn } from './lsn.ts';

const MiB = 1024 * 1024;

export const fullBackupInputSchema = z.strictObject({
  /** A database of the plan. */
  database: z.string().min(1),
  requestedBy: z.string().min(1).max(200).optional(),
  /**
   * pg_basebackup's --max-rate: caps how fast the primary's disk is read, e.g. "50M" (MB/s) or
   * "800k"; no unit means kB/s. Unlimited when absent.
   */
  maxRate: z
    .string()
    .regex(/^[1-9]\d*[kM]?$/, 'expected a rate such as 50M or 800k (pg_basebackup --max-rate)')
    .optional(),
  /** `fast` starts at once with an immediate checkpoint; `spread` waits for a gentle one. */
  checkpoint: z.enum(['fast', 'spread']).default('fast'),
  /** Size of the first upload parts; later parts grow so that 10 000 parts hold ~3 TiB. */
  partSizeMiB: z.number().int().min(5).max(512).default(16),
});
export type FullBackupInput = z.input<typeof fullBackupInputSchema>;
export type FullBackupOptions = z.output<typeof fullBackupInputSchema>;

/**
 * Phases of a full backup, in order.
 * - `starting`: input validated, the plan read.
 * - `checking-storage`: the bucket answers; retried with backoff while storage is unreachable.
 * - `streaming`: pg_basebackup → zstd → age → S3 multipart upload, on the primary region's worker;
 *   a crashed attempt is restarted from scratch under a new attempt folder.
 * - `cleaning-up`: uploads and objects of other attempts are aborted and deleted.
 * - `verifying`: every stored object is read back: size, sha256, and (with the age identity) the
 *   content against PostgreSQL's backup_manifest.
 * - `writing-manifest`: the Lifeboat manifest, written last: only now does the backup exist.
 * - `completed` / `failed`: final; a failed backup leaves no object behind.
 */
export type FullBackupPhase =
  | 'starting'
  | 'checking-storage'
  | 'streaming'
  | 'cleaning-up'
  | 'verifying'
  | 'writing-manifest'
  | 'completed'
  | 'failed';

/** What `progressQuery` answers: the workflow's own view. Live byte counts are in heartbeats. */
export interface FullBackupProgress {
  backupId: string;
  database: string;
  /** The database's primary region, where the streaming runs (once the plan is read). */
  region?: string;
  phase: FullBackupPhase;
  /** When the current phase began (workflow time, ISO-8601). */
  phaseSince: string;
  startedAt: string;
  /** Set once streaming is done. */
  rawBytes?: number;
  storedBytes?: number;
  /** Set when the backup failed. */
  error?: string;
}

/** Heartbeat details of the streaming activity: progress, and what a retry must clean up. */
export interface StreamProgress {
  attempt: number;
  key: string;
  uploadId?: string;
  rawBytes: number;
  storedBytes: number;
  partsUploaded: number;
  /** pg_basebackup's own estimate of the tar size, once the server has sent it. */
  estimatedRawBytes?: number;
}

/** Heartbeat details of the verification activity. */
export interface VerifyProgress {
  verifiedBytes: number;
  totalBytes: number;
}

export interface StoredObjectRef {
  /** Relative to the storage location (s3://bucket/prefix), so copies elsewhere stay valid. */
  key: string;
  bytes: number;
  sha256: string;
}

/** What one successful streaming attempt produced. */
export interface BaseBackupResult {
  attempt: number;
  /** The age recipients the backup was encrypted for (public keys). */
  recipients: string[];
  object: StoredObjectRef;
  rawBytes: number;
  postgres: {
    systemIdentifier: string;
    version: string;
    versionNum: number;
    timeline: number;
    walSegmentSize: number;
  };
  startLsn: string;
  stopLsn: string;
  /** From backup_label (the server's clock). */
  startTime: string;
  /** When pg_basebackup finished (the worker's clock). */
  stopTime: string;
  label: string;
  /** PostgreSQL's backup_manifest, kept inside the tar; summarised here. */
  postgresManifest: { checksum: string; files: number };
  /** backup_manifest's per-file checksum algorithm; absent in results from before it was recorded (SHA256). */
  fileChecksums?: string;
  /**
   * Every file of the tar checked against backup_manifest as it streamed, before the object was
   * completed; absent in results from before the check was made there (verification then opens
   * the tar and checks it itself).
   */
  streamCheck?: StreamCheck;
  timings: { checkpointMs: number; streamMs: number };
}

/** The tar's files checked against backup_manifest, and the WAL segments found in pg_wal/. */
export interface StreamCheck {
  files: number;
  /** WAL segment name → size. */
  walSegments: Record<string, number>;
  /**
   * What the check read, and so what is left for verification to prove. `compressed`: the very
   * bytes age encrypted (one stream teed to the check's `zstd -d` and to age), so opening the
   * stored object, whose sha256 is the upload's, is all that is left. `tar`: the tar before a
   * zstd process compressed it, so verification decompresses against zstd's own checksum. Absent
   * in results from before the field: by `compressedSha256`, else as `tar`.
   */
  checked?: 'compressed' | 'tar';
  /**
   * sha256 of the compressed tar, in results from before `checked` (the check decompressed the
   * bytes age encrypted in Node): verification compares the decrypted bytes with it.
   */
  compressedSha256?: string;
}

export interface VerificationResult {
  method: 'checksums' | 'content';
  verifiedBytes: number;
  /** For `content`: data files checked against backup_manifest, WAL segments found. */
  files?: number;
  walSegments?: number;
  detail: string;
}

/** What fullBackupWorkflow returns. */
export interface FullBackupResult {
  backupId: string;
  database: string;
  manifestKey: string;
  startLsn: string;
  stopLsn: string;
  timeline: number;
  rawBytes: number;
  storedBytes: number;
  /** Streaming attempts (more than one after a lost worker). */
  attempts: number;
  durationMs: number;
  streamMs: number;
  verification: { method: VerificationResult['method']; detail: string };
  /** The Kubernetes objects exported with the backup, when its policy selects any. */
  kubernetes?: KubernetesExportSummary;
}

export interface CleanUpResult {
  abortedUploads: number;
  deletedObjects: number;
}

/** The size of upload part `partNumber` (1-based) when the first parts are `firstPartBytes`. */
export function partSize(partNumber: number, firstPartBytes: number): number {
  // S3 allows 10 000 parts per upload. Doubling the size every 1000 parts (up to 512 MiB) keeps
  // small backups in small parts and memory bounded, yet lets 16 MiB parts add up to ~2.9 TiB.
  const doublings = Math.floor((partNumber - 1) / 1000);
  return Math.min(firstPartBytes * 2 ** doublings, Math.max(512 * MiB, firstPartBytes));
}
export const MAX_PARTS = 10_000;

/** The name of the WAL segment holding `lsn`, e.g. 000000010000000000000003. */
export function walSegmentName(timeline: number, lsn: string, segmentSize: number): string {
  const segNo = parseLsn(lsn) / BigInt(segmentSize);
  const perId = 0x1_0000_0000n / BigInt(segmentSize);
  const hex = (n: bigint | number) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timeline)}${hex(segNo / perId)}${hex(segNo % perId)}`;
}

/** Every segment from the one holding `startLsn` to the one holding `stopLsn`, inclusive. */
export function walSegmentsBetween(
  timeline: number,
  startLsn: string,
  stopLsn: string,
  segmentSize: number,
): string[] {
  const size = BigInt(segmentSize);
  const first = parseLsn(startLsn) / size;
  // A stop LSN on a segment boundary ends in the previous segment (PostgreSQL's XLByteToPrevSeg).
  const stop = parseLsn(stopLsn);
  const last = stop > 0n ? (stop - 1n) / size : 0n;
  const names: string[] = [];
  for (let seg = first; seg <= (last < first ? first : last); seg++) {
    const lsn = seg * size;
    names.push(
      walSegmentName(
        timeline,
        `${(lsn >> 32n).toString(16)}/${(lsn & 0xffffffffn).toString(16)}`,
        segmentSize,
      ),
    );
  }
  return names;
}
