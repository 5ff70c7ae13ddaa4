// fullBackupWorkflow against the real local stack, with real worker processes started through the
// CLI: a backup of known content restored by hand with stock tools; workers SIGKILLed while
// uploading and while verifying; bad input; storage down at the start. Only a us-east-1 worker runs, so every activity
// of a backup runs in the process the test kills.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ListPartsCommand, type S3Client } from '@aws-sdk/client-s3';
import { Client, Connection, type WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { FullBackupProgress, FullBackupResult } from '../../src/domain/backup.ts';
import { repository } from '../../src/domain/repository.ts';
import { stackS3Client } from '../../src/stack/aws-clients.ts';
import { startS3Server, stopS3Server } from '../../src/stack/s3-server.ts';
import {
  breakGlassRestore,
  connect,
  freePort,
  listKeys,
  listUploads,
  pgVerifyBackup,
  readManifest,
  seedKnownContent,
  startRestored,
  storageOf,
  tableDigests,
} from '../support/backups.ts';
import { leakedSecrets } from '../support/history.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';

const STARTED = proto.temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

describe('full backup on the local stack', () => {
  let stack: TestStack;
  let worker: WorkerProcess;
  let client: Client;
  let connection: Connection;
  let s3: S3Client;
  let bucket: string;
  let prefix: string;
  let stopping = false;

  const restartWorker = async () => {
    worker = await startWorker('us-east-1', stack.layout.secretsFile, stack.planFile, stack.env);
    const w = worker;
    // A worker that dies on its own (not by the test's signal) says why.
    w.child.once('exit', (code, signal) => {
      if (!stopping && signal !== 'SIGKILL')
        process.stderr.write(`# worker exited by itself (${code ?? signal}):\n${w.output().slice(-3000)}\n`);
    });
  };
  const primaryClient = () =>
    connect({
      host: stack.layout.postgres['us-east-1'].host,
      port: stack.layout.postgres['us-east-1'].port,
      user: stack.layout.postgres.appUser,
      password: stack.secrets.LIFEBOAT_PG_PASSWORD,
      database: 'orders',
    });
  const backupFolder = (backupId: string) => `${repository.backupFolder(prefix, 'orders', backupId)}/`;
  /** Nothing under the backup's folder but what its manifest names; no unfinished upload. */
  const assertNothingLeft = async (backupId: string, keep: string[]) => {
    assert.deepEqual(await listUploads(s3, bucket, backupFolder(backupId)), [], 'no multipart upload left');
    assert.deepEqual(
      (await listKeys(s3, bucket, backupFolder(backupId))).sort(),
      keep.map((k) => `${prefix}/${k}`).sort(),
      'no object but the manifest’s',
    );
  };
  /** Waits until a backup's workflow is done with anything that would run a backup. */
  const waitClosed = async (handle: WorkflowHandle) => {
    await handle.result().catch(() => undefined);
  };

  before(async () => {
    stack = await ensureStack();
    connection = await Connection.connect({ address: stack.layout.temporal.address });
    client = new Client({ connection });
    s3 = stackS3Client(stack.layout, stack.secrets);
    ({ bucket, prefix } = storageOf(stack.plan));
    // An earlier run of this file may have been interrupted mid-backup.
    await waitClosed(client.workflow.getHandle('backup-orders'));
    await seedKnownContent(stack.layout, stack.secrets);
    await restartWorker();
  });

  after(async () => {
    stopping = true;
    await worker?.stop('SIGTERM');
    await connection?.close();
    s3?.destroy();
  });

  it(
    'backs up known content that restores by hand with the AWS SDK, age, zstd, tar and pg_ctl',
    { timeout: 120_000 },
    async () => {
      const db = await primaryClient();
      const before = await tableDigests(db).finally(() => db.end());
      assert.equal(before.pgbench_accounts!.rows, 200_000);

      const run = await runCli(
        ['backup', 'full', '--database', 'orders', '-f', stack.planFile, '--json'],
        stack.env,
      );
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const result = JSON.parse(run.stdout) as FullBackupResult & { workflowId: string };
      assert.equal(result.workflowId, 'backup-orders');
      assert.equal(result.attempts, 1);
      assert.equal(result.verification.method, 'content');
      // Compressed by pg_basebackup (PostgreSQL 15), teed to age and to the check, every file
      // checked against backup_manifest as it streamed; read back (the upload's sha256) and
      // opened by age afterwards.
      assert.match(
        result.verification.detail,
        /sha256 match; decrypted by age \(every chunk authenticated\): the very bytes whose files were checked as they streamed; [1-9]\d+ files matched backup_manifest as they streamed, [1-9]\d* WAL segment\(s\)/,
      );
      console.log(
        `# backup of ${(result.rawBytes / 1e6).toFixed(1)} MB raw → ${(result.storedBytes / 1e6).toFixed(1)} MB stored in ${result.durationMs} ms (streamed in ${result.streamMs} ms)`,
      );

      const manifest = await readManifest(s3, stack.plan, 'orders', result.backupId);
      assert.equal(manifest.kind, 'full');
      assert.equal(manifest.parent, null);
      assert.equal(manifest.verification.verified, true);
      assert.equal(manifest.start.lsn, result.startLsn);
      assert.equal(manifest.stop.lsn, result.stopLsn);
      assert.match(manifest.postgres.systemIdentifier, /^\d{10,}$/);
      assert.equal(manifest.postgres.versionNum >= 150000, true);
      await assertNothingLeft(
        result.backupId,
        manifest.objects.map((o) => o.key),
      );

      const list = await runCli(
        [
          'backups',
          'list',
          '--database',
          'orders',
          '-f',
          stack.planFile,
          '--env-file',
          stack.layout.secretsFile,
          '--json',
        ],
        stack.env,
      );
      assert.equal(list.code, 0, list.stderr);
      const listed = (
        JSON.parse(list.stdout) as { backups: { id: string; verified: boolean; stopLsn: string }[] }
      ).backups;
      assert.deepEqual(
        listed.find((b) => b.id === result.backupId),
        { ...listed.find((b) => b.id === result.backupId), verified: true, stopLsn: result.stopLsn },
      );

      const history = await client.workflow.getHandle(result.workflowId).fetchHistory();
      assert.deepEqual(leakedSecrets(history, stack.secrets), []);
      const described = await client.workflow.getHandle(result.workflowId).describe();
      assert.deepEqual(described.searchAttributes.LifeboatKind, ['backup-full']);
      assert.deepEqual(described.searchAttributes.LifeboatOutcome, ['completed']);

      const restored = await breakGlassRestore({
        s3,
        plan: stack.plan,
        manifest,
        identity: stack.secrets.LIFEBOAT_AGE_IDENTITY!,
        osUser: stack.layout.postgres.osUser,
      });
      try {
        assert.match(await pgVerifyBackup(stack.layout, restored.dir), /backup successfully verified/);
        const port = await freePort();
        const server = await startRestored(stack.layout, restored.dir, port);
        try {
          const copy = await connect({
            host: server.socketDir,
            port,
            user: stack.layout.postgres.appUser,
            database: 'orders',
          });
          const after = await tableDigests(copy).finally(() => copy.end());
          assert.deepEqual(after, before);
        } finally {
          await server.stop();
        }
      } finally {
        restored.cleanup();
      }
    },
  );

  it(
    'finishes with one correct backup and nothing left behind when its worker is SIGKILLed while uploading and again while verifying',
    { timeout: 240_000 },
    async () => {
      // Throttled and in 5 MiB parts so that the kills land while parts are uploading.
      const handle = await client.workflow.start('fullBackupWorkflow', {
        taskQueue: 'lifeboat',
        workflowId: 'backup-orders',
        workflowIdConflictPolicy: 'FAIL',
        args: [{ database: 'orders', requestedBy: 'kill-test', maxRate: '40M', partSizeMiB: 5 }],
      });
      const progress = async () => handle.query<FullBackupProgress>('progress');
      const pendingStarted = async (type: string) => {
        const pending = (await handle.describe()).raw.pendingActivities ?? [];
        return pending.find((a) => a.activityType?.name === type && a.state === STARTED);
      };
      /** Parts uploaded so far by the running attempt (from S3 itself). */
      const partsUploaded = async (backupId: string): Promise<number> => {
        const uploads = await listUploads(s3, bucket, backupFolder(backupId));
        let parts = 0;
        for (const u of uploads) {
          const out = await s3
            .send(new ListPartsCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }))
            .catch(() => undefined);
          parts = Math.max(parts, out?.Parts?.length ?? 0);
        }
        return parts;
      };
      const killWhen = async (what: string, ready: () => Promise<boolean>) => {
        for (let i = 0; !(await ready()); i++) {
          assert.ok(i < 1200, `never reached: ${what}`);
          await sleep(25);
        }
        assert.equal(await worker.stop('SIGKILL'), null);
        const at = Date.now() - started;
        await restartWorker();
        kills.push(`${what} at ${at} ms (phase ${(await progress()).phase})`);
      };
      const kills: string[] = [];
      const started = Date.now();
      const { backupId } = await progress().then(
        (p) => p,
        async () => {
          await sleep(500);
          return progress();
        },
      );

      // One kill per phase with its own recovery: an upload in flight (the retry aborts it and
      // streams again under a new attempt folder), then a read-back in flight (the verification
      // is retried; nothing is streamed again). A second kill while uploading would take the same
      // path as the first and only add a heartbeat timeout (15 s) to the run.
      await killWhen('attempt 1: first part uploaded', async () => (await partsUploaded(backupId)) >= 1);
      await killWhen(
        'uploaded, verifying, no manifest yet',
        async () => (await pendingStarted('verifyBackup')) !== undefined,
      );

      const result = (await handle.result()) as FullBackupResult;
      console.log(
        `# kills: ${kills.join('; ')}; backup took ${result.durationMs} ms in ${result.attempts} attempts`,
      );
      assert.equal(result.backupId, backupId);
      assert.equal(result.attempts, 2, `streamed ${result.attempts} times`);
      const manifest = await readManifest(s3, stack.plan, 'orders', backupId);
      assert.equal(manifest.timings.attempts, result.attempts);
      assert.equal(manifest.verification.method, 'content');
      assert.match(
        manifest.objects[0]!.key,
        new RegExp(`/attempt-${result.attempts}/base\\.tar\\.zst\\.age$`),
      );
      await assertNothingLeft(
        backupId,
        manifest.objects.map((o) => o.key),
      );
    },
  );

  it(
    'refuses an unknown database: exit 2 at the CLI, a non-retryable named failure in the workflow',
    { timeout: 60_000 },
    async () => {
      const run = await runCli(['backup', 'full', '--database', 'nope', '-f', stack.planFile], stack.env);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /--database: "nope" is not in the plan; declared: orders/);

      const handle = await client.workflow.start('fullBackupWorkflow', {
        taskQueue: 'lifeboat',
        workflowId: `backup-nope-${Date.now()}`,
        args: [{ database: 'nope' }],
      });
      await assert.rejects(handle.result(), (err: WorkflowFailedError) => {
        assert.match(
          err.cause?.message ?? '',
          /database "nope" is not in the plan "local"; declared: orders/,
        );
        return true;
      });
      const history = await handle.fetchHistory();
      assert.equal(
        history.events!.filter(
          (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'streamBaseBackup',
        ).length,
        0,
      );
    },
  );

  it(
    'refuses a second backup while one runs, saying which; a cancelled backup leaves nothing',
    { timeout: 60_000 },
    async () => {
      const handle = await client.workflow.start('fullBackupWorkflow', {
        taskQueue: 'lifeboat',
        workflowId: 'backup-orders',
        workflowIdConflictPolicy: 'FAIL',
        args: [{ database: 'orders', maxRate: '2M', partSizeMiB: 5 }],
      });
      for (let i = 0; !(await pendingStartedOf(handle, 'streamBaseBackup')); i++) {
        assert.ok(i < 400, 'streaming never started');
        await sleep(25);
      }
      const run = await runCli(['backup', 'full', '--database', 'orders', '-f', stack.planFile], stack.env);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.match(
        run.stderr,
        /^lifeboat: a backup of orders is already running: backup-orders \(fullBackupWorkflow, run [\w-]+\), started \d{4}-\d\d-\d\dT[\d:.]+Z; follow it with lifeboat status backup-orders --watch$/m,
      );
      assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');

      const status = await runCli(['status', 'backup-orders'], stack.env);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /full backup orders-full-\w+ of orders: streaming for/);

      const { backupId } = await handle.query<FullBackupProgress>('progress');
      await handle.cancel();
      await assert.rejects(
        handle.result(),
        (err: WorkflowFailedError) => err.cause?.name === 'CancelledFailure',
      );
      await assertNothingLeft(backupId, []);
    },
  );

  it(
    'waits while storage is down at the start and completes once it is back',
    { timeout: 120_000 },
    async () => {
      // Killed after 1 s: a clean stop of SeaweedFS takes ~16 s and down is down either way.
      await stopS3Server(stack.layout, 1000);
      let s3Up = false;
      try {
        const handle = await client.workflow.start('fullBackupWorkflow', {
          taskQueue: 'lifeboat',
          workflowId: 'backup-orders',
          workflowIdConflictPolicy: 'FAIL',
          args: [{ database: 'orders' }],
        });
        for (let i = 0; ; i++) {
          const check = await pendingOf(handle, 'checkBackupStorage');
          if ((check?.attempt ?? 0) >= 2 && check?.lastFailure?.message) {
            assert.match(check.lastFailure.message, /storage s3:\/\/lifeboat-backups\/lifeboat: /);
            break;
          }
          assert.ok(i < 600, 'the storage check was never retried');
          await sleep(50);
        }
        assert.equal((await handle.query<FullBackupProgress>('progress')).phase, 'checking-storage');
        await startS3Server(stack.layout, stack.secrets, stack.plan);
        s3Up = true;
        const result = (await handle.result()) as FullBackupResult;
        assert.equal(result.verification.method, 'content');
        const manifest = await readManifest(s3, stack.plan, 'orders', result.backupId);
        await assertNothingLeft(
          result.backupId,
          manifest.objects.map((o) => o.key),
        );
      } finally {
        if (!s3Up) await startS3Server(stack.layout, stack.secrets, stack.plan);
      }
    },
  );
});

async function pendingOf(handle: WorkflowHandle, type: string) {
  const pending = (await handle.describe()).raw.pendingActivities ?? [];
  return pending.find((a) => a.activityType?.name === type);
}

async function pendingStartedOf(handle: WorkflowHandle, type: string) {
  const a = await pendingOf(handle, type);
  return a?.state === STARTED ? a : undefined;
}
