// `lifeboat backup incremental --database <db>`: starts incrementalBackupWorkflow under the
// database's backup id (backup-<db>, conflict policy FAIL, shared with full backups) and waits for
// it unless --detach. Dispatched from `lifeboat backup`.
import os from 'node:os';
import { WorkflowFailedError } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { parseDuration, formatDuration } from '../domain/duration.ts';
import type { IncrementalBackupInput, IncrementalBackupResult } from '../domain/incremental.ts';
import { workflowIds } from '../domain/naming.ts';
import { SHARED_TASK_QUEUE } from '../domain/plan.ts';
import { webUiLink } from '../workers/temporal-connection.ts';
import type { incrementalBackupWorkflow } from '../workflows/incremental-backup.ts';
import { parseCommandArgs } from './args.ts';
import { loadPlanInto, databaseInto } from './plan-args.ts';
import { EXIT, printError, printJson } from './output.ts';
import { connectClient } from './temporal-client.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs(
    'backup incremental',
    argv,
    {
      file: { type: 'string', short: 'f' },
      json: { type: 'boolean' },
      detach: { type: 'boolean' },
      database: { type: 'string' },
      'archive-timeout': { type: 'string' },
    },
    true,
  );
  if (!args) return EXIT.badInput;
  const problems: string[] = [];
  const extra = args._.filter((a) => a !== 'incremental');
  if (extra.length) problems.push(`unexpected arguments: ${extra.join(' ')}`);
  const plan = loadPlanInto(problems, args.file as string | undefined);
  const database = databaseInto(problems, plan, args.database as string | undefined);
  const archiveTimeout = args['archive-timeout'] as string | undefined;
  if (archiveTimeout !== undefined && parseDuration(archiveTimeout) === undefined)
    problems.push('--archive-timeout: expected a duration such as 5m');
  if (problems.length || !database) {
    for (const p of problems) printError(p);
    return EXIT.badInput;
  }

  const input: IncrementalBackupInput = {
    database,
    requestedBy: process.env.LIFEBOAT_USER ?? os.userInfo().username,
    ...(archiveTimeout ? { archiveTimeout } : {}),
  };
  const { client, target, close } = await connectClient();
  try {
    const workflowId = workflowIds.backup(database);
    let handle;
    try {
      handle = await client.workflow.start<typeof incrementalBackupWorkflow>('incrementalBackupWorkflow', {
        taskQueue: SHARED_TASK_QUEUE,
        workflowId,
        args: [input],
        // One backup of a database at a time, full or incremental.
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        staticSummary: `incremental backup of ${database}`,
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
    if (!args.json)
      process.stderr.write(`incremental backup of ${database} started: ${workflowId}\n  ${link}\n`);
    if (args.detach) {
      if (args.json) printJson({ workflowId, runId: handle.firstExecutionRunId, webUi: link });
      return EXIT.ok;
    }
    let result: IncrementalBackupResult;
    try {
      result = await handle.result();
    } catch (err) {
      if (!(err instanceof WorkflowFailedError)) throw err;
      printError(err.cause?.message ?? err.message);
      return EXIT.failed;
    }
    if (args.json) printJson({ workflowId, webUi: link, ...result });
    else process.stdout.write(renderIncrementalResult(result));
    return EXIT.ok;
  } finally {
    await close();
  }
}

export function renderIncrementalResult(r: IncrementalBackupResult): string {
  if (r.outcome === 'unchanged')
    return `nothing written to ${r.database} since ${r.parent} (LSN ${r.startLsn}): no incremental needed\n`;
  const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return (
    [
      `backup ${r.backupId} of ${r.database} completed in ${formatDuration(r.durationMs)} (incremental since ${r.parent})`,
      `  LSN ${r.startLsn} – ${r.stopLsn} on timeline ${r.timeline}: ${r.segments} WAL segment(s) ${r.firstSegment} … ${r.lastSegment}`,
      `  ${mib(r.rawBytes)} of WAL, ${mib(r.storedBytes)} stored; archived ${formatDuration(r.archiveWaitMs)} after the switch`,
      `  manifest: ${r.manifestKey}`,
    ].join('\n') + '\n'
  );
}
