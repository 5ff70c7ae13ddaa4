// retentionWorkflow's decisions when storage reports S3 Object Lock, on the time-skipping test
// server with scripted activities (the workflow logic only: what is skipped and what is kept
// because of it). The activities themselves are tested against a real Object Lock bucket on
// the stack's S3 server in test/activities/retention.test.ts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createRequire } from 'node:module';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { formatLsn } from '../../src/domain/lsn.ts';
import type { RetentionInventory, RetentionResult } from '../../src/domain/retention.ts';
import { layoutFromEnv } from '../../src/stack/layout.ts';
import { repoRoot } from '../support/plans.ts';

const require = createRequire(import.meta.url);
const MiB16 = 16 * 1024 * 1024;
const seg = (n: number) => `0000000100000000${n.toString(16).toUpperCase().padStart(8, '0')}`;
const at = (n: number) => formatLsn(BigInt(n * MiB16 + 40));

describe('retention under S3 Object Lock (time-skipping)', () => {
  let env: TestWorkflowEnvironment;
  let worker: Worker;
  let running: Promise<void>;
  const deleteCalls: string[] = [];
  const walDeleted: string[] = [];
  // GIVEN an old full (segment 2) and its incremental (segment 3), whose object is locked, and a
  // newest full (segment 4); WAL segments 0–5 archived; a policy keeping 1 daily, no minAge.
  const inventory: RetentionInventory = {
    database: 'orders',
    policy: { daily: 1, weekly: 0, monthly: 0, yearly: 0, minAgeMs: 0 },
    backups: [
      {
        id: 'f-old',
        kind: 'full',
        parent: null,
        time: '2020-01-01T00:00:00.000Z',
        startLsn: at(2),
        stopLsn: at(3),
      },
      {
        id: 'i-old',
        kind: 'incremental',
        parent: 'f-old',
        time: '2020-01-02T00:00:00.000Z',
        startLsn: at(3),
        stopLsn: at(4),
      },
      {
        id: 'f-new',
        kind: 'full',
        parent: null,
        time: '2024-01-01T00:00:00.000Z',
        startLsn: at(4),
        stopLsn: at(5),
      },
    ].map((b) => ({
      ...b,
      kind: b.kind as 'full' | 'incremental',
      verified: true,
      objectKeys: [`backups/${b.id}/base`],
    })),
    holdEvents: [],
    wal: [0, 1, 2, 3, 4, 5].map((n) => ({ segment: seg(n), keys: [`wal/${seg(n)}`] })),
    walSegmentSize: MiB16,
    problems: [],
  };

  before(async () => {
    const toolsBin = layoutFromEnv(process.env, path.join(repoRoot, '.lifeboat')).toolsBin;
    const executable = path.join(toolsBin, 'temporal-test-server');
    assert.ok(fs.existsSync(executable), `${executable} is missing: run scripts/bootstrap.sh`);
    env = await TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: { type: 'existing-path', path: executable } },
    });
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: 'lifeboat',
      workflowsPath: require.resolve('../../src/workflows/retention.ts'),
      activities: {
        readRetentionInventory: () => Promise.resolve(inventory),
        deleteBackup: (input: { id: string }) => {
          deleteCalls.push(input.id);
          return Promise.resolve(
            input.id === 'i-old'
              ? { deleted: false, locked: [{ key: 'backups/i-old/base', why: 'S3 Object Lock COMPLIANCE' }] }
              : { deleted: true, locked: [] },
          );
        },
        deleteWalObjects: (input: { keys: string[] }) => {
          walDeleted.push(...input.keys);
          return Promise.resolve({ deleted: input.keys.length, locked: [] });
        },
      },
    });
    running = worker.run();
  });

  after(async () => {
    worker?.shutdown();
    await running;
    await env?.teardown();
  });

  it('leaves a locked backup, the chain it stands on, and their WAL; reports them', async () => {
    const r: RetentionResult = await env.client.workflow.execute('retentionWorkflow', {
      taskQueue: 'lifeboat',
      workflowId: 'retention-orders',
      args: [{ database: 'orders' }],
    });
    // THEN the plan expires both old backups, the locked incremental is skipped, and its full is
    // never even tried: deleting it would leave the catalog listing a broken chain.
    assert.deepEqual(
      r.plan.deleted.map((d) => d.id),
      ['f-old', 'i-old'],
    );
    assert.deepEqual(deleteCalls, ['i-old']);
    assert.deepEqual(r.deletedBackups, []);
    assert.deepEqual(
      r.skippedBackups.map((s) => [s.id, s.locked[0]!.why]),
      [
        ['i-old', 'S3 Object Lock COMPLIANCE'],
        ['f-old', 'needed by i-old, left under Object Lock'],
      ],
    );
    // AND the WAL from the old full's start onwards stays: only segments 0 and 1 go.
    assert.equal(r.wal.keepFromLsn, at(2));
    assert.deepEqual(walDeleted, [`wal/${seg(0)}`, `wal/${seg(1)}`]);
  });
});
