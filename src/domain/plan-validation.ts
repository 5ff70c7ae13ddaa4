// Turns raw YAML-parsed input into a Plan, or into every problem at once, each with its path.
// Structural problems come from zod; references between sections (a database's region must be
// declared, …) are checked on the raw input so that both kinds are reported in one pass.
import type { z } from 'zod';
import { planSchema, type Plan } from './plan.ts';

export interface PlanProblem {
  path: string;
  message: string;
}

export type PlanResult = { ok: true; plan: Plan } | { ok: false; problems: PlanProblem[] };

const SECRET_KEY =
  /^(password|passwd|secret|secretaccesskey|accesskeyid|sessiontoken|token|apikey|privatekey|identity)$/i;

/** `regions.us-east-1.postgres.port`, `databases.orders.replicas[0].region`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(plan)';
}

export function validatePlan(input: unknown): PlanResult {
  const parsed = planSchema.safeParse(input);
  const problems = [
    ...(parsed.success ? [] : parsed.error.issues.flatMap(describeIssue)),
    ...crossReferenceProblems(input),
  ];
  if (problems.length > 0 || !parsed.success) return { ok: false, problems: dedupe(sortProblems(problems)) };
  return { ok: true, plan: parsed.data };
}

function describeIssue(issue: z.core.$ZodIssue): PlanProblem[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      path: formatPath([...issue.path, key]),
      message: SECRET_KEY.test(key)
        ? `secrets must not be written in the plan; name the environment variable that holds it (${key}Env: …)`
        : 'unknown field',
    }));
  }
  if (issue.code === 'invalid_type' && /received undefined$/.test(issue.message)) {
    return [{ path: formatPath(issue.path), message: 'required' }];
  }
  return [{ path: formatPath(issue.path), message: issue.message }];
}

type Loose = Record<string, unknown>;
const isObject = (v: unknown): v is Loose => typeof v === 'object' && v !== null && !Array.isArray(v);
const entries = (v: unknown): [string, Loose][] =>
  isObject(v) ? Object.entries(v).filter((e): e is [string, Loose] => isObject(e[1])) : [];
const items = (v: unknown): [number, Loose][] =>
  Array.isArray(v)
    ? v.map((x, i) => [i, x] as [number, unknown]).filter((e): e is [number, Loose] => isObject(e[1]))
    : [];

function crossReferenceProblems(input: unknown): PlanProblem[] {
  if (!isObject(input)) return [];
  const problems: PlanProblem[] = [];
  const regions = new Set(isObject(input.regions) ? Object.keys(input.regions) : []);
  const databases = new Set(isObject(input.databases) ? Object.keys(input.databases) : []);
  const needRegion = (value: unknown, path: string) => {
    if (typeof value === 'string' && !regions.has(value))
      problems.push({
        path,
        message: `unknown region "${value}"; declared: ${[...regions].join(', ') || 'none'}`,
      });
  };
  const needDatabase = (value: unknown, path: string) => {
    if (typeof value === 'string' && !databases.has(value))
      problems.push({
        path,
        message: `unknown database "${value}"; declared: ${[...databases].join(', ') || 'none'}`,
      });
  };

  for (const [key, db] of entries(input.databases)) {
    needRegion(db.primaryRegion, `databases.${key}.primaryRegion`);
    for (const [i, replica] of items(db.replicas)) {
      needRegion(replica.region, `databases.${key}.replicas[${i}].region`);
      if (replica.region === db.primaryRegion)
        problems.push({
          path: `databases.${key}.replicas[${i}].region`,
          message: 'a replica cannot be in the primary region',
        });
    }
  }
  const dns = isObject(input.dns) ? input.dns : {};
  for (const [i, record] of items(dns.records)) {
    needDatabase(record.database, `dns.records[${i}].database`);
    for (const r of isObject(record.values) ? Object.keys(record.values) : [])
      needRegion(r, `dns.records[${i}].values.${r}`);
  }
  for (const [i, hook] of items(isObject(input.notifications) ? input.notifications.webhooks : undefined)) {
    if (typeof hook.url === 'string' && looksSecret(hook.url))
      problems.push({
        path: `notifications.webhooks[${i}].url`,
        message: 'this URL carries a credential; put it in an environment variable and use urlEnv',
      });
  }
  for (const section of ['backup', 'failover', 'drills'] as const) {
    const block = input[section];
    const policies = isObject(block) ? block.policies : undefined;
    for (const [i, policy] of items(policies)) {
      needDatabase(policy.database, `${section}.policies[${i}].database`);
      if ('region' in policy) needRegion(policy.region, `${section}.policies[${i}].region`);
    }
  }
  return problems;
}

function looksSecret(url: string): boolean {
  try {
    const u = new URL(url);
    return (
      u.username !== '' ||
      u.password !== '' ||
      u.hostname === 'hooks.slack.com' ||
      [...u.searchParams.keys()].some((k) => /token|key|secret|sig/i.test(k))
    );
  } catch {
    return false;
  }
}

function sortProblems(problems: PlanProblem[]): PlanProblem[] {
  return [...problems].sort((a, b) => a.path.localeCompare(b.path));
}

function dedupe(problems: PlanProblem[]): PlanProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${p.path}\u0000${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
