// `lifeboat failover --database <db> --to <region> --reason <text> [--planned] [--detach]`:
// starts regionalFailoverWorkflow under the id `failover-<db>` (so never two at once) and follows
// its progress until it ends; an approval it waits for is shown with the command that gives it.
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { FailoverProgress, FailoverResult } from '../domain/failover.ts';
import { workflowIds } from '../domain/naming.ts';
import { loadPlan, planFilePath, PlanError } from '../workers/plan-file.ts';
import { SHARED_TASK_QUEUE } from '../domain/plan.ts';
import { webUiLink } from '../workers/temporal-connection.ts';
import type { regionalFailoverWorkflow } from '../workflows/regional-failover.ts';
import { parseCommandArgs } from './args.ts';
import { renderFailoverProgress } from './failover-view.ts';
import { EXIT, printError, printJson } from './output.ts';
import { answered, connectClient, queryWithin } from './temporal-client.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('failover', argv, {
    file: { type: 'string', short: 'f' },
    json: { type: 'boolean' },
    detach: { type: 'boolean' },
    database: { type: 'string' },
    to: { type: 'string' },
    reason: { type: 'string' },
    planned: { type: 'boolean' },
    force: { type: 'boolean' },
    'approval-timeout': { type: 'string' },
  });
  if (!args) return EXIT.badInput;
  let plan;
  try {
    plan = loadPlan(planFilePath(args.file as string | undefined));
  } catch (err) {
    if (!(err instanceof PlanError)) throw err;
    for (const p of err.problems) printError(`${p.path}: ${p.message}`);
    return EXIT.badInput;
  }
  const database = args.database as string | undefined;
  const to = args.to as string | undefined;
  const reason = args.reason as string | undefined;
  const problems: string[] = [];
  if (!database) problems.push('--database: which database to fail over');
  else if (!plan.databases[database])
    problems.push(
      `--database: "${database}" is not in the plan; declared: ${Object.keys(plan.databases).join(', ')}`,
    );
  if (!to) problems.push('--to: the region to fail over to');
  else if (!plan.regions[to])
    problems.push(
      `--to: region "${to}" is not in the plan; declared: ${Object.keys(plan.regions).join(', ')}`,
    );
  else if (database && plan.databases[database]) {
    const db = plan.databases[database];
    const regions = [db.primaryRegion, ...db.replicas.map((r) => r.region)];
    if (!regions.includes(to))
      problems.push(`--to: ${database} has no server in ${to}; its regions: ${regions.join(', ')}`);
  }
  if (!reason?.trim()) problems.push('--reason: why (recorded in history and shown to approvers)');
  if (database && !plan.failover.policies.some((p) => p.database === database))
    problems.push(`--database: the plan has no failover policy for ${database}`);
  if (problems.length) {
    problems.forEach(printError);
    return EXIT.badInput;
  }

  const { client, target, close } = await connectClient();
  try {
    const workflowId = workflowIds.failover(database!);
    const link = webUiLink(target, workflowId);
    let handle;
    try {
      handle = await client.workflow.start<typeof regionalFailoverWorkflow>('regionalFailoverWorkflow', {
        taskQueue: SHARED_TASK_QUEUE,
        workflowId,
        args: [
          {
            database: database!,
            targetRegion: to!,
            reason: reason!,
            requestedBy: process.env.LIFEBOAT_USER ?? os.userInfo().username,
            planned: Boolean(args.planned),
            force: Boolean(args.force),
            ...(args['approval-timeout'] ? { approvalTimeout: args['approval-timeout'] as string } : {}),
          },
        ],
        staticSummary: `${args.planned ? 'switchover' : 'failover'} of ${database} to ${to}: ${reason}`,
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        printError(
          `a failover of ${database} is already running (${workflowId}); only one at a time. Follow it: lifeboat status ${workflowId} --watch; approve it: lifeboat approve ${workflowId} --as <name>`,
        );
        return EXIT.badInput;
      }
      throw err;
    }
    if (!args.json) process.stderr.write(`failover started: ${workflowId}\n  ${link}\n`);
    if (args.detach) {
      if (args.json) printJson({ workflowId, runId: handle.firstExecutionRunId, webUi: link });
      return EXIT.ok;
    }
    const resultPromise = handle.result();
    let settled = false;
    resultPromise.then(
      () => (settled = true),
      () => (settled = true),
    );
    let lastPhase = '';
    while (!settled && !args.json) {
      // Bounded: a worker lost mid-failover must not stop the phase lines for a minute.
      const p = answered(await queryWithin<FailoverProgress>(client, handle, 'progress'));
      if (p && p.phase !== lastPhase) {
        lastPhase = p.phase;
        process.stderr.write(`[${new Date().toISOString()}] ${p.phase}\n`);
        if (p.phase === 'awaiting-approval')
          process.stderr.write(
            `  ${p.approval?.request ?? ''}\n  approve: lifeboat approve ${workflowId} --as <name>   (or temporal workflow update execute --name approve --workflow-id ${workflowId} --input '{"approver":"<name>"}')\n`,
          );
      }
      await Promise.race([resultPromise.catch(() => undefined), sleep(1000)]);
    }
    let result: FailoverResult;
    try {
      result = await resultPromise;
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        const cause = err.cause instanceof ApplicationFailure ? err.cause : undefined;
        const detail = cause?.details?.[0] as Partial<FailoverResult> | undefined;
        if (args.json)
          printJson({
            workflowId,
            failed: true,
            type: cause?.type,
            message: cause?.message,
            progress: detail,
          });
        else {
          printError(`failover ${workflowId} failed: ${cause?.message ?? err.cause?.message ?? err.message}`);
          if (detail?.steps) process.stdout.write(renderFailoverProgress(detail as FailoverProgress));
        }
        return cause?.type === 'InvalidInput' ? EXIT.badInput : EXIT.failed;
      }
      throw err;
    }
    if (args.json) printJson({ webUi: link, ...result });
    else process.stdout.write(renderFailoverProgress(result));
    return result.outcome === 'failed-over' || result.outcome === 'switched-over' ? EXIT.ok : EXIT.failed;
  } finally {
    await close();
  }
}
