// The real local stack for tests: reuses it when every part runs, otherwise brings it up with the
// stack's own plan (the same as `lifeboat stack up`). Several test files may call this at once: the
// stack's lock makes them wait for one another. Tests never bring the stack down.
import type { Plan } from '../../src/domain/plan.ts';
import { layoutFromEnv, type StackLayout, type StackRegion } from '../../src/stack/layout.ts';
import { writeStackPlan } from '../../src/stack/stack-plan.ts';
import { postgresPid } from '../../src/stack/postgres-clusters.ts';
import { loadSecrets } from '../../src/stack/secrets.ts';
import { stackStatus, stackUp } from '../../src/stack/stack.ts';
import { loadPlan } from '../../src/workers/plan-file.ts';
import { repoRoot } from './plans.ts';
import path from 'node:path';

export interface TestStack {
  layout: StackLayout;
  /** The stack's credentials (`LIFEBOAT_PG_PASSWORD`, …), as in layout.secretsFile. */
  secrets: Record<string, string>;
  /** process.env with the stack's secrets and TEMPORAL_ADDRESS, for child processes and clients. */
  env: NodeJS.ProcessEnv;
  planFile: string;
  plan: Plan;
  /** The region's running postmaster; throws when it does not run. */
  postgresPid(region: StackRegion): number;
}

/** The state folder tests use: LIFEBOAT_STATE, else the checkout's `.lifeboat`. */
export const testStateDir = (): string =>
  path.resolve(process.env.LIFEBOAT_STATE ?? path.join(repoRoot, '.lifeboat'));

let pending: Promise<TestStack> | undefined;

/** The running stack, brought up first when a part is down. */
export function ensureStack(): Promise<TestStack> {
  pending ??= bringUp().catch((err: unknown) => {
    pending = undefined;
    throw err;
  });
  return pending;
}

async function bringUp(): Promise<TestStack> {
  const layout = layoutFromEnv(process.env, testStateDir());
  const planFile = writeStackPlan(layout);
  const plan = loadPlan(planFile);
  const status = await stackStatus(layout);
  if (!status.running) {
    const down = status.parts.filter((p) => !p.running).map((p) => p.name);
    process.stderr.write(`# bringing the local stack up (${down.join(', ')} not running)\n`);
    await stackUp(layout, plan, (line) => process.stderr.write(`# ${line}\n`));
  }
  const secrets = loadSecrets(layout);
  return {
    layout,
    secrets,
    env: { ...process.env, ...secrets, TEMPORAL_ADDRESS: layout.temporal.address },
    planFile,
    plan,
    postgresPid(region: StackRegion): number {
      const pid = postgresPid(layout, region);
      if (pid === undefined) throw new Error(`postgres-${region} is not running`);
      return pid;
    },
  };
}
