// Reads `lifeboat.yaml`: YAML syntax errors and schema problems come back together as
// `path: message` lines. Relative file paths in the plan resolve against the plan's folder.
import fs from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { Plan } from '../domain/plan.ts';
import { validatePlan, type PlanProblem } from '../domain/plan-validation.ts';

export type PlanFileResult =
  { ok: true; plan: Plan; file: string } | { ok: false; problems: PlanProblem[]; file: string };

/** `-f`, else LIFEBOAT_PLAN, else ./lifeboat.yaml. */
export function planFilePath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(flag ?? env.LIFEBOAT_PLAN ?? 'lifeboat.yaml');
}

export function readPlanFile(file: string): PlanFileResult {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    return {
      ok: false,
      file,
      problems: [{ path: file, message: `cannot read the plan: ${(err as Error).message}` }],
    };
  }
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      file,
      problems: doc.errors.map((e) => ({
        path: `${file}:${e.linePos?.[0].line ?? '?'}`,
        message: `YAML: ${e.message}`,
      })),
    };
  }
  const result = validatePlan(doc.toJS());
  if (!result.ok) return { ...result, file };
  return { ok: true, file, plan: resolvePaths(result.plan, path.dirname(file)) };
}

/** Like readPlanFile, but throws one error listing every problem. */
export function loadPlan(file: string): Plan {
  const result = readPlanFile(file);
  if (!result.ok) throw new PlanError(file, result.problems);
  return result.plan;
}

export class PlanError extends Error {
  readonly problems: PlanProblem[];
  constructor(file: string, problems: PlanProblem[]) {
    super(
      `${file}: ${problems.length} problem(s)\n${problems.map((p) => `${p.path}: ${p.message}`).join('\n')}`,
    );
    this.name = 'PlanError';
    this.problems = problems;
  }
}

function resolvePaths(plan: Plan, dir: string): Plan {
  const abs = (p: string | undefined) => (p === undefined ? undefined : path.resolve(dir, p));
  const storage = (loc: Plan['storage']['primary']) => ({ ...loc, caFile: abs(loc.caFile) });
  return {
    ...plan,
    regions: Object.fromEntries(
      Object.entries(plan.regions).map(([name, r]) => [
        name,
        {
          ...r,
          postgres: { ...r.postgres, caFile: abs(r.postgres.caFile) },
          kubernetes: r.kubernetes && { ...r.kubernetes, kubeconfig: abs(r.kubernetes.kubeconfig)! },
        },
      ]),
    ),
    storage: {
      ...plan.storage,
      primary: storage(plan.storage.primary),
      secondary: plan.storage.secondary && storage(plan.storage.secondary),
      encryption: { ...plan.storage.encryption, recipientsFile: abs(plan.storage.encryption.recipientsFile) },
    },
  };
}
