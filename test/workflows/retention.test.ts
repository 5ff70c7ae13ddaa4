// retentionWorkflow on the real local stack, through the CLI: three full backups of the small
// database, the oldest under legal hold, a policy keeping 1 daily and no minimum age. The dry run
// names exactly the middle one and deletes nothing; the real run deletes exactly it (manifest and
// objects) and the archived WAL before the held backup's start; releasing the hold lets it go.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { createObjectStore, type ObjectStore } from '../../src/activities/ports/object-store.ts';
import { repository } from '../../src/domain/repository.ts';
import type { RetentionResult } from '../../src/domain/retention.ts';
import { loadPlan } from '../../src/workers/plan-file.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';
import { tempDir } from '../support/temp-dir.ts';

const DB = 'orders';

describe('retention on the local stack', () => {
  let stack: TestStack;
  let worker: WorkerProcess;
  let store: ObjectStore;
  let planFile: string;
  const backups: string[] = [];
  const cli = (args: string[]) =>
    runCli([...args, '-f', planFile], { ...stack.env, LIFEBOAT_USER: 'retention-tester' });
  const retention = async (...extra: string[]) => {
    const run = await cli(['retention', '--database', DB, '--json', ...extra]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    return JSON.parse(run.stdout) as RetentionResult;
  };
  const ids = (list: { id: string }[]) => list.map((x) => x.id).sort();
  // Archived WAL stand-ins: one long before any backup, one far after (never expired).
  const oldWal = repository.walSegment('', DB, '000000010000000000000000');
  const futureWal = repository.walSegment('', DB, '000000010000FFFF000000FF');

  before(async () => {
    stack = await ensureStack();
    const tmp = tempDir('lifeboat-retention-');
    const raw = parse(fs.readFileSync(stack.planFile, 'utf8')) as {
      storage: { primary: { url: string } };
      backup: { policies: { database: string; retention?: unknown }[] };
    };
    raw.storage.primary.url = `s3://${stack.layout.s3.bucket}/test-retention-${Date.now()}`;
    for (const p of raw.backup.policies)
      if (p.database === DB) p.retention = { daily: 1, weekly: 0, monthly: 0, yearly: 0, minAge: '0s' };
    planFile = path.join(tmp, 'lifeboat.yaml');
    fs.writeFileSync(planFile, stringify(raw));
    store = createObjectStore(loadPlan(planFile).storage.primary, stack.env);
    worker = await startWorker('us-east-1', stack.layout.secretsFile, planFile, stack.env);
    for (let i = 0; i < 3; i++) {
      const run = await cli(['backup', 'full', '--database', DB, '--json']);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      backups.push((JSON.parse(run.stdout) as { backupId: string }).backupId);
    }
    await store.put(oldWal, 'stand-in');
    await store.put(futureWal, 'stand-in');
  });

  after(async () => {
    await worker?.stop('SIGTERM');
  });

  it('refuses bad input with exit 2, every problem listed', async () => {
    const run = await cli(['retention', '--database', 'nope', '--pitr-window', 'soon']);
    assert.equal(run.code, 2, run.stdout + run.stderr);
    assert.match(run.stderr, /--database: no backup policy in the plan names "nope"/);
    assert.match(run.stderr, /--pitr-window: expected a duration such as 7d/);
  });

  it('holds a backup with a write-once marker; an unknown backup is refused', async () => {
    const hold = await cli([
      'backups',
      'hold',
      '--database',
      DB,
      '--backup',
      backups[0]!,
      '--reason',
      'LEGAL-7',
    ]);
    assert.equal(hold.code, 0, hold.stdout + hold.stderr);
    assert.match(hold.stdout, /is under legal hold: LEGAL-7/);
    const unknown = await cli(['backups', 'hold', '--database', DB, '--backup', 'nope', '--reason', 'x']);
    assert.equal(unknown.code, 2, unknown.stderr);
    const noReason = await cli(['backups', 'hold', '--database', DB, '--backup', backups[0]!]);
    assert.equal(noReason.code, 2);
    assert.match(noReason.stderr, /--reason: required/);
  });

  it('dry run: lists exactly the middle backup, with why, and deletes nothing', async () => {
    const [held, middle, newest] = backups as [string, string, string];
    const table = await cli(['retention', '--database', DB, '--dry-run']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`${middle} +full +\\S+ +would delete +not the newest backup`));
    assert.match(table.stdout, new RegExp(`${held} .* keep +legal hold by .*: LEGAL-7`));
    assert.match(table.stdout, new RegExp(`${newest} .* keep +daily .*; newest verified full backup`));

    const r = await retention('--dry-run');
    assert.equal(r.dryRun, true);
    assert.deepEqual(ids(r.plan.deleted), [middle]);
    assert.deepEqual(ids(r.plan.kept), [held, newest].sort());
    assert.equal(r.wal.expired, 1);
    assert.deepEqual(r.deletedBackups, []);
    assert.ok(await store.head(repository.manifest('', DB, middle)), 'dry run deleted a manifest');
    assert.ok(await store.head(oldWal), 'dry run deleted WAL');
  });

  it('real run: deletes exactly the middle backup and the WAL before the held one', async () => {
    const [held, middle, newest] = backups as [string, string, string];
    const r = await retention();
    assert.deepEqual(r.deletedBackups, [middle]);
    // Deletions are evidence: the run's audit record names who asked.
    const audit = await cli(['audit', 'list', '--since', '1h', '--database', DB, '--json']);
    assert.equal(audit.code, 0, audit.stderr);
    const records = (
      JSON.parse(audit.stdout) as {
        records: { workflowId: string; runId: string; requestedBy?: string; outcome: string }[];
      }
    ).records.filter((x) => x.workflowId === 'retention-orders');
    assert.ok(
      records.some((x) => x.requestedBy === 'retention-tester' && x.outcome === 'completed'),
      JSON.stringify(records),
    );
    assert.deepEqual(r.skippedBackups, []);
    assert.equal(r.wal.deleted, 1);
    assert.equal(await store.head(repository.manifest('', DB, middle)), undefined);
    assert.deepEqual(await store.list(repository.backupFolder('', DB, middle) + '/'), []);
    for (const id of [held, newest]) {
      assert.ok(await store.head(repository.manifest('', DB, id)), `${id} manifest gone`);
      assert.notDeepEqual(
        await store.list(repository.backupFolder('', DB, id) + '/'),
        [],
        `${id} objects gone`,
      );
    }
    assert.equal(await store.head(oldWal), undefined);
    assert.ok(await store.head(futureWal));

    const list = await cli(['backups', 'list', '--database', DB, '--json']);
    const listed = (JSON.parse(list.stdout) as { backups: { id: string }[] }).backups;
    assert.deepEqual(ids(listed), [held, newest].sort());

    // Idempotent: a second run finds nothing more to delete.
    const again = await retention();
    assert.deepEqual(again.plan.deleted, []);
  });

  it('released: the formerly held backup would go', async () => {
    const [held] = backups as [string];
    const release = await cli([
      'backups',
      'release',
      '--database',
      DB,
      '--backup',
      held,
      '--reason',
      'case closed',
    ]);
    assert.equal(release.code, 0, release.stdout + release.stderr);
    const r = await retention('--dry-run');
    assert.deepEqual(ids(r.plan.deleted), [held]);
  });
});
