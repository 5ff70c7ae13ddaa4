// The storage port: the handful of S3 calls Lifeboat makes, on one bucket and prefix. Shared
// defaults (path-style addressing, the plan's CA, credentials by env name) live here only.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  GetObjectLockConfigurationCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { parseDuration } from '../../domain/duration.ts';
import { joinKey, parseS3Url } from '../../domain/naming.ts';
import type { Plan, StorageLocation } from '../../domain/plan.ts';
import { policyStorageClass } from '../../domain/repository.ts';
import { requireEnv, type Environment } from './environment.ts';

export interface ObjectStore {
  readonly bucket: string;
  readonly prefix: string;
  /** Fails unless the bucket exists and the credentials may use it. */
  headBucket(): Promise<void>;
  /**
   * Why the plan's Object Lock cannot be applied here (it asks for it, the bucket has none), or
   * undefined when writes will be locked as asked or no lock is asked for.
   */
  objectLockProblem(): Promise<string | undefined>;
  /** Writes an object under the store's prefix. */
  put(key: string, body: Uint8Array | string): Promise<void>;
  /** Reads a whole object under the store's prefix. */
  get(key: string): Promise<Uint8Array>;
  /**
   * Reads a whole object, or undefined when there is none: one request where `head` then `get`
   * makes two (restore's WAL fetches ask for every segment, most of them present).
   */
  getIfPresent(key: string): Promise<Uint8Array | undefined>;
  /** Deletes an object under the store's prefix. */
  delete(key: string): Promise<void>;
  /** Size, ETag and S3 Object Lock state of an object, or undefined when there is none. */
  head(key: string): Promise<ObjectHead | undefined>;
  /** A stream of an object's bytes, or of the inclusive byte range [start, end]. */
  getStream(key: string, range?: { start: number; end?: number }): Promise<Readable>;
  /**
   * A plain HTTPS GET of one object for a stock tool (curl) that has no credentials: a URL signed
   * for `expiresInSeconds` (a bearer token for that object alone: pass it on stdin, never in
   * argv), and the CA file the endpoint's certificate needs, if any.
   */
  presignGet(key: string, expiresInSeconds: number): Promise<PresignedGet>;
  /** Every object whose key starts with `keyPrefix` (keys relative to the store's prefix). */
  list(keyPrefix: string): Promise<StoredObject[]>;
  /** Starts a multipart upload; returns its upload id. */
  createMultipartUpload(key: string): Promise<string>;
  /** Uploads one part (1-based number, at least 5 MiB except the last); returns its ETag. */
  uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<string>;
  /** Assembles the uploaded parts into the object: only now does the object exist. */
  completeMultipartUpload(key: string, uploadId: string, parts: CompletedPart[]): Promise<void>;
  /** Discards an unfinished upload and its parts (a missing upload is not an error). */
  abortMultipartUpload(key: string, uploadId: string): Promise<void>;
  /** Unfinished multipart uploads whose key starts with `keyPrefix`. */
  listMultipartUploads(keyPrefix: string): Promise<PendingUpload[]>;
}

export interface ObjectHead {
  size: number;
  etag?: string;
  /** Object Lock retention (GOVERNANCE or COMPLIANCE) and until when; absent when not locked. */
  lock?: { mode: string; retainUntil: string };
  /** An S3 Object Lock legal hold is on. */
  legalHold?: boolean;
}

export interface StoredObject {
  key: string;
  size: number;
  lastModified?: Date;
}
export interface PresignedGet {
  url: string;
  caFile?: string;
}
export interface CompletedPart {
  partNumber: number;
  etag: string;
}
export interface PendingUpload {
  key: string;
  uploadId: string;
  initiated?: Date;
}

export function createS3Client(location: StorageLocation, env: Environment): S3Client {
  const ca = location.caFile ? readFileSync(location.caFile) : undefined;
  const client = new S3Client({
    endpoint: location.endpoint,
    region: location.region,
    forcePathStyle: location.forcePathStyle,
    credentials:
      location.accessKeyIdEnv && location.secretAccessKeyEnv
        ? {
            accessKeyId: requireEnv(env, location.accessKeyIdEnv, `the access key id for ${location.url}`),
            secretAccessKey: requireEnv(
              env,
              location.secretAccessKeyEnv,
              `the secret access key for ${location.url}`,
            ),
          }
        : undefined,
    requestHandler: new NodeHttpHandler({
      httpsAgent: new https.Agent({ ca, keepAlive: true }),
      connectionTimeout: 5000,
      requestTimeout: 30_000,
    }),
    maxAttempts: 2,
  });
  // A part's body is not hashed into its signature (UNSIGNED-PAYLOAD, which S3 accepts over
  // HTTPS): the SDK would otherwise take a SHA-256 of every part before sending it, a third pass
  // over a backup's ciphertext after ours (the object's sha256) and the CRC32 it still sends.
  client.middlewareStack.add(
    (next, context) => (args) => {
      if (context.commandName === 'UploadPartCommand') {
        const request = args.request as { headers?: Record<string, string> };
        if (request.headers) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      }
      return next(args);
    },
    { step: 'build', name: 'lifeboatUnsignedPartPayload' },
  );
  return client;
}

export interface ObjectStoreOptions {
  /**
   * The storage class an object is written with, by its key (relative to the location's prefix);
   * location.storageClass where it gives none. The plan's backup policies set one per database.
   */
  storageClassOf?: (key: string) => string | undefined;
}

/** The plan's storage locations: the primary, and the optional second copy (3-2-1). */
export type StorageLocationName = 'primary' | 'secondary';

/**
 * The store of one of the plan's storage locations, writing each database's objects with the
 * storage class its backup policy names. The worker, its pipeline threads and the CLI all build
 * their stores here, so an object is written the same way whichever of them writes it.
 */
export function planStore(plan: Plan, env: Environment, location: StorageLocationName): ObjectStore {
  const at = plan.storage[location];
  if (!at) throw new Error(`the plan has no ${location} storage location`);
  return createObjectStore(at, env, { storageClassOf: policyStorageClass(plan) });
}

export function createObjectStore(
  location: StorageLocation,
  env: Environment,
  options: ObjectStoreOptions = {},
): ObjectStore {
  const { bucket, prefix } = parseS3Url(location.url);
  let client: S3Client | undefined;
  const s3 = () => (client ??= createS3Client(location, env));
  const full = (key: string) => joinKey(prefix, key);
  // Listing prefixes keep a trailing slash: "backups/x/" must not match "backups/x-2/".
  const fullPrefix = (keyPrefix: string) =>
    joinKey(prefix, keyPrefix) + (keyPrefix.endsWith('/') && joinKey(prefix, keyPrefix) ? '/' : '');
  const get = async (key: string): Promise<Uint8Array> => {
    const out = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: full(key) }));
    return out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
  };
  const relative = (key: string) =>
    prefix && key.startsWith(`${prefix}/`) ? key.slice(prefix.length + 1) : key;
  // What every write carries: the storage class, and Object Lock retention counted from the write.
  const retainMs = location.objectLock ? parseDuration(location.objectLock.retain)! : 0;
  const writeOptions = (key: string) => ({
    StorageClass: (options.storageClassOf?.(key) ?? location.storageClass) as never,
    ...(location.objectLock
      ? {
          ObjectLockMode: location.objectLock.mode,
          ObjectLockRetainUntilDate: new Date(Date.now() + retainMs),
        }
      : {}),
  });
  return {
    bucket,
    prefix,
    async headBucket() {
      await s3().send(new HeadBucketCommand({ Bucket: bucket }));
    },
    async objectLockProblem() {
      if (!location.objectLock) return undefined;
      let enabled: boolean;
      try {
        const out = await s3().send(new GetObjectLockConfigurationCommand({ Bucket: bucket }));
        enabled = out.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled';
      } catch (err) {
        if ((err as { name?: string }).name !== 'ObjectLockConfigurationNotFoundError') throw err;
        enabled = false;
      }
      return enabled
        ? undefined
        : `the plan asks for S3 Object Lock (${location.objectLock.mode}, ${location.objectLock.retain}) but bucket ${bucket} has no Object Lock enabled: create the bucket with Object Lock, or remove objectLock from the plan`;
    },
    async put(key, body) {
      await s3().send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: full(key),
          Body: body,
          ...writeOptions(key),
        }),
      );
    },
    get,
    async getIfPresent(key) {
      try {
        return await get(key);
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async delete(key) {
      await s3().send(new DeleteObjectCommand({ Bucket: bucket, Key: full(key) }));
    },
    async head(key) {
      try {
        const out = await s3().send(new HeadObjectCommand({ Bucket: bucket, Key: full(key) }));
        return {
          size: out.ContentLength ?? 0,
          etag: out.ETag,
          ...(out.ObjectLockMode && out.ObjectLockRetainUntilDate
            ? {
                lock: { mode: out.ObjectLockMode, retainUntil: out.ObjectLockRetainUntilDate.toISOString() },
              }
            : {}),
          ...(out.ObjectLockLegalHoldStatus === 'ON' ? { legalHold: true } : {}),
        };
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async getStream(key, range) {
      const out = await s3().send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: full(key),
          Range: range ? `bytes=${range.start}-${range.end ?? ''}` : undefined,
        }),
      );
      return out.Body as Readable;
    },
    async presignGet(key, expiresInSeconds) {
      const url = await getSignedUrl(s3(), new GetObjectCommand({ Bucket: bucket, Key: full(key) }), {
        expiresIn: expiresInSeconds,
      });
      return { url, ...(location.caFile ? { caFile: location.caFile } : {}) };
    },
    async list(keyPrefix) {
      const objects: StoredObject[] = [];
      let token: string | undefined;
      do {
        const out = await s3().send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: fullPrefix(keyPrefix),
            ContinuationToken: token,
          }),
        );
        for (const o of out.Contents ?? [])
          if (o.Key) objects.push({ key: relative(o.Key), size: o.Size ?? 0, lastModified: o.LastModified });
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
      return objects;
    },
    async createMultipartUpload(key) {
      const out = await s3().send(
        new CreateMultipartUploadCommand({
          Bucket: bucket,
          Key: full(key),
          ...writeOptions(key),
        }),
      );
      if (!out.UploadId) throw new Error(`CreateMultipartUpload of ${full(key)} returned no upload id`);
      return out.UploadId;
    },
    async uploadPart(key, uploadId, partNumber, body) {
      const out = await s3().send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: full(key),
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
        }),
      );
      if (!out.ETag) throw new Error(`UploadPart ${partNumber} of ${full(key)} returned no ETag`);
      return out.ETag;
    },
    async completeMultipartUpload(key, uploadId, parts) {
      await s3().send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: full(key),
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        }),
      );
    },
    async abortMultipartUpload(key, uploadId) {
      try {
        await s3().send(
          new AbortMultipartUploadCommand({ Bucket: bucket, Key: full(key), UploadId: uploadId }),
        );
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    },
    async listMultipartUploads(keyPrefix) {
      const uploads: PendingUpload[] = [];
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      for (;;) {
        const out = await s3().send(
          new ListMultipartUploadsCommand({
            Bucket: bucket,
            Prefix: fullPrefix(keyPrefix),
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        );
        for (const u of out.Uploads ?? [])
          if (u.Key && u.UploadId)
            uploads.push({ key: relative(u.Key), uploadId: u.UploadId, initiated: u.Initiated });
        if (!out.IsTruncated) return uploads;
        keyMarker = out.NextKeyMarker;
        uploadIdMarker = out.NextUploadIdMarker;
      }
    },
  };
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return (
    e.name === 'NotFound' ||
    e.name === 'NoSuchKey' ||
    e.name === 'NoSuchUpload' ||
    e.$metadata?.httpStatusCode === 404
  );
}
