// Backup runs that end failed are counted once per run on the worker's Prometheus endpoint, by
// database, kind and error type — also when no activity failed (an incremental with no backup to
// build on), which the per-attempt activity counter cannot see. Real stack: Temporal, S3, worker.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import { freePort } from '../support/backups.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';

describe('failed backup runs in the metrics', () => {
  let stack: TestStack;
  let connection: Connection;
  let client: Client;
  let tmp: string;
  let planFile: string;
  let worker: WorkerProcess;
  let metricsUrl: string;

  before(async () => {
    stack = await ensureStack();
    connection = await Connection.connect({ address: stack.layout.temporal.address });
    client = new Client({ connection });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-run-failures-'));
    // An empty repository (a prefix of its own): an incremental has nothing to build on.
    const plan = parse(fs.readFileSync(stack.planFile, 'utf8'));
    plan.storage.primary.url = `${plan.storage.primary.url}/run-failures-${Date.now().toString(36)}`;
    delete plan.storage.secondary;
    planFile = path.join(tmp, 'lifeboat.yaml');
    fs.writeFileSync(planFile, stringify(plan));
    const address = `127.0.0.1:${await freePort()}`;
    metricsUrl = `http://${address}/metrics`;
    worker = await startWorker('us-east-1', stack.layout.secretsFile, planFile, stack.env, [
      '--metrics-address',
      address,
    ]);
  });

  after(async () => {
    await worker?.stop('SIGTERM');
    await connection?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('an incremental with no parent and a full backup of an unknown database each count one failed run, by type', async () => {
    const inc = await runCli(['backup', 'incremental', '--database', 'orders', '-f', planFile], stack.env);
    assert.equal(inc.code, 1, inc.stdout + inc.stderr);
    assert.match(inc.stdout + inc.stderr, /no backup of orders to build on/);
    await assert.rejects(
      client.workflow.execute('fullBackupWorkflow', {
        taskQueue: 'lifeboat',
        workflowId: `backup-full-nosuchdb-${Date.now()}`,
        args: [{ database: 'nosuchdb' }],
      }),
      (err: unknown) => err instanceof WorkflowFailedError,
    );
    const text = await (await fetch(metricsUrl)).text();
    const samples = text.split('\n').filter((l) => l.startsWith('lifeboat_backup_runs_failed'));
    const count = (labels: string[]) => {
      const hits = samples.filter((l) => labels.every((label) => l.includes(label)));
      assert.equal(hits.length, 1, `${labels.join(',')} in:\n${samples.join('\n')}`);
      return Number(hits[0]!.slice(hits[0]!.lastIndexOf(' ') + 1));
    };
    assert.equal(count(['database="orders"', 'kind="incremental"', 'type="NoParentBackup"']), 1);
    assert.equal(count(['database="nosuchdb"', 'kind="full"', 'type="UnknownReference"']), 1);
    assert.equal(samples.length, 2, samples.join('\n'));
  });
});
