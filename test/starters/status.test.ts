// `lifeboat status` when no worker answers: a restore started on a task queue nobody polls never
// runs, and its progress is a query that only a worker answers. The server would hold that query
// about a minute; status must say in seconds that no worker answered, and still show the status.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli } from '../support/workers.ts';

describe('lifeboat status with no worker running', () => {
  let stack: TestStack;
  let connection: Connection;
  let client: Client;

  before(async () => {
    stack = await ensureStack();
    connection = await Connection.connect({ address: stack.layout.temporal.address });
    client = new Client({ connection });
  });
  after(async () => {
    await connection?.close();
  });

  it(
    'says that no worker answered the progress query, and shows the status',
    { timeout: 30_000 },
    async () => {
      const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
      const handle = await client.workflow.start('pointInTimeRestoreWorkflow', {
        taskQueue: `nobody-polls-${run}`,
        workflowId: `status-no-worker-${run}`,
        args: [{ database: 'orders', target: 'latest', region: 'us-west-2' }],
      });
      try {
        for (const args of [[handle.workflowId], [handle.workflowId, '--json']]) {
          const status = await runCli(['status', ...args], stack.env);
          assert.equal(status.code, 0, status.stderr);
          assert.match(
            status.stderr,
            /no worker answered the progress query within 5 s \(is `lifeboat worker` running\?\): progress not shown/,
          );
          if (args.includes('--json'))
            assert.deepEqual(JSON.parse(status.stdout), {
              workflowId: handle.workflowId,
              type: 'pointInTimeRestoreWorkflow',
              status: 'RUNNING',
            });
          else
            assert.match(
              status.stdout,
              new RegExp(`^pointInTimeRestoreWorkflow ${handle.workflowId}: RUNNING \\(started \\d{4}-`),
            );
        }
      } finally {
        await handle.terminate('test over');
      }
    },
  );
});
