// `lifeboat monitor start|stop|pause|resume|status --database <db>`: the region health monitor of a
// database (workflow id monitor-<db>). `start` is idempotent: one already running is kept.
// `pause`/`resume` signal it (a maintenance window); `stop` cancels it — a failover it started
// runs on, since the monitor abandons its child rather than cancel it.
import os from 'node:os';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { monitorSummary, type MonitorStatus } from '../domain/monitor.ts';
import { workflowIds } from '../domain/naming.ts';
import { SHARED_TASK_QUEUE } from '../domain/plan.ts';
import { webUiLink } from '../workers/temporal-connection.ts';
import type { regionHealthMonitorWorkflow } from '../workflows/region-health-monitor.ts';
import { parseCommandArgs } from './args.ts';
import { loadPlanInto } from './plan-args.ts';
import { EXIT, printError, printJson } from './output.ts';
import { connectClient } from './temporal-client.ts';

const ACTIONS = ['start', 'stop', 'pause', 'resume', 'status'] as const;
type Action = (typeof ACTIONS)[number];

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs(
    'monitor',
    argv,
    {
      file: { type: 'string', short: 'f' },
      json: { type: 'boolean' },
      database: { type: 'string' },
      reason: { type: 'string' },
    },
    true,
  );
  if (!args) return EXIT.badInput;
  const problems: string[] = [];
  const [action, ...extra] = args._;
  if (!ACTIONS.includes(action as Action))
    problems.push(`expected: lifeboat monitor ${ACTIONS.join('|')} --database <db>`);
  if (extra.length) problems.push(`unexpected arguments: ${extra.join(' ')}`);
  const plan = loadPlanInto(problems, args.file as string | undefined);
  const database = args.database as string | undefined;
  if (!database) problems.push('--database: required');
  else if (plan && !plan.databases[database])
    problems.push(
      `--database: "${database}" is not in the plan; declared: ${Object.keys(plan.databases).join(', ')}`,
    );
  else if (plan && !plan.failover.policies.some((p) => p.database === database))
    problems.push(`--database: the plan has no failover policy for ${database}`);
  if (problems.length || !database) {
    for (const p of problems) printError(p);
    return EXIT.badInput;
  }

  const { client, target, close } = await connectClient();
  try {
    const workflowId = workflowIds.monitor(database);
    const link = webUiLink(target, workflowId);
    const json = Boolean(args.json);
    const by = process.env.LIFEBOAT_USER ?? os.userInfo().username;
    if (action === 'start') return await startMonitor(client, database, by, json);
    const handle = client.workflow.getHandle<typeof regionHealthMonitorWorkflow>(workflowId);
    let running;
    try {
      running = (await handle.describe()).status.name === 'RUNNING';
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      running = false;
    }
    if (!running) {
      if (action === 'stop') {
        if (json) printJson({ workflowId, stopped: false, running: false });
        else process.stdout.write(`no monitor of ${database} runs (${workflowId})\n`);
        return EXIT.ok;
      }
      printError(
        `no monitor of ${database} runs (${workflowId}); lifeboat monitor start --database ${database}`,
      );
      return EXIT.failed;
    }
    if (action === 'pause' || action === 'resume') {
      const reason = args.reason as string | undefined;
      await handle.signal(action, { by, ...(reason ? { reason } : {}) });
    } else if (action === 'stop') {
      await handle.cancel();
      const final = await handle.result();
      if (json) printJson({ workflowId, stopped: true, status: final, webUi: link });
      else process.stdout.write(`stopped. ${monitorSummary(final)}\n`);
      return EXIT.ok;
    }
    const state = await handle.query<MonitorStatus>('monitorStatus');
    if (json) printJson({ workflowId, status: state, webUi: link });
    else {
      process.stdout.write(`${workflowId}: ${monitorSummary(state)}\n  ${link}\n`);
      if (action === 'status')
        for (const e of state.events.slice(-5)) process.stdout.write(`  ${e.at} ${e.text}\n`);
    }
    return EXIT.ok;
  } finally {
    await close();
  }
}

/** Starts the monitor of a database unless one runs; used by `monitor start` and `apply`. */
export async function startMonitor(
  client: Client,
  database: string,
  requestedBy: string,
  json: boolean,
): Promise<number> {
  const { workflowId, started } = await ensureMonitor(client, database, requestedBy);
  if (json) printJson({ workflowId, started, alreadyRunning: !started });
  else
    process.stdout.write(
      started
        ? `monitor of ${database} started: ${workflowId}\n`
        : `monitor of ${database} already runs: ${workflowId}\n`,
    );
  return EXIT.ok;
}

/** Starts the monitor unless one runs, printing nothing: `apply` reports it with the rest. */
export async function ensureMonitor(
  client: Client,
  database: string,
  requestedBy: string,
): Promise<{ workflowId: string; started: boolean }> {
  const workflowId = workflowIds.monitor(database);
  try {
    await client.workflow.start<typeof regionHealthMonitorWorkflow>('regionHealthMonitorWorkflow', {
      taskQueue: SHARED_TASK_QUEUE,
      workflowId,
      args: [{ database, requestedBy }],
      staticSummary: `region health monitor: ${database}`,
    });
    return { workflowId, started: true };
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    return { workflowId, started: false };
  }
}
