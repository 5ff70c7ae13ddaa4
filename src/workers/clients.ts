// Builds the real clients the activities use, from the plan and the worker's environment.
import path from 'node:path';
import type { ActivityDeps } from '../activities/index.ts';
import { createDnsZone } from '../activities/ports/dns-zone.ts';
import type { Environment } from '../activities/ports/environment.ts';
import { createKubernetesCluster, type KubernetesCluster } from '../activities/ports/kubernetes-cluster.ts';
import { planStore } from '../activities/ports/object-store.ts';
import type { Plan } from '../domain/plan.ts';

export function buildActivityDeps(plan: Plan, env: Environment): ActivityDeps {
  const clusters: Record<string, KubernetesCluster> = {};
  for (const [region, r] of Object.entries(plan.regions))
    if (r.kubernetes)
      clusters[region] = createKubernetesCluster(r.kubernetes.kubeconfig, r.kubernetes.context);
  return {
    plan,
    env,
    stores: {
      primary: planStore(plan, env, 'primary'),
      ...(plan.storage.secondary ? { secondary: planStore(plan, env, 'secondary') } : {}),
    },
    zone: plan.dns ? createDnsZone(plan.dns, env) : undefined,
    clusters,
    // The WAL archiver's spool: a persistent volume in production (LIFEBOAT_SPOOL).
    spoolDir: path.resolve(env.LIFEBOAT_SPOOL ?? path.join(env.LIFEBOAT_STATE ?? '.lifeboat', 'spool')),
  };
}
