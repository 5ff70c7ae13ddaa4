// `lifeboat worker --region <r>`: runs the workers of one region until SIGINT/SIGTERM.
import { runWorker } from '../workers/worker.ts';
import { parseCommandArgs } from './args.ts';
import { envFilesInto, loadEnvFiles, loadPlanInto } from './plan-args.ts';
import { EXIT, printError } from './output.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('worker', argv, {
    file: { type: 'string', short: 'f' },
    region: { type: 'string' },
    'metrics-address': { type: 'string' },
    'env-file': { type: 'string', multiple: true },
  });
  if (!args) return EXIT.badInput;
  const problems: string[] = [];
  const plan = loadPlanInto(problems, args.file as string | undefined);
  const region = args.region as string | undefined;
  if (!region) problems.push('--region: required (the region this worker runs in)');
  else if (plan && !plan.regions[region])
    problems.push(
      `--region: "${region}" is not in the plan; declared: ${Object.keys(plan.regions).join(', ')}`,
    );
  const metrics = args['metrics-address'] as string | undefined;
  if (metrics !== undefined && !/^[\w.-]+:\d{1,5}$/.test(metrics))
    problems.push('--metrics-address: expected host:port');
  const envFiles = envFilesInto(problems, args['env-file']);
  if (problems.length || !plan || !region) {
    for (const p of problems) printError(p);
    return EXIT.badInput;
  }
  // Secrets come from the environment (or env files the operator names), never from the plan.
  loadEnvFiles(envFiles);
  await runWorker({ plan, region, metricsAddress: metrics ?? process.env.LIFEBOAT_METRICS_ADDRESS });
  return EXIT.ok;
}
