// Helper of bench/backup.sh (not a test, not part of the product):
//   plan <stack plan> <out plan> <db>          a copy of the stack's plan that also declares <db>
//   du   <plan> <secrets.env> <key prefix>     bytes and objects under a bucket key prefix (JSON)
//   rm   <plan> <secrets.env> <key prefix>     deletes every object under it (and aborts uploads)
//   cat  <plan> <secrets.env> <key>            prints one object
// Key prefixes are relative to the bucket of the plan's primary storage, not to its prefix.
import fs from 'node:fs';
import https from 'node:https';
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import YAML from 'yaml';

interface StackPlan {
  databases: Record<string, { primaryRegion: string; dbname?: string; tier?: number }>;
  storage: {
    primary: {
      url: string;
      endpoint: string;
      region: string;
      caFile?: string;
      accessKeyIdEnv: string;
      secretAccessKeyEnv: string;
    };
  };
}
const readPlan = (file: string) => YAML.parse(fs.readFileSync(file, 'utf8')) as StackPlan;

const [cmd, a, b, c] = process.argv.slice(2) as [string, string, string, string];

function readEnv(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!.replace(/^(['"])(.*)\1$/, '$2');
  }
  return env;
}

function client(planFile: string, envFile: string): { s3: S3Client; bucket: string } {
  const plan = readPlan(planFile);
  const st = plan.storage.primary;
  const env = readEnv(envFile);
  const bucket = new URL(st.url).host;
  const s3 = new S3Client({
    endpoint: st.endpoint,
    region: st.region,
    forcePathStyle: true,
    credentials: {
      accessKeyId: env[st.accessKeyIdEnv] ?? '',
      secretAccessKey: env[st.secretAccessKeyEnv] ?? '',
    },
    requestHandler: new NodeHttpHandler({
      httpsAgent: new https.Agent({ ca: st.caFile ? fs.readFileSync(st.caFile) : undefined }),
    }),
  });
  return { s3, bucket };
}

async function list(s3: S3Client, bucket: string, prefix: string) {
  const out: { key: string; size: number }[] = [];
  let token: string | undefined;
  do {
    const r = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of r.Contents ?? []) out.push({ key: o.Key!, size: o.Size ?? 0 });
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return out;
}

if (cmd === 'plan') {
  const plan = readPlan(a);
  const primary = Object.values(plan.databases)[0]!.primaryRegion;
  plan.databases[c] = { primaryRegion: primary, dbname: c, tier: 3 };
  fs.writeFileSync(b, YAML.stringify(plan));
} else if (cmd === 'cat') {
  const { s3, bucket } = client(a, b);
  const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: c }));
  process.stdout.write(await r.Body!.transformToString());
} else if (cmd === 'du' || cmd === 'rm') {
  const { s3, bucket } = client(a, b);
  const prefix = c.replace(/^\/+/, '');
  if (!prefix) throw new Error('refusing an empty prefix');
  const objects = await list(s3, bucket, prefix);
  if (cmd === 'du') {
    const bytes = objects.reduce((n, o) => n + o.size, 0);
    console.log(JSON.stringify({ prefix, objects: objects.length, bytes }));
  } else {
    for (let i = 0; i < objects.length; i += 1000)
      await s3.send(
        new DeleteObjectsCommand({
          Bucket: bucket,
          Delete: { Objects: objects.slice(i, i + 1000).map((o) => ({ Key: o.key })) },
        }),
      );
    const ups = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
    for (const u of ups.Uploads ?? [])
      await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key!, UploadId: u.UploadId! }));
    console.log(`removed ${objects.length} objects under ${bucket}/${prefix}`);
  }
} else {
  console.error('usage: s3.ts plan <in> <out> <db> | du|rm <plan> <secrets.env> <key prefix>');
  process.exit(2);
}
