// The incremental backup as data. An incremental seals everything written since its parent (the
// newest backup of the database): it forces a WAL switch, waits until the archiver has stored the
// segment that switch completed, checks that every segment since the parent is in storage, and
// writes a manifest naming them. It copies nothing itself: its cost is reading the WAL written
// since the parent, which grows with what changed, not with the database.
import { z } from 'zod';
import type { KubernetesExportSummary } from './kubernetes-snapshot.ts';
import { parseDuration } from './duration.ts';
import { COMPRESSION_LEVEL, MANIFEST_FORMAT, type BackupManifest } from './manifest.ts';
import { parseLsn } from './lsn.ts';
import { segmentEndLsn, segmentNumber } from './wal.ts';

const duration = z
  .string()
  .refine((s) => parseDuration(s) !== undefined, 'expected a duration such as 30s, 5m or 2h');

export const incrementalBackupInputSchema = z.strictObject({
  /** A database of the plan. */
  database: z.string().min(1),
  requestedBy: z.string().min(1).max(200).optional(),
  /** How long to wait for the archiver to store the sealed segment before failing. */
  archiveTimeout: duration.default('5m'),
});
export type IncrementalBackupInput = z.input<typeof incrementalBackupInputSchema>;

/**
 * Phases of an incremental backup, in order.
 * - `starting`: input validated, the plan read.
 * - `finding-parent`: the newest backup of the database, from its manifests; none fails the run.
 * - `sealing`: pg_switch_wal() on the primary: the WAL up to now ends in a completed segment.
 * - `waiting-for-archive`: until the WAL archiver has stored that segment.
 * - `verifying`: every segment since the parent is in storage, read back, sha256 taken (and with
 *   the age identity, opened and its page header checked).
 * - `writing-manifest`: the manifest, last: only now does the backup exist.
 * - `completed` / `unchanged` (nothing written since the parent: no manifest) / `failed`.
 */
export type IncrementalBackupPhase =
  | 'starting'
  | 'finding-parent'
  | 'sealing'
  | 'waiting-for-archive'
  | 'verifying'
  | 'writing-manifest'
  | 'completed'
  | 'unchanged'
  | 'failed';

export interface IncrementalBackupProgress {
  backupId: string;
  database: string;
  kind: 'incremental';
  phase: IncrementalBackupPhase;
  phaseSince: string;
  startedAt: string;
  parent?: string;
  sealedSegment?: string;
  segments?: number;
  rawBytes?: number;
  storedBytes?: number;
  error?: string;
}

export interface IncrementalBackupResult {
  backupId: string;
  database: string;
  outcome: 'completed' | 'unchanged';
  parent: string;
  startLsn: string;
  stopLsn: string;
  timeline: number;
  segments: number;
  firstSegment?: string;
  lastSegment?: string;
  rawBytes: number;
  storedBytes: number;
  manifestKey?: string;
  durationMs: number;
  /** How long the archiver took to store the sealed segment. */
  archiveWaitMs: number;
  /** The Kubernetes objects exported with the backup, when its policy selects any. */
  kubernetes?: KubernetesExportSummary;
}

/** What pg_switch_wal() sealed, and who the server is. */
export interface SealedWal {
  /** What pg_switch_wal() returned. */
  switchLsn: string;
  /** The segment it completed (the last one holding WAL written before the switch). */
  segment: string;
  timeline: number;
  walSegmentSize: number;
  systemIdentifier: string;
  serverVersion: string;
  versionNum: number;
  at: string;
}

/** One stored segment of the range, as the manifest lists it. */
export interface WalRangeObject {
  segment: string;
  key: string;
  bytes: number;
  sha256: string;
}

export interface WalRangeVerification {
  objects: WalRangeObject[];
  /** Segment numbers' names (on the newest timeline) that no stored object holds. */
  missing: string[];
  rawBytes: number;
  method: 'checksums' | 'content';
  detail: string;
  /** The age recipients the archive is encrypted for (the plan's). */
  recipients: string[];
}

/**
 * The segment numbers an incremental covers: from the one holding the parent's stop LSN to the
 * sealed segment. A parent's stop on a segment boundary (an incremental's is) starts at that
 * boundary's segment, so consecutive incrementals never share one.
 */
export function incrementalSegmentNumbers(
  parentStopLsn: string,
  sealedSegment: string,
  segmentSize: number,
): number[] {
  const first = Number(parseLsn(parentStopLsn) / BigInt(segmentSize));
  const last = segmentNumber(sealedSegment, segmentSize);
  const numbers: number[] = [];
  for (let n = first; n <= last; n++) numbers.push(n);
  return numbers;
}

/** Where an incremental stops: the end of the sealed segment, everything before it is archived. */
export function incrementalStopLsn(sealedSegment: string, segmentSize: number): string {
  return segmentEndLsn(sealedSegment, segmentSize);
}

/** Nothing was written since the parent: the sealed segment ends at or before its stop. */
export function unchangedSince(parentStopLsn: string, sealedSegment: string, segmentSize: number): boolean {
  return parseLsn(incrementalStopLsn(sealedSegment, segmentSize)) <= parseLsn(parentStopLsn);
}

/** The newest backup of a database: the parent of the next incremental. */
export function newestBackup(manifests: BackupManifest[]): BackupManifest | undefined {
  return [...manifests]
    .filter((m) => m.verification.verified)
    .sort(
      (a, b) => Number(parseLsn(a.stop.lsn) - parseLsn(b.stop.lsn)) || a.stop.time.localeCompare(b.stop.time),
    )
    .at(-1);
}

export interface IncrementalManifestInput {
  id: string;
  database: string;
  plan: string;
  workflowId: string;
  runId: string;
  requestedBy?: string;
  parent: BackupManifest;
  sealed: SealedWal;
  range: WalRangeVerification;
  startedAt: Date;
  verifiedAt: Date;
  finishedAt: Date;
  verifyMs: number;
  archiveWaitMs: number;
}

/** The manifest of an incremental; pure, so that a retried write produces the same bytes. */
export function incrementalBackupManifest(input: IncrementalManifestInput): BackupManifest {
  const { parent, sealed, range } = input;
  return {
    format: MANIFEST_FORMAT,
    id: input.id,
    database: input.database,
    kind: 'incremental',
    parent: parent.id,
    plan: input.plan,
    createdBy: {
      workflowId: input.workflowId,
      runId: input.runId,
      ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}),
    },
    postgres: {
      systemIdentifier: sealed.systemIdentifier,
      version: sealed.serverVersion,
      versionNum: sealed.versionNum,
      timeline: sealed.timeline,
      walSegmentSize: sealed.walSegmentSize,
    },
    start: parent.stop,
    stop: { lsn: incrementalStopLsn(sealed.segment, sealed.walSegmentSize), time: sealed.at },
    sizes: { raw: range.rawBytes, stored: range.objects.reduce((n, o) => n + o.bytes, 0) },
    objects: range.objects.map((o) => ({
      key: o.key,
      role: 'wal' as const,
      format: 'zstd+age' as const,
      bytes: o.bytes,
      sha256: o.sha256,
    })),
    encryption: { format: 'age', recipients: range.recipients },
    compression: { format: 'zstd', level: COMPRESSION_LEVEL },
    label: `incremental since ${parent.id}: WAL ${range.objects[0]?.segment ?? '-'}..${range.objects.at(-1)?.segment ?? '-'}, pg_switch_wal() at ${sealed.switchLsn}`,
    timings: {
      startedAt: input.startedAt.toISOString(),
      finishedAt: input.finishedAt.toISOString(),
      totalMs: input.finishedAt.getTime() - input.startedAt.getTime(),
      checkpointMs: 0,
      streamMs: input.archiveWaitMs,
      verifyMs: input.verifyMs,
      attempts: 1,
    },
    verification: {
      verified: true,
      at: input.verifiedAt.toISOString(),
      method: range.method,
      detail: range.detail,
    },
  };
}

/**
 * The stored segment for a position: on the newest timeline not after `timeline` (after a
 * promotion the new timeline repeats the position where it forked).
 */
export function pickStoredSegment(
  stored: Map<number, string[]>,
  segno: number,
  timeline: number,
): string | undefined {
  return (stored.get(segno) ?? [])
    .filter((n) => parseInt(n.slice(0, 8), 16) <= timeline)
    .sort()
    .at(-1);
}
