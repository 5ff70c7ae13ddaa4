// `lifeboat drill --database <db> --region <r> [--to <target>] [--policy <name>] [--detach]`:
// starts drDrillWorkflow (a restore into a scratch instance in the DR region, validated, compared
// with the source, torn down, reported) and waits for its report unless --detach. With
// `--failover`: a planned switchover of the live primary to <r> and back, each approved through
// `lifeboat approve failover-<db>`; refused against a production plan without
// `--i-understand-this-is-production`. Exit 0 when the drill passed, 1 when it failed or was
// cancelled, 2 on bad input.
import os from 'node:os';
import {
  failoverDrillProblems,
  summarizeDrill,
  type DrillInput,
  type DrillProgress,
} from '../domain/drill.ts';
import type { DrillReport } from '../domain/drill-report.ts';
import { workflowIds } from '../domain/naming.ts';
import { parseRestoreTarget } from '../domain/restore.ts';
import type { drDrillWorkflow } from '../workflows/dr-drill.ts';
import { parseCommandArgs } from './args.ts';
import { startAndFollow } from './follow-workflow.ts';
import { loadPlanInto } from './plan-args.ts';
import { EXIT, printError, printJson } from './output.ts';
import { connectClient } from './temporal-client.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('drill', argv, {
    file: { type: 'string', short: 'f' },
    json: { type: 'boolean' },
    detach: { type: 'boolean' },
    database: { type: 'string' },
    region: { type: 'string' },
    to: { type: 'string' },
    policy: { type: 'string' },
    failover: { type: 'boolean' },
    'i-understand-this-is-production': { type: 'boolean' },
  });
  if (!args) return EXIT.badInput;
  const problems: string[] = [];
  const plan = loadPlanInto(problems, args.file as string | undefined);
  const database = args.database as string | undefined;
  const region = args.region as string | undefined;
  const to = (args.to as string | undefined) ?? 'latest';
  let policy = args.policy as string | undefined;
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
  const t = parseRestoreTarget(to);
  if (!t.ok) problems.push(`--to: ${t.problem}`);
  if (plan && database) {
    const policies = plan.drills.policies.filter((p) => p.database === database);
    if (policy && !policies.some((p) => p.name === policy))
      problems.push(
        `--policy: no drill policy "${policy}" for ${database}; declared: ${policies.map((p) => p.name).join(', ') || 'none'}`,
      );
    // The database's only drill policy for this region says which tables to compare.
    const matching = policies.filter((p) => p.region === region);
    if (!policy && matching.length === 1) policy = matching[0]!.name;
  }
  const mode = args.failover ? ('failover' as const) : ('restore' as const);
  const acknowledgeProduction = args['i-understand-this-is-production'] === true;
  if (mode === 'failover' && args.to !== undefined) problems.push('--to: a failover drill restores nothing');
  if (mode === 'failover' && plan && database && region && plan.databases[database] && plan.regions[region])
    for (const p of failoverDrillProblems(plan, {
      database,
      region,
      target: 'latest',
      mode,
      acknowledgeProduction,
    }))
      problems.push(`--failover: ${p}`);
  if (problems.length || !plan || !database || !region) {
    for (const p of problems) printError(p);
    return EXIT.badInput;
  }
  const input: DrillInput = {
    database,
    region,
    target: to,
    requestedBy: process.env.LIFEBOAT_USER ?? os.userInfo().username,
    ...(policy ? { policy } : {}),
    ...(mode === 'failover' ? { mode, acknowledgeProduction } : {}),
  };
  const { client, target, close } = await connectClient();
  try {
    const workflowId = workflowIds.drill(database, new Date());
    const run = await startAndFollow<typeof drDrillWorkflow, DrillProgress>(client, target, {
      workflowType: 'drDrillWorkflow',
      workflowId,
      args: [input],
      staticSummary: `DR drill of ${database} in ${region} (${to})`,
      startedLine: `drill of ${database} in ${region} started`,
      json: Boolean(args.json),
      detach: Boolean(args.detach),
      render: renderDrillProgress,
    });
    if (run.outcome === 'detached') return EXIT.ok;
    if (run.outcome === 'failed') {
      // Cancelled drills still wrote their report; say where.
      printError(`${workflowId}: ${run.error.cause?.message ?? run.error.message}`);
      return EXIT.failed;
    }
    const report: DrillReport = run.result;
    if (args.json) printJson({ webUi: run.link, ...report });
    else process.stdout.write(`${summarizeDrill(report)}\n`);
    return report.outcome === 'passed' ? EXIT.ok : EXIT.failed;
  } finally {
    await close();
  }
}

/** One line of a drill's progress, for `lifeboat drill` and `lifeboat status`. */
export function renderDrillProgress(p: DrillProgress): string {
  const parts = [`${p.drillId}: ${p.phase} since ${p.phaseSince}`];
  if (p.restoreWorkflowId) parts.push(`restore ${p.restoreWorkflowId}`);
  if (p.failoverWorkflowId && (p.phase === 'switching-over' || p.phase === 'switching-back'))
    parts.push(`${p.failoverWorkflowId} (approve: lifeboat approve ${p.failoverWorkflowId} --as <name>)`);
  if (p.scratch) parts.push(`scratch port ${p.scratch.port}`);
  if (p.outcome) parts.push(p.outcome);
  return parts.join('; ');
}
