// `lifeboat status <workflow-id> [--watch]`: the progress of any Lifeboat workflow. Workflows that
// answer the `progress` query (the failover) show their steps; others show status and details.
import { WorkflowNotFoundError } from '@temporalio/common';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FailoverProgress } from '../domain/failover.ts';
import { parseCommandArgs } from './args.ts';
import { renderFailoverProgress } from './failover-view.ts';
import type { RestoreProgress } from '../domain/restore.ts';
import { renderRestoreProgress } from './restore.ts';
import type { DrillProgress } from '../domain/drill.ts';
import { renderDrillProgress } from './drill.ts';
import { readBackupStatus, renderBackupStatus } from './backup-view.ts';
import { EXIT, printError, printJson } from './output.ts';
import { answered, connectClient, QUERY_WAIT_MS, queryWithin } from './temporal-client.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs(
    'status',
    argv,
    { watch: { type: 'boolean' }, json: { type: 'boolean' }, interval: { type: 'string' } },
    true,
  );
  if (!args) return EXIT.badInput;
  const workflowId = args._[0];
  if (!workflowId || args._.length > 1) {
    printError('expected one workflow id: lifeboat status <workflow-id> [--watch]');
    return EXIT.badInput;
  }
  const intervalMs = Number(args.interval ?? '1') * 1000;
  const { client, close } = await connectClient();
  try {
    const handle = client.workflow.getHandle(workflowId);
    let last = '';
    let warned = false;
    for (;;) {
      const d = await handle.describe();
      const backup = d.type === 'fullBackupWorkflow' ? await readBackupStatus(client, handle, d) : undefined;
      // Progress is a query, which only a running worker answers.
      const answer = backup ? undefined : await queryWithin<unknown>(client, handle, 'progress');
      const noWorker = backup ? backup.noWorker : answer?.ok === false && answer.noWorker;
      const value = answer && answered(answer);
      const restore =
        d.type === 'pointInTimeRestoreWorkflow' ? (value as RestoreProgress | undefined) : undefined;
      const drill = d.type === 'drDrillWorkflow' ? (value as DrillProgress | undefined) : undefined;
      const progress = backup || restore || drill ? undefined : (value as FailoverProgress | undefined);
      const view = args.json
        ? JSON.stringify({
            workflowId,
            type: d.type,
            status: d.status.name,
            progress: backup ?? restore ?? drill ?? progress,
          })
        : drill
          ? `${d.type} ${workflowId}: ${d.status.name}\n${renderDrillProgress(drill)}\n`
          : restore
            ? `${d.type} ${workflowId}: ${d.status.name}\n${renderRestoreProgress(restore)}\n`
            : backup
              ? `${d.type} ${workflowId}: ${d.status.name}\n${renderBackupStatus(backup)}`
              : progress
                ? `${d.type} ${workflowId}: ${d.status.name}\n${renderFailoverProgress(progress)}`
                : `${d.type} ${workflowId}: ${d.status.name} (started ${d.startTime.toISOString()})\n`;
      // Said on stderr, so that --json stays one document.
      if (noWorker && !warned) {
        printError(
          `no worker answered the progress query within ${QUERY_WAIT_MS / 1000} s (is \`lifeboat worker\` running?): progress not shown`,
        );
        warned = true;
      }
      if (view !== last) {
        if (args.json) printJson(JSON.parse(view));
        else process.stdout.write(view);
        last = view;
      }
      if (!args.watch || d.status.name !== 'RUNNING')
        return d.status.name === 'RUNNING' || d.status.name === 'COMPLETED' ? EXIT.ok : EXIT.failed;
      await sleep(intervalMs);
    }
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      printError(`${workflowId}: no such workflow`);
      return EXIT.badInput;
    }
    throw err;
  } finally {
    await close();
  }
}
