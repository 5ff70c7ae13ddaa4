// The second copy (3-2-1): an object complete on the primary location is copied to the plan's
// secondary location, write-once. Streamed GET → PUT / multipart, never staged on disk: the
// secondary may be another endpoint or region, where server-side CopyObject cannot reach.
import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { LifeboatError } from '../domain/errors.ts';
import { parseSnapshot } from '../domain/kubernetes-snapshot.ts';
import { parseManifest, type BackupManifest } from '../domain/manifest.ts';
import { repository } from '../domain/repository.ts';
import type { CompletedPart, ObjectStore } from './ports/object-store.ts';
import type { StorageLocationName } from './storage.ts';

/** Multipart part size of a copy: S3 wants at least 5 MiB per part but the last. */
const PART_BYTES = 16 * 1024 * 1024;
const HEARTBEAT_MS = 2000;

export interface CopyResult {
  /** `copied` now, or `present`: the secondary already held the identical object. */
  outcome: 'copied' | 'present';
  bytes: number;
  sha256: string;
}

export interface SecondCopyResult {
  location: string;
  objects: number;
  copied: number;
  present: number;
  bytes: number;
  copyMs: number;
}

const where = (store: ObjectStore, key: string) =>
  `s3://${store.bucket}/${store.prefix ? `${store.prefix}/` : ''}${key}`;

/** The sha256 (hex) and size of a stored object, read as a stream. */
export async function hashStored(
  store: ObjectStore,
  key: string,
  onBytes?: (n: number) => void,
): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of await store.getStream(key)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
    onBytes?.((chunk as Buffer).length);
  }
  return { sha256: hash.digest('hex'), bytes };
}

/**
 * Copies `key` from one store to the other, write-once: an identical object already there is
 * success; a different one is an IntegrityError and is never overwritten. When `expectedSha256` is
 * given (the manifest's checksum) the source must match it before the copy is completed, so a
 * damaged primary object is not spread; the copy is read back and checked in every case.
 */
export async function copyObject(
  from: ObjectStore,
  to: ObjectStore,
  key: string,
  opts: { expectedSha256?: string; onBytes?: (n: number) => void } = {},
): Promise<CopyResult> {
  const existing = await to.head(key);
  if (existing) {
    const expected = opts.expectedSha256 ?? (await hashStored(from, key)).sha256;
    const there = await hashStored(to, key, opts.onBytes);
    if (there.sha256 !== expected)
      throw new LifeboatError(
        'IntegrityError',
        `${where(to, key)} already exists and differs from ${where(from, key)} (sha256 ${there.sha256} ≠ ${expected}); ` +
          'a second copy is written once and never overwritten: find out who wrote it before removing it by hand',
        { key },
      );
    return { outcome: 'present', bytes: there.bytes, sha256: there.sha256 };
  }
  if (!(await from.head(key)))
    throw new LifeboatError('IntegrityError', `${where(from, key)} is missing: there is nothing to copy`, {
      key,
    });

  const hash = createHash('sha256');
  let bytes = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let uploadId: string | undefined;
  const parts: CompletedPart[] = [];
  const flushPart = async () => {
    uploadId ??= await to.createMultipartUpload(key);
    const body = Buffer.concat(pending);
    pending = [];
    pendingBytes = 0;
    const partNumber = parts.length + 1;
    parts.push({ partNumber, etag: await to.uploadPart(key, uploadId, partNumber, body) });
  };
  const checkSource = (sha256: string) => {
    if (opts.expectedSha256 && sha256 !== opts.expectedSha256)
      throw new LifeboatError(
        'IntegrityError',
        `${where(from, key)} has sha256 ${sha256}, the manifest says ${opts.expectedSha256}: not copied`,
        { key },
      );
  };
  let sha256: string;
  try {
    for await (const chunk of await from.getStream(key)) {
      const b = chunk as Buffer;
      hash.update(b);
      bytes += b.length;
      opts.onBytes?.(b.length);
      pending.push(b);
      pendingBytes += b.length;
      if (pendingBytes >= PART_BYTES) await flushPart();
    }
    sha256 = hash.digest('hex');
    checkSource(sha256);
    if (uploadId === undefined) await to.put(key, Buffer.concat(pending));
    else {
      if (pendingBytes > 0) await flushPart();
      // Only now does the object exist on the secondary: a failed copy leaves nothing named.
      await to.completeMultipartUpload(key, uploadId, parts);
    }
  } catch (err) {
    if (uploadId !== undefined) await to.abortMultipartUpload(key, uploadId).catch(() => undefined);
    throw err;
  }
  const back = await hashStored(to, key);
  if (back.sha256 !== sha256 || back.bytes !== bytes)
    throw new LifeboatError(
      'IntegrityError',
      `${where(to, key)} reads back as ${back.bytes} bytes with sha256 ${back.sha256}; ${bytes} bytes with ${sha256} were written`,
      { key },
    );
  return { outcome: 'copied', bytes, sha256 };
}

export function createReplicateActivities(deps: {
  stores: Partial<Record<StorageLocationName, ObjectStore>>;
}) {
  return {
    /**
     * Copies a backup to the secondary location: every object its manifest lists, checked against
     * the manifest's sha256, then the manifest itself LAST, so that a backup without a manifest is
     * incomplete on the secondary too. Re-running it is safe: what is there already is checked.
     */
    async replicateBackup(input: { database: string; backupId: string }): Promise<SecondCopyResult> {
      const { primary, secondary } = deps.stores;
      if (!primary || !secondary)
        throw new LifeboatError(
          'InvalidInput',
          'the plan has no storage.secondary location: there is nowhere to copy to',
        );
      const started = Date.now();
      const manifestKey = repository.manifest('', input.database, input.backupId);
      const parsed = parseManifest(Buffer.from(await primary.get(manifestKey)).toString('utf8'));
      if (!parsed.ok)
        throw new LifeboatError(
          'IntegrityError',
          `${where(primary, manifestKey)} does not validate: ${parsed.problems.join('; ')}`,
        );
      const result: SecondCopyResult = {
        location: `s3://${secondary.bucket}${secondary.prefix ? `/${secondary.prefix}` : ''}`,
        objects: 0,
        copied: 0,
        present: 0,
        bytes: 0,
        copyMs: 0,
      };
      let ctx: Context | undefined;
      try {
        ctx = Context.current();
      } catch {
        // called outside an activity (a test): no heartbeats
      }
      const progress = { objects: 0, bytes: 0 };
      const beat = setInterval(() => ctx?.heartbeat(progress), HEARTBEAT_MS);
      try {
        const copies: { key: string; sha256?: string; presentIsEnough?: boolean }[] = [
          ...parsed.manifest.objects.map((o) => ({ key: o.key, sha256: o.sha256 })),
          ...(await kubernetesCopies(primary, parsed.manifest.kubernetes)),
          { key: manifestKey, sha256: undefined },
        ];
        for (const c of copies) {
          // An object an earlier backup exported (content-addressed, written once) is there whole
          // when it is there at all: a HEAD, not a second read of both copies.
          if (c.presentIsEnough && (await secondary.head(c.key))) {
            progress.objects++;
            result.objects++;
            result.present++;
            continue;
          }
          // A worker lost mid-copy leaves an unfinished multipart upload of this key: it goes first.
          for (const u of await secondary.listMultipartUploads(c.key))
            if (u.key === c.key) await secondary.abortMultipartUpload(u.key, u.uploadId);
          const r = await copyObject(primary, secondary, c.key, {
            expectedSha256: c.sha256,
            onBytes: (n) => (progress.bytes += n),
          });
          progress.objects++;
          result.objects++;
          result[r.outcome]++;
          result.bytes += r.bytes;
        }
      } finally {
        clearInterval(beat);
      }
      result.copyMs = Date.now() - started;
      return result;
    },
  };
}

/**
 * What a restore of the backup's Kubernetes objects needs at the second location: every object
 * its snapshot index names (the ones this backup uploaded are checked byte for byte; earlier
 * backups' need only be there), then the index itself, checked against the manifest.
 */
async function kubernetesCopies(
  primary: ObjectStore,
  kubernetes: BackupManifest['kubernetes'],
): Promise<{ key: string; sha256?: string; presentIsEnough?: boolean }[]> {
  if (!kubernetes) return [];
  const parsed = parseSnapshot(Buffer.from(await primary.get(kubernetes.snapshot)).toString('utf8'));
  if (!parsed.ok)
    throw new LifeboatError(
      'IntegrityError',
      `${where(primary, kubernetes.snapshot)} does not validate: ${parsed.problems.join('; ')}`,
    );
  const fresh = new Set(parsed.snapshot.newKeys);
  return [
    ...parsed.snapshot.objects.map((o) => ({ key: o.key, presentIsEnough: !fresh.has(o.key) })),
    { key: kubernetes.snapshot, sha256: kubernetes.snapshotSha256 },
  ];
}
