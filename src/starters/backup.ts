// `lifeboat backup full --database <db>`: starts fullBackupWorkflow and follows it with a progress
// bar unless --detach. The workflow id is the database's backup id (backup-<db>) with the conflict
// policy FAIL: a second backup of a database while one runs is refused, with what runs and since when.
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  WorkflowFailedError,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { FullBackupInput, FullBackupResult } from '../domain/backup.ts';
import { workflowIds } from '../domain/naming.ts';
import { SHARED_TASK_QUEUE } from '../domain/plan.ts';
import { webUiLink } from '../workers/temporal-connection.ts';
import type { fullBackupWorkflow } from '../workflows/full-backup.ts';
import { parseCommandArgs } from './args.ts';
import { loadPlanInto, databaseInto } from './plan-args.ts';
import { readBackupStatus, renderBackupResult, renderBackupStatus } from './backup-view.ts';
import { EXIT, printError, printJson } from './output.ts';
import { connectClient } from './temporal-client.ts';

export async function run(argv: string[]): Promise<number> {
  // `backup incremental` has options of its own (--archive-timeout).
  if (argv.includes('incremental')) return (await import('./backup-incremental.ts')).run(argv);
  const args = parseCommandArgs(
    'backup',
    argv,
    {
      file: { type: 'string', short: 'f' },
      json: { type: 'boolean' },
      detach: { type: 'boolean' },
      database: { type: 'string' },
      'max-rate': { type: 'string' },
      checkpoint: { type: 'string' },
      'part-size-mib': { type: 'string' },
    },
    true,
  );
  if (!args) return EXIT.badInput;
  const problems: string[] = [];
  const [kind, ...extra] = args._;
  if (kind !== 'full') problems.push('expected: lifeboat backup full|incremental --database <db>');
  if (extra.length) problems.push(`unexpected arguments: ${extra.join(' ')}`);
  const plan = loadPlanInto(problems, args.file as string | undefined);
  const database = databaseInto(problems, plan, args.database as string | undefined);
  const maxRate = args['max-rate'] as string | undefined;
  if (maxRate !== undefined && !/^[1-9]\d*[kM]?$/.test(maxRate))
    problems.push('--max-rate: expected a rate such as 50M or 800k');
  const checkpoint = args.checkpoint as string | undefined;
  if (checkpoint !== undefined && checkpoint !== 'fast' && checkpoint !== 'spread')
    problems.push('--checkpoint: expected fast or spread');
  const partSize = args['part-size-mib'] === undefined ? undefined : Number(args['part-size-mib']);
  if (partSize !== undefined && !(Number.isInteger(partSize) && partSize >= 5 && partSize <= 512))
    problems.push('--part-size-mib: expected a whole number from 5 to 512');
  if (problems.length || !plan || !database) {
    for (const p of problems) printError(p);
    return EXIT.badInput;
  }

  const input: FullBackupInput = {
    database,
    requestedBy: process.env.LIFEBOAT_USER ?? os.userInfo().username,
    ...(maxRate ? { maxRate } : {}),
    ...(checkpoint ? { checkpoint: checkpoint as 'fast' | 'spread' } : {}),
    ...(partSize ? { partSizeMiB: partSize } : {}),
  };
  const { client, target, close } = await connectClient();
  try {
    const workflowId = workflowIds.backup(database);
    let handle: WorkflowHandleWithFirstExecutionRunId<typeof fullBackupWorkflow>;
    try {
      handle = await client.workflow.start<typeof fullBackupWorkflow>('fullBackupWorkflow', {
        taskQueue: SHARED_TASK_QUEUE,
        workflowId,
        args: [input],
        // One backup of a database at a time; a new one once the previous has closed.
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        staticSummary: `full backup of ${database}`,
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      const running = await client.workflow
        .getHandle(workflowId)
        .describe()
        .catch(() => undefined);
      printError(
        `a backup of ${database} is already running: ${workflowId}` +
          (running
            ? ` (${running.type}, run ${running.runId}), started ${running.startTime.toISOString()}`
            : '') +
          `; follow it with lifeboat status ${workflowId} --watch`,
      );
      return EXIT.failed;
    }
    const link = webUiLink(target, workflowId);
    if (!args.json) process.stderr.write(`full backup of ${database} started: ${workflowId}\n  ${link}\n`);
    if (args.detach) {
      if (args.json) printJson({ workflowId, runId: handle.firstExecutionRunId, webUi: link });
      return EXIT.ok;
    }
    const follow = args.json ? undefined : followProgress(client, handle);
    let result: FullBackupResult;
    try {
      result = await handle.result();
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        await follow?.stop();
        printError(err.cause?.message ?? err.message);
        return EXIT.failed;
      }
      throw err;
    } finally {
      await follow?.stop();
    }
    if (args.json) printJson({ workflowId, webUi: link, ...result });
    else process.stdout.write(renderBackupResult(result));
    return EXIT.ok;
  } finally {
    await close();
  }
}

/** Redraws the progress on stderr while the backup runs (in place on a terminal). */
function followProgress(
  client: Parameters<typeof readBackupStatus>[0],
  handle: WorkflowHandle,
): { stop(): Promise<void> } {
  const tty = process.stderr.isTTY;
  // Aborts the wait between redraws: the command returns as soon as the backup is done.
  const stopping = new AbortController();
  let stopped = false;
  let shown = '';
  let lines = 0;
  const loop = (async () => {
    while (!stopped) {
      const text = await readBackupStatus(client, handle)
        .then((s) => renderBackupStatus(s))
        .catch(() => '');
      const key = tty ? text : text.replace(/\d+(\.\d+)?(ms|s|m)\b|\[[#·]+\].*$/gm, '');
      if (text && key !== shown && !stopped) {
        if (tty && lines) process.stderr.write(`\x1b[${lines}A\x1b[0J`);
        process.stderr.write(text);
        lines = text.split('\n').length - 1;
        shown = key;
      }
      await sleep(1000, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
  })();
  return {
    async stop() {
      stopped = true;
      stopping.abort();
      await loop;
    },
  };
}
