// Plans for tests: the example plan as parsed YAML, and a way to change one thing in a copy.
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

export const repoRoot = path.resolve(import.meta.dirname, '..', '..');
export const examplePlanFile = path.join(repoRoot, 'examples', 'lifeboat.yaml');

/** The example plan as raw input (before validation). */
export function rawExamplePlan(): Record<string, unknown> {
  return parse(fs.readFileSync(examplePlanFile, 'utf8')) as Record<string, unknown>;
}

/** A copy of the example plan with `edit` applied. */
export function editedPlan(edit: (plan: any) => void): Record<string, unknown> {
  const plan = structuredClone(rawExamplePlan());
  edit(plan);
  return plan;
}
