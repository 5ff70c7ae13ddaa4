// The storage port: the handful of S3 calls Lifeboat makes, on one bucket and prefix. Shared
// defaults (path-style addressing, the plan's CA, credentials by env name) live here only.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { joinKey, parseS3Url } from '../../domain/naming.ts';
import type { StorageLocation } from '../../domain/plan.ts';
import { requireEnv, type Environment } from './environment.ts';

export interface ObjectStore {
  readonly bucket: string;
  readonly prefix: string;
  /** Fails unless the bucket exists and the credentials may use it. */
  headBucket(): Promise<void>;
  /** Writes an object under the store's prefix. */
  put(key: string, body: Uint8Array | string): Promise<void>;
  /** Reads a whole object under the store's prefix. */
  get(key: string): Promise<Uint8Array>;
  /** Deletes an object under the store's prefix. */
  delete(key: string): Promise<void>;
}

export function createS3Client(location: StorageLocation, env: Environment): S3Client {
  const ca = location.caFile ? readFileSync(location.caFile) : undefined;
  return new S3Client({
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
}

export function createObjectStore(location: StorageLocation, env: Environment): ObjectStore {
  const { bucket, prefix } = parseS3Url(location.url);
  let client: S3Client | undefined;
  const s3 = () => (client ??= createS3Client(location, env));
  const full = (key: string) => joinKey(prefix, key);
  return {
    bucket,
    prefix,
    async headBucket() {
      await s3().send(new HeadBucketCommand({ Bucket: bucket }));
    },
    async put(key, body) {
      await s3().send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: full(key),
          Body: body,
          StorageClass: location.storageClass as never,
        }),
      );
    },
    async get(key) {
      const out = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: full(key) }));
      return out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
    },
    async delete(key) {
      await s3().send(new DeleteObjectCommand({ Bucket: bucket, Key: full(key) }));
    },
  };
}
