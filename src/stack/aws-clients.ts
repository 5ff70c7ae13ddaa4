// AWS SDK clients for the local stack's own use (seeding, readiness probes, tests): S3 against
// SeaweedFS over HTTPS with the stack's CA trusted, Route53 against moto. Lifeboat's activities
// build their own clients from the plan in src/workers; this file is stack-only.
import fs from 'node:fs';
import https from 'node:https';
import { Route53Client } from '@aws-sdk/client-route-53';
import { S3Client } from '@aws-sdk/client-s3';
import { STACK_SECRET_ENV, type StackLayout } from './layout.ts';

export type StackSecrets = Record<string, string>;

export interface StackS3ClientOptions {
  /** PEM bundle to trust instead of the stack's CA; `false` trusts only the system store. */
  ca?: string | Buffer | false;
  /** Override the credentials from `secrets` (e.g. to check that wrong ones are refused). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Attempts per request (SDK default 3); probes use 1 so a failure shows at once. */
  maxAttempts?: number;
}

export function requireSecret(secrets: StackSecrets, name: string): string {
  const value = secrets[name];
  if (value === undefined || value === '') throw new Error(`stack secret ${name} is missing`);
  return value;
}

export function stackS3Credentials(secrets: StackSecrets): { accessKeyId: string; secretAccessKey: string } {
  return {
    accessKeyId: requireSecret(secrets, STACK_SECRET_ENV.s3AccessKeyId),
    secretAccessKey: requireSecret(secrets, STACK_SECRET_ENV.s3SecretAccessKey),
  };
}

/** An S3 client for the stack's SeaweedFS: path-style, HTTPS verified against the stack's CA. */
export function stackS3Client(
  layout: StackLayout,
  secrets: StackSecrets,
  options: StackS3ClientOptions = {},
): S3Client {
  const ca = options.ca === undefined ? fs.readFileSync(layout.tls.caCert) : options.ca;
  const agent = new https.Agent({ keepAlive: true, ...(ca === false ? {} : { ca }) });
  return new S3Client({
    endpoint: layout.s3.endpoint,
    region: layout.s3.region,
    forcePathStyle: true,
    credentials: options.credentials ?? stackS3Credentials(secrets),
    maxAttempts: options.maxAttempts ?? 3,
    requestHandler: { httpsAgent: agent, connectionTimeout: 5_000, requestTimeout: 120_000 },
  });
}

/** A Route53 client for the stack's moto server. */
export function stackRoute53Client(
  layout: StackLayout,
  secrets: StackSecrets,
  options: { maxAttempts?: number } = {},
): Route53Client {
  return new Route53Client({
    endpoint: layout.route53.endpoint,
    region: 'us-east-1',
    credentials: {
      accessKeyId: requireSecret(secrets, STACK_SECRET_ENV.dnsAccessKeyId),
      secretAccessKey: requireSecret(secrets, STACK_SECRET_ENV.dnsSecretAccessKey),
    },
    maxAttempts: options.maxAttempts ?? 3,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
  });
}
