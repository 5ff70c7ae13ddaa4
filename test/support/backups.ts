// Backups seen from outside Lifeboat, the way an operator without it would: the AWS SDK for
// storage, the stock `age`, `zstd`, `tar` and `pg_ctl` binaries for a break-glass restore, and
// SQL digests of table content to compare a restored server with its source.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import {
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import pg from 'pg';
import { livePostmaster } from '../../src/activities/restore.ts';
import { joinKey, parseS3Url } from '../../src/domain/naming.ts';
import type { Plan } from '../../src/domain/plan.ts';
import { repository } from '../../src/domain/repository.ts';
import { parseManifest, type BackupManifest } from '../../src/domain/manifest.ts';
import type { StackLayout } from '../../src/stack/layout.ts';

export function storageOf(plan: Plan): { bucket: string; prefix: string } {
  return parseS3Url(plan.storage.primary.url);
}

/** Every object key under a prefix (full keys, bucket-relative). */
export async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const out = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    keys.push(...(out.Contents ?? []).map((o) => o.Key!));
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** Unfinished multipart uploads under a prefix. */
export async function listUploads(
  s3: S3Client,
  bucket: string,
  prefix: string,
): Promise<{ key: string; uploadId: string }[]> {
  const out = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  return (out.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId! }));
}

export async function readManifest(
  s3: S3Client,
  plan: Plan,
  database: string,
  backupId: string,
): Promise<BackupManifest> {
  const { bucket, prefix } = storageOf(plan);
  const out = await s3.send(
    new GetObjectCommand({ Bucket: bucket, Key: repository.manifest(prefix, database, backupId) }),
  );
  const parsed = parseManifest(await out.Body!.transformToString());
  if (!parsed.ok) throw new Error(`manifest of ${backupId} does not validate: ${parsed.problems.join('; ')}`);
  return parsed.manifest;
}

/**
 * The break-glass path of the README, step by step: the base object downloaded with the AWS SDK,
 * then `age -d -i <key> | zstd -d | tar x` into a fresh folder owned by the postgres OS user.
 */
export async function breakGlassRestore(opts: {
  s3: S3Client;
  plan: Plan;
  manifest: BackupManifest;
  identity: string;
  osUser: string;
}): Promise<{ dir: string; cleanup: () => void }> {
  const { bucket, prefix } = storageOf(opts.plan);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-restore-'));
  fs.chmodSync(work, 0o755);
  const dir = path.join(work, 'data');
  fs.mkdirSync(dir, { mode: 0o700 });
  execFileSync('chown', [opts.osUser, dir]);
  const keyFile = path.join(work, 'identity.txt');
  fs.writeFileSync(keyFile, `${opts.identity}\n`, { mode: 0o600 });
  const base = opts.manifest.objects.find((o) => o.role === 'base')!;
  const downloaded = path.join(work, 'base.tar.zst.age');
  const out = await opts.s3.send(new GetObjectCommand({ Bucket: bucket, Key: joinKey(prefix, base.key) }));
  await pipeline(out.Body as Readable, fs.createWriteStream(downloaded));
  const shell = `age -d -i '${keyFile}' '${downloaded}' | zstd -d -q | runuser -u ${opts.osUser} -- tar x -C '${dir}'`;
  await run('bash', ['-o', 'pipefail', '-c', shell]);
  return { dir, cleanup: () => fs.rmSync(work, { recursive: true, force: true }) };
}

/** A restored data folder started with pg_ctl on a free port, reachable on a socket only. */
export async function startRestored(
  layout: StackLayout,
  dir: string,
  port: number,
): Promise<{ socketDir: string; stop: () => Promise<void> }> {
  const osUser = layout.postgres.osUser;
  const socketDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-restore-sock-'));
  execFileSync('chown', [osUser, socketDir]);
  const pgCtl = path.join(layout.postgres.binDir, 'pg_ctl');
  const options = `-c port=${port} -c listen_addresses='' -c unix_socket_directories='${socketDir}' -c cluster_name=restore-test -c archive_mode=off`;
  await run('runuser', [
    '-u',
    osUser,
    '--',
    pgCtl,
    'start',
    '-w',
    '-t',
    '60',
    '-D',
    dir,
    '-l',
    path.join(socketDir, 'postgres.log'),
    '-o',
    options,
  ]).catch((err: Error) => {
    const log = path.join(socketDir, 'postgres.log');
    throw new Error(`${err.message}\n${fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(-2000) : ''}`);
  });
  return {
    socketDir,
    async stop() {
      await run('runuser', ['-u', osUser, '--', pgCtl, 'stop', '-m', 'immediate', '-D', dir]).catch(
        () => undefined,
      );
      fs.rmSync(socketDir, { recursive: true, force: true });
    },
  };
}

/**
 * Stops whatever server runs on a restored data folder (immediate: it is thrown away) and removes
 * the restore's folder, the data folder's parent.
 */
export function stopRestoredInstance(layout: StackLayout, dataDir: string): void {
  if (livePostmaster(dataDir))
    try {
      execFileSync('runuser', [
        '-u',
        layout.postgres.osUser,
        '--',
        path.join(layout.postgres.binDir, 'pg_ctl'),
        'stop',
        '-m',
        'immediate',
        '-w',
        '-D',
        dataDir,
      ]);
    } catch {
      // already gone
    }
  fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
}

export const CONTENT_TABLES = {
  pgbench_accounts: 'aid',
  pgbench_branches: 'bid',
  pgbench_tellers: 'tid',
  backup_test_rows: 'id',
} as const;

/** Row count and md5 of every row in key order, per table. */
export async function tableDigests(
  client: pg.Client,
): Promise<Record<string, { rows: number; md5: string }>> {
  const digests: Record<string, { rows: number; md5: string }> = {};
  for (const [table, key] of Object.entries(CONTENT_TABLES)) {
    const { rows } = await client.query<{ n: number; md5: string }>(
      `select count(*)::int as n, md5(coalesce(string_agg(t::text, E'\\n' order by t.${key}), '')) as md5 from ${table} t`,
    );
    digests[table] = { rows: rows[0]!.n, md5: rows[0]!.md5 };
  }
  return digests;
}

/** Known content: pgbench at scale 2 and a table of random (incompressible) rows. */
export async function seedKnownContent(
  layout: StackLayout,
  secrets: Record<string, string>,
  rows = 300_000,
): Promise<void> {
  const primary = layout.postgres['us-east-1'];
  const env = { ...process.env, PGPASSWORD: secrets.LIFEBOAT_PG_PASSWORD };
  await run(
    path.join(layout.postgres.binDir, 'pgbench'),
    [
      '-h',
      primary.host,
      '-p',
      String(primary.port),
      '-U',
      layout.postgres.appUser,
      '-i',
      '-s',
      '2',
      '-q',
      layout.postgres.database,
    ],
    env,
  );
  const client = await connect({
    host: primary.host,
    port: primary.port,
    user: layout.postgres.appUser,
    password: secrets.LIFEBOAT_PG_PASSWORD,
    database: layout.postgres.database,
  });
  try {
    await client.query('drop table if exists backup_test_rows');
    await client.query(
      `create table backup_test_rows as
         select g as id, decode(md5(random()::text) || md5(random()::text), 'hex') as b, md5(random()::text) as t
           from generate_series(1, ${rows}) g`,
    );
    await client.query('alter table backup_test_rows add primary key (id)');
    await client.query('checkpoint');
  } finally {
    await client.end();
  }
}

/** A TCP port nothing listens on right now (for a restored server). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function connect(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  await client.connect();
  return client;
}

/** Verifies a restored folder with PostgreSQL's own pg_verifybackup (files and WAL). */
export async function pgVerifyBackup(layout: StackLayout, dir: string): Promise<string> {
  return run(path.join(layout.postgres.binDir, 'pg_verifybackup'), [dir]);
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${out}`)),
    );
  });
}
