// The second copy (3-2-1) on the real local stack: a plan copy whose storage.secondary is another
// bucket of the stack's SeaweedFS. A full backup and the WAL archiver write to both, byte for byte;
// `lifeboat compliance` sees the copy; a different object already on the secondary is never
// overwritten; and with every object of the primary location deleted, a point-in-time restore
// runs from the secondary and says so.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import {
  createObjectStore,
  createS3Client,
  type ObjectStore,
} from '../../src/activities/ports/object-store.ts';
import { readEitherStore } from '../../src/activities/read-either.ts';
import { copyObject, createReplicateActivities, hashStored } from '../../src/activities/replicate.ts';
import { parseSnapshot } from '../../src/domain/kubernetes-snapshot.ts';
import { parseManifest, type BackupManifest } from '../../src/domain/manifest.ts';
import { workflowIds } from '../../src/domain/naming.ts';
import { repository } from '../../src/domain/repository.ts';
import type { RestoreResult } from '../../src/domain/restore.ts';
import type { SecondCopyReport } from '../../src/domain/second-copy.ts';
import { loadPlan } from '../../src/workers/plan-file.ts';
import {
  connectPrimary,
  DB,
  fullBackup,
  releasePrimary,
  resetArchiver,
  startArchiver,
  terminateArchiver,
  writeArchivingPlan,
} from '../support/archiving.ts';
import { stopRestoredInstance } from '../support/backups.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';

const COPY_BUCKET = 'lifeboat-backups-copy';
const ROWS = 20;

describe('second copy (3-2-1) on the local stack', () => {
  let stack: TestStack;
  let connection: Connection;
  let client: Client;
  let primary: ObjectStore;
  let secondary: ObjectStore;
  let planFile: string;
  let tmp: string;
  let restoreRoot: string;
  let admin: pg.Client;
  let east: WorkerProcess;
  let west: WorkerProcess;
  let backupId: string;
  let secondCopy: SecondCopyReport | undefined;
  let segment: string;

  before(async () => {
    stack = await ensureStack();
    connection = await Connection.connect({ address: stack.layout.temporal.address });
    client = new Client({ connection });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-copy-'));
    fs.chmodSync(tmp, 0o755);
    restoreRoot = path.join(tmp, 'restores');
    const archiving = writeArchivingPlan(stack, tmp, {
      name: 'copy',
      walPartialUpload: '3s',
      edit: (raw, folder) => {
        raw.storage.secondary = { ...raw.storage.primary, url: `s3://${COPY_BUCKET}/${folder}` };
      },
    });
    planFile = archiving.planFile;
    const plan = archiving.plan;
    await createS3Client(plan.storage.secondary!, stack.env)
      .send(new CreateBucketCommand({ Bucket: COPY_BUCKET }))
      .catch((err: { name?: string }) => {
        if (err.name !== 'BucketAlreadyOwnedByYou' && err.name !== 'BucketAlreadyExists') throw err;
      });
    primary = createObjectStore(plan.storage.primary, stack.env);
    secondary = createObjectStore(plan.storage.secondary!, stack.env);
    const workerEnv = {
      ...stack.env,
      LIFEBOAT_SPOOL: path.join(tmp, 'spool'),
      LIFEBOAT_RESTORE_ROOT: restoreRoot,
    };
    [east, west] = await Promise.all([
      startWorker('us-east-1', stack.layout.secretsFile, planFile, workerEnv),
      startWorker('us-west-2', stack.layout.secretsFile, planFile, workerEnv),
    ]);

    admin = await connectPrimary(stack);
    await resetArchiver(client, admin);
    await admin.query('drop table if exists copy_rows');
    await admin.query('create table copy_rows (id int primary key)');

    // Archiver first (its slot holds the WAL from here on), then a full backup, then rows.
    await startArchiver(client, '30s');
    const started = Date.now();
    const result = await fullBackup(client);
    backupId = result.backupId;
    secondCopy = result.secondCopy;
    console.log(`full backup with its second copy: ${Date.now() - started} ms`, secondCopy);
    for (let id = 1; id <= ROWS; id++) await admin.query('insert into copy_rows (id) values ($1)', [id]);
    const end = (await admin.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn'))
      .rows[0]!.lsn;
    await admin.query('select pg_switch_wal()');
    segment = (await admin.query<{ f: string }>('select pg_walfile_name($1) as f', [end])).rows[0]!.f;
    // The archiver lets a segment go only once both copies hold it: wait for the secondary's.
    for (let i = 0; !(await secondary.head(repository.walSegment('', DB, segment))); i++) {
      assert.ok(i < 120, `${segment} (holding ${end}) not on the secondary within 60 s`);
      await sleep(500);
    }
  });

  after(async () => {
    for (const dir of fs.existsSync(restoreRoot) ? fs.readdirSync(restoreRoot) : [])
      stopRestoredInstance(stack.layout, path.join(restoreRoot, dir, 'data'));
    if (client) await terminateArchiver(client, 'test over');
    await Promise.all([east?.stop('SIGTERM'), west?.stop('SIGTERM')]);
    await releasePrimary(admin, 'copy_rows');
    await connection?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** Every key a backup's copy consists of: its objects, its Kubernetes export, its manifest. */
  const backupKeys = async (manifest: BackupManifest, manifestKey: string): Promise<string[]> => {
    const k8s: string[] = [];
    if (manifest.kubernetes) {
      const snapshot = parseSnapshot(
        Buffer.from(await primary.get(manifest.kubernetes.snapshot)).toString('utf8'),
      );
      assert.ok(snapshot.ok);
      k8s.push(...snapshot.snapshot.objects.map((o) => o.key), manifest.kubernetes.snapshot);
    }
    return [...manifest.objects.map((o) => o.key), ...k8s, manifestKey];
  };

  it('a full backup lands in both locations byte-identical, its Kubernetes export and manifest included', async () => {
    const manifestKey = repository.manifest('', DB, backupId);
    const manifest = parseManifest(Buffer.from(await primary.get(manifestKey)).toString('utf8'));
    assert.ok(manifest.ok);
    const keys = await backupKeys(manifest.manifest, manifestKey);
    assert.ok(manifest.manifest.kubernetes, 'the stack plan exports the shop namespace with the backup');
    for (const key of keys) {
      const [a, b] = await Promise.all([hashStored(primary, key), hashStored(secondary, key)]);
      assert.equal(b.sha256, a.sha256, `${key}: sha256 on the secondary`);
      assert.equal(b.bytes, a.bytes, `${key}: size on the secondary`);
    }
    const base = manifest.manifest.objects.find((o) => o.role === 'base')!;
    assert.equal((await hashStored(secondary, base.key)).sha256, base.sha256, 'the manifest checksum');
    assert.ok(
      secondCopy && !('error' in secondCopy),
      `the workflow reports the copy: ${JSON.stringify(secondCopy)}`,
    );
    assert.equal(secondCopy.objects, keys.length);
    assert.equal(secondCopy.location, `s3://${COPY_BUCKET}/${secondary.prefix}`);
    const list = await runCli(['backups', 'list', '--database', DB, '-f', planFile, '--json'], stack.env);
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout) as { backups: { id: string; secondCopy?: boolean | null }[] };
    assert.equal(
      listed.backups.find((b) => b.id === backupId)?.secondCopy,
      true,
      'backups list shows the copy',
    );
  });

  it('archived WAL lands in both locations byte-identical', async () => {
    const key = repository.walSegment('', DB, segment);
    const [a, b] = await Promise.all([hashStored(primary, key), hashStored(secondary, key)]);
    assert.equal(b.sha256, a.sha256);
    const onPrimary = (await primary.list(repository.walPrefix('', DB))).map((o) => o.key);
    const onSecondary = new Set((await secondary.list(repository.walPrefix('', DB))).map((o) => o.key));
    // Segments are uploaded in order, each to both locations before the next: every completed
    // segment up to the one awaited on the secondary is in both (later ones may be in flight).
    const completed = /\/([0-9A-F]{24})\.zst\.age$/;
    const missing = onPrimary.filter((k) => {
      const name = completed.exec(k)?.[1];
      return name !== undefined && name <= segment && !onSecondary.has(k);
    });
    assert.ok(onPrimary.some((k) => k.endsWith(`/${segment}.zst.age`)));
    assert.deepEqual(missing, []);
  });

  it("the backup run's audit record and a legal-hold marker land on the secondary too", async () => {
    const { runId } = await client.workflow.getHandle(workflowIds.backup(DB)).describe();
    const audit = (await primary.list('')).map((o) => o.key).filter((k) => k.includes(runId));
    assert.equal(audit.length, 1, `one audit record of run ${runId}: ${audit.join(', ')}`);
    const hold = await runCli(
      [
        'backups',
        'hold',
        '--database',
        DB,
        '--backup',
        backupId,
        '--reason',
        'second copy test',
        '-f',
        planFile,
        '--json',
      ],
      stack.env,
    );
    assert.equal(hold.code, 0, hold.stderr);
    const { key: marker } = JSON.parse(hold.stdout) as { key: string };
    for (const key of [...audit, marker]) {
      const [a, b] = await Promise.all([hashStored(primary, key), hashStored(secondary, key)]);
      assert.equal(b.sha256, a.sha256, `${key}: sha256 on the secondary`);
    }
  });

  it('lifeboat compliance passes the second-location rule after a real backup', async () => {
    const out = await runCli(['compliance', '-f', planFile, '--json'], stack.env);
    assert.ok(out.code === 0 || out.code === 1, `exit ${out.code}: ${out.stderr}`);
    const report = JSON.parse(out.stdout) as {
      results: { rule: string; subject: string; status: string; evidence: string[] }[];
    };
    const rule = report.results.find((r) => r.rule === 'second-location' && r.subject === DB);
    assert.equal(rule?.status, 'pass', JSON.stringify(rule));
    assert.match(rule.evidence.join('\n'), new RegExp(backupId));
  });

  it('an incremental backup is copied too: its WAL objects, then its manifest', async () => {
    // The rows written after the full backup are what it seals.
    const run = await runCli(
      ['backup', 'incremental', '--database', DB, '-f', planFile, '--json'],
      stack.env,
    );
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const inc = JSON.parse(run.stdout) as {
      outcome: string;
      backupId: string;
      secondCopy?: SecondCopyReport;
    };
    assert.equal(inc.outcome, 'completed');
    const manifestKey = repository.manifest('', DB, inc.backupId);
    const manifest = parseManifest(Buffer.from(await secondary.get(manifestKey)).toString('utf8'));
    assert.ok(manifest.ok, 'the manifest on the secondary validates');
    const keys = await backupKeys(manifest.manifest, manifestKey);
    for (const key of keys) {
      const [a, b] = await Promise.all([hashStored(primary, key), hashStored(secondary, key)]);
      assert.equal(b.sha256, a.sha256, `${key}: sha256 on the secondary`);
    }
    assert.ok(inc.secondCopy && !('error' in inc.secondCopy), JSON.stringify(inc.secondCopy));
    assert.equal(inc.secondCopy.objects, keys.length);
  });

  it('a different object already on the secondary is never overwritten, and no manifest is copied past it', async () => {
    // A third location, seeded with a different object at the backup's base key.
    const other = createObjectStore(
      { ...loadPlan(planFile).storage.secondary!, url: `s3://${COPY_BUCKET}/${secondary.prefix}-clash` },
      stack.env,
    );
    const manifest = parseManifest(
      Buffer.from(await primary.get(repository.manifest('', DB, backupId))).toString('utf8'),
    );
    assert.ok(manifest.ok);
    const base = manifest.manifest.objects.find((o) => o.role === 'base')!;
    await other.put(base.key, 'not the backup');
    const copy = createReplicateActivities({ stores: { primary, secondary: other } });
    await assert.rejects(
      copy.replicateBackup({ database: DB, backupId }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'IntegrityError');
        assert.match(err.message, /already exists and differs .* never overwritten/);
        return true;
      },
    );
    assert.equal(Buffer.from(await other.get(base.key)).toString('utf8'), 'not the backup');
    assert.equal(
      await other.head(repository.manifest('', DB, backupId)),
      undefined,
      'no manifest on the clash',
    );
    // The identical object already there is success, not an error.
    const again = await copyObject(primary, secondary, base.key, { expectedSha256: base.sha256 });
    assert.equal(again.outcome, 'present');
  });

  it('an object larger than a copy part is streamed as a multipart upload, byte-identical, nothing left pending', async () => {
    const key = 'second-copy-test/large.bin';
    const body = crypto.randomBytes(17 * 1024 * 1024 + 123);
    await primary.put(key, body);
    const r = await copyObject(primary, secondary, key);
    assert.equal(r.outcome, 'copied');
    assert.equal(r.bytes, body.length);
    const want = crypto.createHash('sha256').update(body).digest('hex');
    assert.equal((await hashStored(secondary, key)).sha256, want);
    const head = await secondary.head(key);
    assert.equal(head?.size, body.length);
    // A completed multipart upload's ETag ends in -<parts>: 16 MiB + the rest.
    assert.match(head.etag ?? '', /-2"?$/);
    assert.deepEqual(await secondary.listMultipartUploads('second-copy-test/'), []);
    await Promise.all([primary.delete(key), secondary.delete(key)]);
  });

  it('wal-fetch\'s reader: an unreachable primary falls back to the secondary, and is never taken for "absent"', async () => {
    // A primary whose endpoint refuses connections (a closed port), the real secondary.
    const plan = loadPlan(planFile);
    const down = createObjectStore({ ...plan.storage.primary, endpoint: 'https://127.0.0.1:9' }, stack.env);
    const served: string[] = [];
    const either = readEitherStore(down, secondary, (location, key) => served.push(`${location} ${key}`));
    const key = repository.walSegment('', DB, segment);
    assert.ok(await either.head(key));
    assert.equal((await hashStored(either, key)).sha256, (await hashStored(secondary, key)).sha256);
    assert.ok(served.includes(`secondary ${key}`), served.join(', '));
    await assert.rejects(either.head(repository.walSegment('', DB, 'FFFFFFFF0000000000000000')));
  });

  it(
    'with the primary location emptied, a point-in-time restore runs from the secondary and says so',
    { timeout: 180_000 },
    async () => {
      // The archiver is stopped first (it would go on writing partials), then the loss: every
      // object of the primary location goes (backups, manifests, WAL, audit records, holds).
      const stop = await runCli(['archiver', 'stop', '--database', DB, '-f', planFile, '--json'], stack.env);
      assert.equal(stop.code, 0, stop.stderr);
      // Its run is over (its audit record written) before anything is deleted.
      await client.workflow.getHandle(workflowIds.walArchiver(DB)).result();
      for (const o of await primary.list('')) await primary.delete(o.key);
      assert.deepEqual(await primary.list(''), []);
      const handle = await client.workflow.start('pointInTimeRestoreWorkflow', {
        taskQueue: 'lifeboat',
        workflowId: `${workflowIds.restore(DB, new Date())}-from-copy`,
        args: [{ database: DB, region: 'us-west-2', requestedBy: 'test', target: 'latest' }],
      });
      const r = (await handle.result()) as RestoreResult;
      const c = new pg.Client({
        host: r.instance.host,
        port: r.instance.port,
        user: stack.plan.regions['us-west-2']!.postgres.user,
        password: stack.secrets.LIFEBOAT_PG_PASSWORD,
        database: DB,
      });
      await c.connect();
      try {
        const rows = (await c.query<{ id: number }>('select id from copy_rows order by id')).rows.map(
          (x) => x.id,
        );
        assert.deepEqual(
          rows,
          Array.from({ length: ROWS }, (_, i) => i + 1),
        );
      } finally {
        await c.end();
      }
      // Said in the run's history (the base backup's activity result) and in the server's log (WAL).
      const events = (await handle.fetchHistory()).events ?? [];
      const scheduled = events.find(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'restoreBaseBackup',
      )!;
      const completed = events.find(
        (e) =>
          e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() ===
          scheduled.eventId?.toString(),
      );
      const payload = completed?.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data;
      assert.ok(payload, 'restoreBaseBackup completed');
      assert.equal(
        (JSON.parse(Buffer.from(payload).toString('utf8')) as { servedBy?: string }).servedBy,
        'secondary',
      );
      const serverLog = fs.readFileSync(path.join(`${r.instance.dataDir}.lifeboat`, 'postgres.log'), 'utf8');
      assert.match(serverLog, /served by the secondary location/);
      console.log(`restore from the secondary: ${JSON.stringify(r.rto)}`);
    },
  );
});
