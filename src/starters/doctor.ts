// `lifeboat doctor`: runs doctorWorkflow and prints its findings; exit 1 when anything is off.
import os from 'node:os';
import { WorkflowFailedError } from '@temporalio/client';
import type { DoctorReport } from '../domain/doctor.ts';
import { workflowIds } from '../domain/naming.ts';
import { loadPlan, planFilePath, PlanError } from '../workers/plan-file.ts';
import { SHARED_TASK_QUEUE } from '../domain/plan.ts';
import { webUiLink } from '../workers/temporal-connection.ts';
import type { doctorWorkflow } from '../workflows/doctor.ts';
import { parseCommandArgs } from './args.ts';
import { EXIT, printError, printJson, table } from './output.ts';
import { connectClient } from './temporal-client.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('doctor', argv, {
    file: { type: 'string', short: 'f' },
    json: { type: 'boolean' },
    detach: { type: 'boolean' },
    database: { type: 'string', multiple: true },
    timeout: { type: 'string' },
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
  const databases = args.database as string[] | undefined;
  const unknown = (databases ?? []).filter((d) => !plan.databases[d]);
  if (unknown.length) {
    printError(
      `--database: ${unknown.join(', ')} not in the plan; declared: ${Object.keys(plan.databases).join(', ')}`,
    );
    return EXIT.badInput;
  }
  const timeoutSeconds = Number(args.timeout ?? '120');
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
    printError('--timeout: expected seconds, e.g. 120');
    return EXIT.badInput;
  }

  const { client, target, close } = await connectClient();
  try {
    const workflowId = workflowIds.doctor(plan.name, new Date());
    const handle = await client.workflow.start<typeof doctorWorkflow>('doctorWorkflow', {
      taskQueue: SHARED_TASK_QUEUE,
      workflowId,
      args: [
        {
          requestedBy: process.env.LIFEBOAT_USER ?? os.userInfo().username,
          ...(databases ? { databases } : {}),
        },
      ],
      staticSummary: `doctor: plan ${plan.name}${databases ? ` (${databases.join(', ')})` : ''}`,
      workflowExecutionTimeout: `${timeoutSeconds}s`,
    });
    const link = webUiLink(target, workflowId);
    if (!args.json) process.stderr.write(`doctor started: ${workflowId}\n  ${link}\n`);
    if (args.detach) {
      if (args.json) printJson({ workflowId, webUi: link });
      return EXIT.ok;
    }
    let report: DoctorReport;
    try {
      report = await handle.result();
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        const timedOut = err.cause?.name === 'TimeoutFailure';
        printError(
          timedOut
            ? `doctor did not finish within ${timeoutSeconds}s: is a worker running for every region (lifeboat worker --region <r>)?`
            : `doctor failed: ${err.cause?.message ?? err.message}`,
        );
        return EXIT.failed;
      }
      throw err;
    }
    if (args.json) printJson({ workflowId, webUi: link, ...report });
    else printReport(report);
    return report.ok ? EXIT.ok : EXIT.failed;
  } finally {
    await close();
  }
}

function printReport(report: DoctorReport): void {
  const rows = report.findings.map((f) => [f.ok ? 'ok' : 'FAIL', f.system, f.target, f.detail]);
  process.stdout.write(table(['', 'system', 'target', 'detail'], rows));
  const failed = report.findings.filter((f) => !f.ok).length;
  process.stdout.write(
    failed === 0
      ? `\nall ${report.findings.length} checks passed (${(report.durationMs / 1000).toFixed(1)}s)\n`
      : `\n${failed} of ${report.findings.length} checks failed\n`,
  );
}
