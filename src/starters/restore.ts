// `lifeboat restore --database <db> --to <target> --region <r> [--port N] [--pause] [--data-dir D]
// [--cutover [--approval-timeout D]] [--detach]`: starts pointInTimeRestoreWorkflow and waits for its result unless --detach.
// A target outside the recoverable window fails at once, saying what the window is.
import os from 'node:os';
import { describeApprovals } from '../domain/approval.ts';
import { parseDuration } from '../domain/duration.ts';
import { workflowIds } from '../domain/naming.ts';
import {
  cutoverProblems,
  parseRestoreTarget,
  summarizeRestore,
  type RestoreInput,
  type RestoreProgress,
  type RestoreResult,
} from '../domain/restore.ts';
import type { pointInTimeRestoreWorkflow } from '../workflows/point-in-time-restore.ts';
import { parseCommandArgs } from './args.ts';
import { startAndFollow } from './follow-workflow.ts';
import { loadPlanInto } from './plan-args.ts';
import { EXIT, printError, printJson } from './output.ts';
import { connectClient } from './temporal-client.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('restore', argv, {
    file: { type: 'string', short: 'f' },
    json: { type: 'boolean' },
    detach: { type: 'boolean' },
    database: { type: 'string' },
    to: { type: 'string' },
    region: { type: 'string' },
    port: { type: 'string' },
    'data-dir': { type: 'string' },
    pause: { type: 'boolean' },
    exclusive: { type: 'boolean' },
    cutover: { type: 'boolean' },
    'approval-timeout': { type: 'string' },
  });
  if (!args) return EXIT.badInput;
  const problems: string[] = [];
  const plan = loadPlanInto(problems, args.file as string | undefined);
  const database = args.database as string | undefined;
  const region = args.region as string | undefined;
  const to = args.to as string | undefined;
  if (!database) problems.push('--database: required');
  else if (plan && !plan.databases[database])
    problems.push(
      `--database: "${database}" is not in the plan; declared: ${Object.keys(plan.databases).join(', ')}`,
    );
  if (!region) problems.push('--region: required');
  else if (plan && !plan.regions[region])
    problems.push(
      `--region: "${region}" is not in the plan; declared: ${Object.keys(plan.regions).join(', ')}`,
    );
  if (!to)
    problems.push('--to: required (ISO-8601 time with offset, lsn:<LSN>, name:<restore point> or latest)');
  else {
    const t = parseRestoreTarget(to);
    if (!t.ok) problems.push(`--to: ${t.problem}`);
  }
  const port = args.port === undefined ? undefined : Number(args.port);
  if (port !== undefined && !(Number.isInteger(port) && port >= 1024 && port <= 65535))
    problems.push('--port: expected a port from 1024 to 65535');
  const approvalTimeout = args['approval-timeout'] as string | undefined;
  if (approvalTimeout !== undefined && !args.cutover)
    problems.push('--approval-timeout: only with --cutover');
  else if (approvalTimeout !== undefined && parseDuration(approvalTimeout) === undefined)
    problems.push('--approval-timeout: expected a duration such as 30s, 15m or 1h');
  if (args.cutover && plan && database && region && plan.databases[database] && plan.regions[region])
    for (const p of cutoverProblems(plan, database, region)) problems.push(`--cutover: ${p}`);
  if (problems.length || !plan || !database || !region || !to) {
    for (const p of problems) printError(p);
    return EXIT.badInput;
  }
  const input: RestoreInput = {
    database,
    target: to,
    region,
    ...(port ? { port } : {}),
    ...(args['data-dir'] ? { dataDir: args['data-dir'] as string } : {}),
    action: args.pause ? 'pause' : 'promote',
    inclusive: !args.exclusive,
    requestedBy: process.env.LIFEBOAT_USER ?? os.userInfo().username,
    ...(args.cutover ? { cutover: true } : {}),
    ...(approvalTimeout ? { approvalTimeout } : {}),
  };
  const { client, target, close } = await connectClient();
  try {
    const workflowId = workflowIds.restore(database, new Date());
    const run = await startAndFollow<typeof pointInTimeRestoreWorkflow, RestoreProgress>(client, target, {
      workflowType: 'pointInTimeRestoreWorkflow',
      workflowId,
      args: [input],
      staticSummary: `restore ${database} to ${to} in ${region}`,
      startedLine: `restore of ${database} to ${to} started`,
      json: Boolean(args.json),
      detach: Boolean(args.detach),
      render: renderRestoreProgress,
    });
    if (run.outcome === 'detached') return EXIT.ok;
    if (run.outcome === 'failed') {
      printError(run.error.cause?.message ?? run.error.message);
      return EXIT.failed;
    }
    const result: RestoreResult = run.result;
    if (args.json) printJson({ workflowId, webUi: run.link, ...result });
    else process.stdout.write(`${summarizeRestore(result)}\n`);
    // A cutover that was asked for and did not happen is a failed operation (the restore stands).
    return result.cutover && result.cutover.outcome !== 'approved' ? EXIT.failed : EXIT.ok;
  } finally {
    await close();
  }
}

/** One line of a restore's progress, for `lifeboat restore` and `lifeboat status`. */
export function renderRestoreProgress(p: RestoreProgress): string {
  const parts = [`${p.restoreId}: ${p.phase} since ${p.phaseSince}`];
  if (p.chain) parts.push(`backup ${p.chain.backupId}, WAL ${p.chain.firstSegment}…${p.chain.lastSegment}`);
  if (p.port) parts.push(`port ${p.port}`);
  if (p.phase === 'awaiting-approval' && p.approval)
    parts.push(
      `${describeApprovals(p.approval)} of ${p.approval.policy.approvers.join(', ')} until ${p.approval.deadline}: lifeboat approve ${p.restoreId} --as <name>`,
    );
  if (p.error) parts.push(`error: ${p.error}`);
  return parts.join('; ');
}
