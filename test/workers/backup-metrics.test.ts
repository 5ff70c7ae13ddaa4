// Backup metrics on the worker's Prometheus endpoint and the plan's S3 storage class, on the real
// local stack: a worker with --metrics-address takes a full and an incremental backup through the
// CLI; the scraped series per database and kind agree with the stored manifests; every object the
// backups and the archiver wrote has its backup policy's storage class, and the audit records the
// location's, as SeaweedFS reports them (HEAD); a restarted worker reads the last figures back from
// the catalog; and a worker whose S3 secret is wrong counts the failed backup by its error type.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import type pg from 'pg';
import {
  createObjectStore,
  createS3Client,
  type ObjectStore,
} from '../../src/activities/ports/object-store.ts';
import type { IncrementalBackupResult } from '../../src/domain/incremental.ts';
import { parseManifest, type BackupManifest } from '../../src/domain/manifest.ts';
import { joinKey } from '../../src/domain/naming.ts';
import { repository } from '../../src/domain/repository.ts';
import { freePort } from '../support/backups.ts';
import {
  connectPrimary,
  DB,
  releasePrimary,
  resetArchiver,
  terminateArchiver,
  writeArchivingPlan,
} from '../support/archiving.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';
import { tempDir } from '../support/temp-dir.ts';

/** The storage location's class, and the one the database's backup policy names instead. */
const STORAGE_CLASS = 'STANDARD_IA';
const POLICY_STORAGE_CLASS = 'ONEZONE_IA';

describe('backup metrics and storage class on the local stack', () => {
  let stack: TestStack;
  let connection: Connection;
  let client: Client;
  let tmp: string;
  let planFile: string;
  let store: ObjectStore;
  let s3: S3Client;
  let bucket: string;
  let prefix: string;
  let admin: pg.Client;
  let worker: WorkerProcess | undefined;
  let metricsUrl: string;
  let full: BackupManifest;
  let incremental: BackupManifest;
  const cli = (args: string[]) => runCli([...args, '-f', planFile], stack.env);

  async function startMetricsWorker(env: NodeJS.ProcessEnv, secretsFile: string): Promise<WorkerProcess> {
    const address = `127.0.0.1:${await freePort()}`;
    metricsUrl = `http://${address}/metrics`;
    return startWorker('us-east-1', secretsFile, planFile, env, ['--metrics-address', address]);
  }
  const workerEnv = () => ({ ...stack.env, LIFEBOAT_SPOOL: path.join(tmp, 'spool') });
  const manifestOf = async (id: string): Promise<BackupManifest> => {
    const parsed = parseManifest(
      Buffer.from(await store.get(repository.manifest('', DB, id))).toString('utf8'),
    );
    assert.ok(parsed.ok, JSON.stringify(parsed));
    return parsed.manifest;
  };

  before(async () => {
    stack = await ensureStack();
    connection = await Connection.connect({ address: stack.layout.temporal.address });
    client = new Client({ connection });
    tmp = tempDir('lifeboat-metrics-');
    const archiving = writeArchivingPlan(stack, tmp, {
      name: 'metrics',
      edit: (raw) => {
        raw.storage.primary.storageClass = STORAGE_CLASS;
        for (const p of raw.backup.policies as { database: string; storageClass?: string }[])
          if (p.database === DB) p.storageClass = POLICY_STORAGE_CLASS;
      },
    });
    planFile = archiving.planFile;
    const plan = archiving.plan;
    store = createObjectStore(plan.storage.primary, stack.env);
    s3 = createS3Client(plan.storage.primary, stack.env);
    ({ bucket, prefix } = store);
    admin = await connectPrimary(stack);
    await resetArchiver(client, admin);
    await admin.query('create table if not exists metrics_probe (id bigserial primary key, note text)');
    worker = await startMetricsWorker(workerEnv(), stack.layout.secretsFile);

    const archiver = await cli(['archiver', 'start', '--database', DB]);
    assert.equal(archiver.code, 0, archiver.stderr);
    const fullRun = await cli(['backup', 'full', '--database', DB, '--json']);
    assert.equal(fullRun.code, 0, fullRun.stdout + fullRun.stderr);
    full = await manifestOf((JSON.parse(fullRun.stdout) as { backupId: string }).backupId);
    await admin.query(
      `insert into metrics_probe (note) select 'change ' || g from generate_series(1, 200) g`,
    );
    const incRun = await cli(['backup', 'incremental', '--database', DB, '--json']);
    assert.equal(incRun.code, 0, incRun.stdout + incRun.stderr);
    const inc = JSON.parse(incRun.stdout) as IncrementalBackupResult;
    incremental = await manifestOf(inc.backupId);
    assert.equal(incremental.sizes.stored, inc.storedBytes);
    await terminateArchiver(client, 'metrics test: backups taken');
  });

  after(async () => {
    if (client) await terminateArchiver(client, 'test over');
    await worker?.stop('SIGTERM');
    await releasePrimary(admin, 'metrics_probe');
    await connection?.close();
  });

  it('reports duration, stored bytes, successes and the newest verified backup per database and kind', async () => {
    const scrapedAt = Date.now();
    const series = await scrape(metricsUrl);
    // The worker refreshes the age every 5 s, possibly while the scrape is in flight: the bound
    // is the time the answer arrived.
    const answeredAt = Date.now();
    process.stderr.write(
      `# ${[...series.entries()]
        .filter(([k]) => /^lifeboat_(backup|wal_last)/.test(k))
        .map(([k, v]) => `${k} ${v}`)
        .join('\n# ')}\n`,
    );
    for (const m of [full, incremental]) {
      const tags = { database: DB, kind: m.kind };
      assert.equal(value(series, 'lifeboat_backup_succeeded', tags), 1, m.kind);
      assert.equal(value(series, 'lifeboat_backup_stored_bytes', tags), m.sizes.stored, m.kind);
      assert.equal(value(series, 'lifeboat_backup_duration_seconds', tags), m.timings.totalMs / 1000, m.kind);
      assert.equal(
        value(series, 'lifeboat_backup_newest_verified_timestamp_seconds', tags),
        Date.parse(m.verification.at) / 1000,
        m.kind,
      );
      const age = value(series, 'lifeboat_backup_newest_verified_age_seconds', tags);
      assert.ok(
        age >= 0 && age <= (answeredAt - Date.parse(m.verification.at)) / 1000,
        `${m.kind} age ${age}`,
      );
    }
    // WAL archive lag: the archiver stored the incremental's segments while this worker ran it.
    const lastArchived = value(series, 'lifeboat_wal_last_archived_timestamp_seconds', { database: DB });
    assert.ok(
      lastArchived >= Date.parse(full.timings.startedAt) / 1000 && lastArchived <= scrapedAt / 1000,
      `last archived ${lastArchived}`,
    );
    assert.equal(full.kind, 'full');
    assert.equal(incremental.kind, 'incremental');
    assert.ok(!hasName(series, 'lifeboat_backup_failed'), 'no failure counted');
  });

  it("writes the database's objects with its policy's storage class, others with the location's", async () => {
    const keys = [
      ...full.objects.map((o) => o.key),
      ...incremental.objects.map((o) => o.key),
      repository.manifest('', DB, full.id),
      repository.manifest('', DB, incremental.id),
    ];
    assert.ok(full.objects.some((o) => o.role === 'base'));
    assert.ok(incremental.objects.some((o) => o.role === 'wal'));
    for (const key of keys) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: joinKey(prefix, key) }));
      assert.equal(head.StorageClass, POLICY_STORAGE_CLASS, key);
      // The base tar goes up as a multipart upload (ETag "<md5>-<parts>"); the rest by PutObject.
      if (key === full.objects.find((o) => o.role === 'base')!.key) assert.match(head.ETag ?? '', /-\d+"?$/);
    }
    // Audit records of the runs belong to no database: the location's class.
    const audit = (await store.list('audit/')).map((o) => o.key);
    assert.ok(audit.length > 0, 'audit records of the backups');
    for (const key of audit) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: joinKey(prefix, key) }));
      assert.equal(head.StorageClass, STORAGE_CLASS, key);
    }
    process.stderr.write(
      `# ${keys.length} objects stored as ${POLICY_STORAGE_CLASS}, ${audit.length} audit records as ${STORAGE_CLASS}\n`,
    );
  });

  it('after a restart reads the last figures and the newest verified backup back from the catalog', async () => {
    await worker!.stop('SIGTERM');
    worker = await startMetricsWorker(workerEnv(), stack.layout.secretsFile);
    const series = await scrapeUntil(metricsUrl, (s) =>
      hasName(s, 'lifeboat_backup_newest_verified_timestamp_seconds'),
    );
    for (const m of [full, incremental]) {
      const tags = { database: DB, kind: m.kind };
      assert.equal(value(series, 'lifeboat_backup_stored_bytes', tags), m.sizes.stored, m.kind);
      assert.equal(value(series, 'lifeboat_backup_duration_seconds', tags), m.timings.totalMs / 1000, m.kind);
      assert.equal(
        value(series, 'lifeboat_backup_newest_verified_timestamp_seconds', tags),
        Date.parse(m.verification.at) / 1000,
      );
    }
    assert.ok(!hasName(series, 'lifeboat_backup_succeeded'), 'counters start afresh with the process');
  });

  it('counts a failed backup by its error type (a worker whose S3 secret is wrong: AccessDenied)', async () => {
    await worker!.stop('SIGTERM');
    const badSecrets = path.join(tmp, 'bad-secrets.env');
    fs.writeFileSync(
      badSecrets,
      fs
        .readFileSync(stack.layout.secretsFile, 'utf8')
        .replace(/^LIFEBOAT_S3_SECRET_ACCESS_KEY=.*$/m, 'LIFEBOAT_S3_SECRET_ACCESS_KEY=wrong-secret'),
    );
    worker = await startMetricsWorker(
      { ...workerEnv(), LIFEBOAT_S3_SECRET_ACCESS_KEY: 'wrong-secret' },
      badSecrets,
    );
    const run = await cli(['backup', 'full', '--database', DB, '--json']);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stdout + run.stderr, /checking-storage: .*403/);
    const series = await scrape(metricsUrl);
    assert.equal(
      value(series, 'lifeboat_backup_failed', { database: DB, kind: 'full', type: 'AccessDenied' }),
      1,
    );
    assert.ok(!hasName(series, 'lifeboat_backup_succeeded'));
  });
});

type Series = Map<string, number>;

/** The endpoint's samples by `name{label="value",...}` as exposed. */
async function scrape(url: string): Promise<Series> {
  const text = await (await fetch(url)).text();
  const series: Series = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    series.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return series;
}

async function scrapeUntil(url: string, ready: (s: Series) => boolean): Promise<Series> {
  for (let i = 0; ; i++) {
    const s = await scrape(url);
    if (ready(s)) return s;
    assert.ok(i < 60, `metrics not ready within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

const hasName = (s: Series, name: string) => [...s.keys()].some((k) => k.split('{')[0] === name);

/** The one sample of `name` whose labels include `tags`. */
function value(s: Series, name: string, tags: Record<string, string>): number {
  const hits = [...s.entries()].filter(
    ([k]) => k.split('{')[0] === name && Object.entries(tags).every(([t, v]) => k.includes(`${t}="${v}"`)),
  );
  assert.equal(hits.length, 1, `${name} ${JSON.stringify(tags)}: ${hits.length} samples`);
  return hits[0]![1];
}
