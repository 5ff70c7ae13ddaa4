// The Lifeboat manifest: one JSON document per backup, written once and last, under
// repository.manifest(). A backup without one is incomplete by definition; the catalog is the
// list of manifests. It holds no secret (age recipients are public keys), so it is stored in
// clear and the catalog can be read without the decryption key.
import { z } from 'zod';
import type { BaseBackupResult, VerificationResult } from './backup.ts';

export const MANIFEST_FORMAT = 'lifeboat-backup-manifest/v1';

const lsn = z.string().regex(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/, 'expected an LSN such as 0/3000028');
const isoTime = z.iso.datetime({ offset: true });
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a hex sha256');
const bytes = z.number().int().min(0);

export const backupManifestSchema = z.strictObject({
  format: z.literal(MANIFEST_FORMAT),
  id: z.string().min(1),
  database: z.string().min(1),
  kind: z.enum(['full', 'incremental']),
  /** The backup this one builds on: null for a full backup. */
  parent: z.string().min(1).nullable(),
  plan: z.string().min(1),
  createdBy: z.strictObject({
    workflowId: z.string().min(1),
    runId: z.string().min(1),
    requestedBy: z.string().optional(),
  }),
  postgres: z.strictObject({
    /** pg_control's system identifier: a restore or a WAL segment from another cluster is refused. */
    systemIdentifier: z.string().regex(/^\d+$/),
    version: z.string().min(1),
    versionNum: z.number().int().min(90000),
    timeline: z.number().int().min(1),
    walSegmentSize: z.number().int().min(1),
  }),
  /** The WAL range the backup needs: replaying from start to stop makes it consistent. */
  start: z.strictObject({ lsn, time: isoTime }),
  stop: z.strictObject({ lsn, time: isoTime }),
  sizes: z.strictObject({ raw: bytes, stored: bytes }),
  /** Every stored object of the backup, keys relative to the storage location. */
  objects: z
    .array(
      z.strictObject({
        key: z.string().min(1),
        role: z.enum(['base', 'wal', 'kubernetes']),
        /** `zstd+age`: a WAL segment the archiver stored, referenced by an incremental backup. */
        format: z.enum(['tar+zstd+age', 'json+zstd+age', 'zstd+age']),
        bytes,
        sha256,
      }),
    )
    .min(1),
  encryption: z.strictObject({ format: z.literal('age'), recipients: z.array(z.string()).min(1) }),
  compression: z.strictObject({ format: z.literal('zstd'), level: z.number().int() }),
  /** PostgreSQL's own backup_manifest, kept as the last member of the base tar (full backups only). */
  postgresManifest: z
    .strictObject({
      member: z.literal('backup_manifest'),
      checksum: sha256,
      files: z.number().int().min(0),
    })
    .optional(),
  label: z.string(),
  timings: z.strictObject({
    startedAt: isoTime,
    finishedAt: isoTime,
    totalMs: bytes,
    checkpointMs: bytes,
    streamMs: bytes,
    verifyMs: bytes,
    /** How many streaming attempts it took (more than one after a crash or a lost worker). */
    attempts: z.number().int().min(1),
  }),
  verification: z.strictObject({
    verified: z.boolean(),
    at: isoTime,
    method: z.enum(['checksums', 'content']),
    detail: z.string(),
  }),
  /**
   * The Kubernetes objects exported with the backup: its snapshot index (objects by keyed hash, stored
   * once each under the cluster's folder). Absent when the policy selects none, and in manifests
   * written before the export existed.
   */
  kubernetes: z
    .strictObject({
      cluster: z.string().min(1),
      snapshot: z.string().min(1),
      snapshotSha256: sha256,
      parent: z.string().min(1).nullable(),
      objects: z.number().int().min(0),
      newObjects: z.number().int().min(0),
      deletions: z.number().int().min(0),
      storedBytes: bytes,
    })
    .optional(),
});
export type BackupManifest = z.output<typeof backupManifestSchema>;

export const COMPRESSION_LEVEL = 3;

export interface FullManifestInput {
  id: string;
  database: string;
  plan: string;
  workflowId: string;
  runId: string;
  requestedBy?: string;
  recipients: string[];
  base: BaseBackupResult;
  verification: VerificationResult;
  startedAt: Date;
  verifiedAt: Date;
  finishedAt: Date;
  verifyMs: number;
}

/** The manifest of a full backup; pure, so that a retried write produces the same bytes. */
export function fullBackupManifest(input: FullManifestInput): BackupManifest {
  const { base } = input;
  return {
    format: MANIFEST_FORMAT,
    id: input.id,
    database: input.database,
    kind: 'full',
    parent: null,
    plan: input.plan,
    createdBy: {
      workflowId: input.workflowId,
      runId: input.runId,
      ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}),
    },
    postgres: base.postgres,
    start: { lsn: base.startLsn, time: base.startTime },
    stop: { lsn: base.stopLsn, time: base.stopTime },
    sizes: { raw: base.rawBytes, stored: base.object.bytes },
    objects: [{ ...base.object, role: 'base', format: 'tar+zstd+age' }],
    encryption: { format: 'age', recipients: input.recipients },
    compression: { format: 'zstd', level: COMPRESSION_LEVEL },
    postgresManifest: { member: 'backup_manifest', ...base.postgresManifest },
    label: base.label,
    timings: {
      startedAt: input.startedAt.toISOString(),
      finishedAt: input.finishedAt.toISOString(),
      totalMs: input.finishedAt.getTime() - input.startedAt.getTime(),
      checkpointMs: base.timings.checkpointMs,
      streamMs: base.timings.streamMs,
      verifyMs: input.verifyMs,
      attempts: base.attempt,
    },
    verification: {
      verified: true,
      at: input.verifiedAt.toISOString(),
      method: input.verification.method,
      detail: input.verification.detail,
    },
  };
}

/** The manifest's stored bytes: stable key order and a final newline. */
export function serializeManifest(manifest: BackupManifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** A manifest read back from storage, or every problem with it. */
export function parseManifest(
  text: string,
): { ok: true; manifest: BackupManifest } | { ok: false; problems: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, problems: [`not JSON: ${(err as Error).message}`] };
  }
  const parsed = backupManifestSchema.safeParse(raw);
  if (parsed.success) return { ok: true, manifest: parsed.data };
  return {
    ok: false,
    problems: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
  };
}

/** One catalog row: what `lifeboat backups list` shows. */
export interface CatalogEntry {
  id: string;
  kind: 'full' | 'incremental';
  parent: string | null;
  time: string;
  startLsn: string;
  stopLsn: string;
  timeline: number;
  rawBytes: number;
  storedBytes: number;
  verified: boolean;
  verifiedAt: string;
  durationMs: number;
}

export function catalogEntry(m: BackupManifest): CatalogEntry {
  return {
    id: m.id,
    kind: m.kind,
    parent: m.parent,
    time: m.stop.time,
    startLsn: m.start.lsn,
    stopLsn: m.stop.lsn,
    timeline: m.postgres.timeline,
    rawBytes: m.sizes.raw,
    storedBytes: m.sizes.stored,
    verified: m.verification.verified,
    verifiedAt: m.verification.at,
    durationMs: m.timings.totalMs,
  };
}
