// `lifeboat validate`: checks the plan and starts nothing. Every problem, one per line, exit 2.
import { planFilePath, readPlanFile } from '../workers/plan-file.ts';
import { EXIT, printJson } from './output.ts';
import { parseCommandArgs } from './args.ts';

export function run(argv: string[]): Promise<number> {
  return Promise.resolve(validate(argv));
}

function validate(argv: string[]): number {
  const args = parseCommandArgs('validate', argv, {
    file: { type: 'string', short: 'f' },
    json: { type: 'boolean' },
  });
  if (!args) return EXIT.badInput;
  const result = readPlanFile(planFilePath(args.file as string | undefined));
  if (args.json) {
    printJson(
      result.ok
        ? { ok: true, file: result.file, plan: result.plan }
        : { ok: false, file: result.file, problems: result.problems },
    );
    return result.ok ? EXIT.ok : EXIT.badInput;
  }
  if (!result.ok) {
    process.stderr.write(`${result.file}: ${result.problems.length} problem(s)\n`);
    for (const p of result.problems) process.stdout.write(`${p.path}: ${p.message}\n`);
    return EXIT.badInput;
  }
  const p = result.plan;
  process.stdout.write(
    `${result.file}: plan "${p.name}" is valid: ${Object.keys(p.regions).length} region(s), ${Object.keys(p.databases).length} database(s), ` +
      `${p.backup.policies.length} backup, ${p.failover.policies.length} failover and ${p.drills.policies.length} drill polic(ies)\n`,
  );
  return EXIT.ok;
}
