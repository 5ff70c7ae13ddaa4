// The stack's S3 server (SeaweedFS) against the real process: TLS verified against the stack's
// CA, authentication, and the S3 calls backups rely on (multipart, ranges, listing, deletes).
// The shared server on the layout's fixed ports is left running; the stop/restart checks use a
// second, private instance on other ports so that they never disturb the shared one.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { parse } from 'yaml';
import { validatePlan } from '../../src/domain/plan-validation.ts';
import type { Plan } from '../../src/domain/plan.ts';
import { stackS3Client } from '../../src/stack/aws-clients.ts';
import { STACK_SECRET_ENV, type StackLayout, layoutFromEnv, stackLayout } from '../../src/stack/layout.ts';
import {
  ensureBuckets,
  s3ServerRunning,
  stackBuckets,
  startS3Server,
  stopS3Server,
} from '../../src/stack/s3-server.ts';
import { ensureSecrets } from '../../src/stack/secrets.ts';
import { ensureTls } from '../../src/stack/tls.ts';

const layout = layoutFromEnv();
const MiB = 1024 * 1024;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function examplePlan(): Plan {
  const result = validatePlan(parse(fs.readFileSync(path.resolve('examples/lifeboat.yaml'), 'utf8')));
  if (!result.ok) throw new Error(result.problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
  return result.plan;
}

async function bodyBytes(client: S3Client, input: { Bucket: string; Key: string; Range?: string }) {
  const out = await client.send(new GetObjectCommand(input));
  return { out, bytes: await out.Body!.transformToByteArray() };
}

async function emptyPrefix(client: S3Client, Bucket: string, Prefix: string): Promise<void> {
  for (;;) {
    const listed = await client.send(new ListObjectsV2Command({ Bucket, Prefix }));
    for (const o of listed.Contents ?? [])
      await client.send(new DeleteObjectCommand({ Bucket, Key: o.Key! }));
    if (!listed.IsTruncated) return;
  }
}

function errorOf(err: unknown): { name?: string; code?: string; status?: number; cause?: unknown } {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; cause?: unknown };
  return { name: e.name, code: e.code, status: e.$metadata?.httpStatusCode, cause: e.cause };
}

describe('stack S3 server (SeaweedFS)', () => {
  const plan = examplePlan();
  let secrets: Record<string, string>;
  let client: S3Client;
  const bucket = stackBuckets(layout, plan)[0]!;
  const prefix = `_stack-test/s3-server-${Date.now()}-${process.pid}/`;

  before(async () => {
    secrets = ensureSecrets(layout).secrets;
    const started = Date.now();
    await startS3Server(layout, secrets, plan);
    console.log(`startS3Server: ${Date.now() - started} ms`);
    client = stackS3Client(layout, secrets);
  });

  after(async () => {
    if (client) {
      await emptyPrefix(client, bucket, prefix);
      client.destroy();
    }
  });

  test('the example plan keeps its primary bucket on the stack', () => {
    assert.deepEqual(stackBuckets(layout, plan), ['lifeboat-backups']);
  });

  test('start is idempotent: a second call reuses the running process', async () => {
    assert.equal(s3ServerRunning(layout), true);
    const pidFile = path.join(layout.runDir, 's3.pid');
    const pid = fs.readFileSync(pidFile, 'utf8');
    const started = Date.now();
    await Promise.all([startS3Server(layout, secrets, plan), startS3Server(layout, secrets, plan)]);
    assert.ok(Date.now() - started < 10_000);
    assert.equal(fs.readFileSync(pidFile, 'utf8'), pid);
    assert.equal(s3ServerRunning(layout), true);
  });

  test("the plan's buckets exist and creating them again is harmless", async () => {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
    await ensureBuckets(layout, secrets, [bucket]);
    const listed = await client.send(new ListBucketsCommand({}));
    assert.ok(listed.Buckets?.some((b) => b.Name === bucket));
  });

  test('TLS: the certificate verifies against the stack CA for 127.0.0.1 and localhost', async () => {
    const ca = fs.readFileSync(layout.tls.caCert);
    for (const host of ['127.0.0.1', 'localhost']) {
      const peer = await new Promise<{ status: number; subjectaltname: string; authorized: boolean }>(
        (resolve, reject) => {
          const req = https.get(
            {
              host,
              port: layout.s3.port,
              path: '/',
              ca,
              servername: host === 'localhost' ? host : undefined,
            },
            (res) => {
              const socket = res.socket as TLSSocket;
              const cert = socket.getPeerCertificate();
              res.resume();
              resolve({
                status: res.statusCode ?? 0,
                subjectaltname: cert.subjectaltname ?? '',
                authorized: socket.authorized,
              });
            },
          );
          req.on('error', reject);
        },
      );
      assert.equal(peer.authorized, true);
      assert.match(peer.subjectaltname, /IP Address:127\.0\.0\.1/);
      assert.match(peer.subjectaltname, /DNS:localhost/);
      // Anonymous requests are refused: the server requires credentials.
      assert.equal(peer.status, 403);
    }
  });

  test('TLS: a client that does not trust the stack CA is refused', async () => {
    const untrusting = stackS3Client(layout, secrets, { ca: false, maxAttempts: 1 });
    try {
      await assert.rejects(untrusting.send(new ListBucketsCommand({})), (err: unknown) => {
        const { code, name } = errorOf(err);
        assert.match(
          `${code} ${name}`,
          /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/,
        );
        return true;
      });
    } finally {
      untrusting.destroy();
    }
  });

  test('authentication: wrong credentials are refused', async () => {
    const wrongSecret = stackS3Client(layout, secrets, {
      maxAttempts: 1,
      credentials: {
        accessKeyId: secrets[STACK_SECRET_ENV.s3AccessKeyId]!,
        secretAccessKey: 'not-the-secret',
      },
    });
    const unknownKey = stackS3Client(layout, secrets, {
      maxAttempts: 1,
      credentials: { accessKeyId: 'AKIANOTAKNOWNKEY0000', secretAccessKey: 'whatever' },
    });
    try {
      await assert.rejects(wrongSecret.send(new ListBucketsCommand({})), (err: unknown) => {
        assert.equal(errorOf(err).status, 403);
        assert.equal(errorOf(err).name, 'SignatureDoesNotMatch');
        return true;
      });
      await assert.rejects(unknownKey.send(new ListObjectsV2Command({ Bucket: bucket })), (err: unknown) => {
        assert.equal(errorOf(err).status, 403);
        return true;
      });
    } finally {
      wrongSecret.destroy();
      unknownKey.destroy();
    }
  });

  test('multipart upload round trip: parts listed, completed, content and ranges intact', async () => {
    const Key = `${prefix}multipart/base.tar.zst.age`;
    const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(MiB + 12_345)];
    const whole = Buffer.concat(parts);
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }));
    assert.ok(UploadId);

    const inProgress = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
    assert.ok(inProgress.Uploads?.some((u) => u.UploadId === UploadId && u.Key === Key));

    const etags: { ETag: string; PartNumber: number }[] = [];
    for (const [i, body] of parts.entries()) {
      const out = await client.send(
        new UploadPartCommand({ Bucket: bucket, Key, UploadId, PartNumber: i + 1, Body: body }),
      );
      etags.push({ ETag: out.ETag!, PartNumber: i + 1 });
    }
    const listedParts = await client.send(new ListPartsCommand({ Bucket: bucket, Key, UploadId }));
    assert.deepEqual(
      listedParts.Parts?.map((p) => [p.PartNumber, p.Size]),
      parts.map((p, i) => [i + 1, p.length]),
    );
    // Before completion the object does not exist.
    await assert.rejects(client.send(new HeadObjectCommand({ Bucket: bucket, Key })), (err: unknown) => {
      assert.equal(errorOf(err).status, 404);
      return true;
    });

    const done = await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key,
        UploadId,
        MultipartUpload: { Parts: etags },
      }),
    );
    assert.match(done.ETag ?? '', /-3"?$/);
    const remaining = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
    assert.ok(!remaining.Uploads?.some((u) => u.UploadId === UploadId));

    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key }));
    assert.equal(head.ContentLength, whole.length);

    const full = await bodyBytes(client, { Bucket: bucket, Key });
    assert.equal(full.bytes.length, whole.length);
    assert.equal(sha256(full.bytes), sha256(whole));

    // A range across the boundary of parts 1 and 2, and a suffix range.
    const from = 5 * MiB - 100;
    const to = 5 * MiB + 99;
    const ranged = await bodyBytes(client, { Bucket: bucket, Key, Range: `bytes=${from}-${to}` });
    assert.equal(ranged.out.ContentLength, 200);
    assert.equal(ranged.out.ContentRange, `bytes ${from}-${to}/${whole.length}`);
    assert.equal(Buffer.compare(Buffer.from(ranged.bytes), whole.subarray(from, to + 1)), 0);
    const tail = await bodyBytes(client, { Bucket: bucket, Key, Range: 'bytes=-1000' });
    assert.equal(Buffer.compare(Buffer.from(tail.bytes), whole.subarray(whole.length - 1000)), 0);
  });

  test('an aborted multipart upload disappears and cannot be completed', async () => {
    const Key = `${prefix}multipart/aborted`;
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }));
    const part = await client.send(
      new UploadPartCommand({ Bucket: bucket, Key, UploadId, PartNumber: 1, Body: randomBytes(5 * MiB) }),
    );
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key, UploadId }));
    const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
    assert.ok(!listed.Uploads?.some((u) => u.UploadId === UploadId));
    await assert.rejects(
      client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key,
          UploadId,
          MultipartUpload: { Parts: [{ ETag: part.ETag!, PartNumber: 1 }] },
        }),
      ),
      (err: unknown) => {
        assert.equal(errorOf(err).name, 'NoSuchUpload');
        return true;
      },
    );
    await assert.rejects(client.send(new HeadObjectCommand({ Bucket: bucket, Key })), (err: unknown) => {
      assert.equal(errorOf(err).status, 404);
      return true;
    });
  });

  test('ListObjectsV2 with prefix, delimiter and pagination; HeadObject; DeleteObject', async () => {
    const base = `${prefix}listing/`;
    const keys = [
      'wal/000000010000000000000001',
      'wal/000000010000000000000002',
      'wal/000000010000000000000003',
      'base/b1/manifest.json',
    ];
    for (const k of keys) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: base + k, Body: `content of ${k}` }));
    }
    const wal = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${base}wal/` }));
    assert.deepEqual(
      wal.Contents?.map((o) => o.Key),
      keys.filter((k) => k.startsWith('wal/')).map((k) => base + k),
    );
    const top = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: base, Delimiter: '/' }));
    assert.deepEqual(top.CommonPrefixes?.map((p) => p.Prefix).sort(), [`${base}base/`, `${base}wal/`]);
    assert.equal(top.Contents?.length ?? 0, 0);

    const paged: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: `${base}wal/`,
          MaxKeys: 2,
          ContinuationToken: token,
        }),
      );
      assert.ok((page.Contents?.length ?? 0) <= 2);
      paged.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    assert.deepEqual(
      paged,
      wal.Contents?.map((o) => o.Key),
    );

    const key = `${base}base/b1/manifest.json`;
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    assert.equal(head.ContentLength, Buffer.byteLength('content of base/b1/manifest.json'));
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    await assert.rejects(client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })), (err: unknown) => {
      assert.equal(errorOf(err).status, 404);
      return true;
    });
    await assert.rejects(client.send(new GetObjectCommand({ Bucket: bucket, Key: key })), (err: unknown) => {
      assert.equal(errorOf(err).name, 'NoSuchKey');
      return true;
    });
    const rest = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${base}base/` }));
    assert.equal(rest.KeyCount, 0);
  });

  test('writing into a bucket that does not exist fails, as on AWS', async () => {
    await assert.rejects(
      client.send(new PutObjectCommand({ Bucket: `lifeboat-missing-${process.pid}`, Key: 'x', Body: 'x' })),
      (err: unknown) => {
        assert.equal(errorOf(err).name, 'NoSuchBucket');
        return true;
      },
    );
  });

  test('object lock: a bucket created with it refuses to delete a locked version', async () => {
    const Bucket = `lifeboat-lock-test-${process.pid}`;
    await client.send(new CreateBucketCommand({ Bucket, ObjectLockEnabledForBucket: true }));
    try {
      const lock = await client.send(new GetObjectLockConfigurationCommand({ Bucket }));
      assert.equal(lock.ObjectLockConfiguration?.ObjectLockEnabled, 'Enabled');
      const put = await client.send(
        new PutObjectCommand({
          Bucket,
          Key: 'manifest.json',
          Body: '{}',
          ObjectLockMode: 'GOVERNANCE',
          ObjectLockRetainUntilDate: new Date(Date.now() + 3_600_000),
        }),
      );
      assert.ok(put.VersionId);
      const head = await client.send(new HeadObjectCommand({ Bucket, Key: 'manifest.json' }));
      assert.equal(head.ObjectLockMode, 'GOVERNANCE');
      await assert.rejects(
        client.send(new DeleteObjectCommand({ Bucket, Key: 'manifest.json', VersionId: put.VersionId })),
        (err: unknown) => {
          assert.equal(errorOf(err).status, 403);
          return true;
        },
      );
    } finally {
      // Governance mode lets the admin identity clean up.
      const versions = await client.send(new ListObjectVersionsCommand({ Bucket }));
      for (const v of [...(versions.Versions ?? []), ...(versions.DeleteMarkers ?? [])]) {
        await client.send(
          new DeleteObjectCommand({
            Bucket,
            Key: v.Key!,
            VersionId: v.VersionId,
            BypassGovernanceRetention: true,
          }),
        );
      }
      await client.send(new DeleteBucketCommand({ Bucket }));
    }
  });
});

describe('S3 server lifecycle (a private instance on other ports)', () => {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-s3-'));
  const base = stackLayout(state);
  const ports = { port: 18433, masterPort: 19433, volumePort: 18180, filerPort: 18988 };
  const own: StackLayout = {
    ...base,
    toolsBin: layout.toolsBin,
    s3: { ...base.s3, ...ports, endpoint: `https://127.0.0.1:${ports.port}` },
  };
  const plan = examplePlan();
  const ownPlan: Plan = {
    ...plan,
    storage: {
      ...plan.storage,
      primary: { ...plan.storage.primary, endpoint: own.s3.endpoint },
      secondary: { ...plan.storage.primary, url: 's3://lifeboat-secondary/copy', endpoint: own.s3.endpoint },
    },
  };
  const secretsA = {
    [STACK_SECRET_ENV.s3AccessKeyId]: `LBS3TEST${randomBytes(6).toString('hex').toUpperCase()}`,
    [STACK_SECRET_ENV.s3SecretAccessKey]: randomBytes(30).toString('base64url'),
  };
  const secretsB = {
    ...secretsA,
    [STACK_SECRET_ENV.s3SecretAccessKey]: randomBytes(30).toString('base64url'),
  };

  after(async () => {
    await stopS3Server(own, 2_000);
    fs.rmSync(state, { recursive: true, force: true });
  });

  test('first start makes TLS material, starts, creates primary and secondary buckets', async () => {
    const started = Date.now();
    await startS3Server(own, secretsA, ownPlan);
    console.log(`cold startS3Server (new CA, new data dir): ${Date.now() - started} ms`);
    assert.equal(s3ServerRunning(own), true);
    assert.equal((await ensureTls(own)).created, false);
    for (const key of [own.tls.caKey, own.tls.serverKey]) assert.equal(fs.statSync(key).mode & 0o777, 0o600);
    const client = stackS3Client(own, secretsA);
    try {
      const names = (await client.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name).sort();
      assert.deepEqual(names, ['lifeboat-backups', 'lifeboat-secondary']);
      await client.send(
        new PutObjectCommand({ Bucket: 'lifeboat-backups', Key: 'kept', Body: 'survives restarts' }),
      );
    } finally {
      client.destroy();
    }
  });

  test('a certificate from another CA is refused', async () => {
    const client = stackS3Client(own, secretsA, { ca: fs.readFileSync(layout.tls.caCert), maxAttempts: 1 });
    try {
      await assert.rejects(client.send(new ListBucketsCommand({})), (err: unknown) => {
        assert.match(
          `${errorOf(err).code} ${errorOf(err).name}`,
          /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|CERT/,
        );
        return true;
      });
    } finally {
      client.destroy();
    }
  });

  test('killed, then started again: data persists; new credentials restart the server', async () => {
    // A 1s grace ends in SIGKILL (a clean stop takes ~16s; the restart below exercises that one).
    assert.equal(await stopS3Server(own, 1_000), true);
    assert.equal(s3ServerRunning(own), false);
    assert.equal(await stopS3Server(own), false);
    const started = Date.now();
    await startS3Server(own, secretsA, ownPlan);
    console.log(`warm startS3Server (existing data): ${Date.now() - started} ms`);
    const pid = fs.readFileSync(path.join(own.runDir, 's3.pid'), 'utf8');

    const rotated = Date.now();
    await startS3Server(own, secretsB, ownPlan);
    console.log(`restart for new credentials (clean stop + start): ${Date.now() - rotated} ms`);
    assert.notEqual(fs.readFileSync(path.join(own.runDir, 's3.pid'), 'utf8'), pid);
    const oldCreds = stackS3Client(own, secretsA, { maxAttempts: 1 });
    const newCreds = stackS3Client(own, secretsB);
    try {
      await assert.rejects(oldCreds.send(new ListBucketsCommand({})));
      const { bytes } = await bodyBytes(newCreds, { Bucket: 'lifeboat-backups', Key: 'kept' });
      assert.equal(Buffer.from(bytes).toString(), 'survives restarts');
    } finally {
      oldCreds.destroy();
      newCreds.destroy();
    }
  });
});
