// `lifeboat stack up|down|status`: the embedded local stack on loopback (Temporal dev server,
// PostgreSQL primary + replica, S3- and Route53-compatible servers, Kubernetes API stand-ins).
import path from 'node:path';
import { layoutFromEnv, type StackLayout } from '../stack/layout.ts';
import { writeStackPlan } from '../stack/stack-plan.ts';
import { MissingPrerequisitesError, StackUpError, stackDown, stackStatus, stackUp } from '../stack/stack.ts';
import { readPlanFile } from '../workers/plan-file.ts';
import { parseCommandArgs } from './args.ts';
import { EXIT, printError, printJson, table } from './output.ts';

const USAGE = `usage: lifeboat stack up|down|status [--json] [-f plan] [--state dir]

  up       start every part (or reuse what runs) and wait until each answers
  down     stop what the stack started
  status   what runs where (addresses, no passwords); exit 1 when a part is not running

  -f, --file <plan>  plan that seeds buckets, DNS records and Kubernetes objects (up only);
                     default the stack's own plan, <state>/lifeboat.yaml, which every up writes
                     (examples/lifeboat.yaml with this stack's ports and paths)
  --state <dir>      state folder; default LIFEBOAT_STATE, else ./.lifeboat
  LIFEBOAT_PORT_OFFSET=N  shift every port by N to run a second stack beside the first
  --json             one JSON document on stdout
`;

/** The plan that seeds the stack: `-f`, else the stack's own plan (written on every up). */
export function stackPlanPath(flag: string | undefined, layout: StackLayout): string {
  return flag ? path.resolve(flag) : writeStackPlan(layout);
}

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs(
    'stack',
    argv,
    {
      file: { type: 'string', short: 'f' },
      state: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (!args) return EXIT.badInput;
  if (args.help) {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  const [action, ...extra] = args._;
  if (!action || !['up', 'down', 'status'].includes(action) || extra.length > 0) {
    printError(
      !action
        ? 'stack: say what to do: up, down or status'
        : extra.length > 0
          ? `stack: unexpected argument "${extra[0]}"`
          : `stack: unknown action "${action}"; expected up, down or status`,
    );
    process.stderr.write(USAGE);
    return EXIT.badInput;
  }
  if (args.file !== undefined && action !== 'up') {
    printError(`stack ${action}: -f/--file applies to stack up only`);
    return EXIT.badInput;
  }
  const json = args.json === true;
  const layout = layoutFromEnv(process.env, args.state as string | undefined);

  if (action === 'status') {
    const status = await stackStatus(layout);
    if (json) printJson(status);
    else {
      process.stdout.write(`state ${status.state}  (secrets in ${status.secretsFile})\n`);
      process.stdout.write(
        table(
          ['PART', 'RUNNING', 'PID', 'ADDRESS', 'DETAILS'],
          status.parts.map((p) => [
            p.name,
            p.running ? (p.external ? 'yes (external)' : 'yes') : 'no',
            p.pid === undefined ? '' : String(p.pid),
            p.address,
            Object.entries(p.details)
              .map(([k, v]) => `${k}=${v}`)
              .join(' '),
          ]),
        ),
      );
    }
    return status.running ? EXIT.ok : EXIT.failed;
  }

  if (action === 'down') {
    const log = json ? () => {} : (line: string) => process.stdout.write(`${line}\n`);
    if (!json) process.stdout.write(`stopping the local stack (state ${layout.state})\n`);
    try {
      const parts = await stackDown(layout, log);
      if (json) printJson({ ok: true, state: layout.state, parts });
      return EXIT.ok;
    } catch (err) {
      if (json) printJson({ ok: false, state: layout.state, error: (err as Error).message });
      else printError((err as Error).message);
      return EXIT.failed;
    }
  }

  if (args.file !== undefined) writeStackPlan(layout);
  const planFile = stackPlanPath(args.file as string | undefined, layout);
  const plan = readPlanFile(planFile);
  if (!plan.ok) {
    if (json) printJson({ ok: false, file: plan.file, problems: plan.problems });
    else {
      printError(`${plan.file}: ${plan.problems.length} problem(s)`);
      for (const p of plan.problems) process.stderr.write(`${p.path}: ${p.message}\n`);
    }
    return EXIT.badInput;
  }
  const log = json ? () => {} : (line: string) => process.stdout.write(`${line}\n`);
  if (!json) process.stdout.write(`bringing the local stack up (state ${layout.state}, plan ${planFile})\n`);
  try {
    const result = await stackUp(layout, plan.plan, log);
    if (json)
      printJson({
        ok: true,
        state: layout.state,
        plan: planFile,
        ...result,
        status: await stackStatus(layout),
      });
    else process.stdout.write(`secrets: ${layout.secretsFile}; see addresses with: lifeboat stack status\n`);
    return EXIT.ok;
  } catch (err) {
    const message = (err as Error).message;
    if (json) {
      printJson({
        ok: false,
        state: layout.state,
        plan: planFile,
        ...(err instanceof StackUpError ? { parts: err.parts, failures: err.failures } : {}),
        ...(err instanceof MissingPrerequisitesError ? { missing: err.problems } : { error: message }),
      });
    } else printError(message);
    return EXIT.failed;
  }
}
