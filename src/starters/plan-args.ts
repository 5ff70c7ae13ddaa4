// What most commands check first: the plan (-f) and, for many, a --database it declares.
// Problems are collected, not thrown, so a command reports every mistake at once (exit 2).
import fs from 'node:fs';
import type { Plan } from '../domain/plan.ts';
import { loadPlan, planFilePath, PlanError } from '../workers/plan-file.ts';

/** The validated plan, or undefined after adding each of its problems as `path: message`. */
export function loadPlanInto(problems: string[], file: string | undefined): Plan | undefined {
  try {
    return loadPlan(planFilePath(file));
  } catch (err) {
    if (!(err instanceof PlanError)) throw err;
    problems.push(...err.problems.map((p) => `${p.path}: ${p.message}`));
    return undefined;
  }
}

/** The --database value; a problem is added when it is missing or not in the plan. */
export function databaseInto(
  problems: string[],
  plan: Plan | undefined,
  database: string | undefined,
): string | undefined {
  if (!database) problems.push('--database: required');
  else if (plan && !plan.databases[database])
    problems.push(
      `--database: "${database}" is not in the plan; declared: ${Object.keys(plan.databases).join(', ')}`,
    );
  return database;
}

/** The --env-file values (credentials for commands that read storage directly); each must exist. */
export function envFilesInto(problems: string[], files: unknown): string[] {
  const list = (files as string[] | undefined) ?? [];
  for (const file of list) if (!fs.existsSync(file)) problems.push(`--env-file: ${file} does not exist`);
  return list;
}

/** Loads them into this process's environment, once the command's input is known to be good. */
export function loadEnvFiles(files: string[]): void {
  for (const file of files) process.loadEnvFile(file);
}

/** The --html output file: a path to write, not empty and not a directory. */
export function htmlFileInto(problems: string[], html: unknown): string | undefined {
  const file = html as string | undefined;
  if (file !== undefined && (file === '' || (fs.existsSync(file) && fs.statSync(file).isDirectory())))
    problems.push(`--html: expected a file to write, got "${file}"`);
  return file;
}
