// Kubernetes activities: run on the task queue of the cluster's region.
import type { Finding } from '../domain/doctor.ts';
import type { Plan } from '../domain/plan.ts';
import type { KubernetesCluster } from './ports/kubernetes-cluster.ts';

export function createKubernetesActivities(deps: {
  plan: Plan;
  clusters: Record<string, KubernetesCluster>;
}) {
  return {
    /** The region's cluster answers, and the namespaces and deployments the plan moves exist. */
    async checkCluster(input: { region: string }): Promise<Finding> {
      const cluster = deps.clusters[input.region];
      const target = `cluster ${input.region}`;
      const base = { system: 'kubernetes' as const, target, region: input.region };
      if (!cluster)
        return { ...base, ok: false, detail: 'no kubernetes cluster for this region in the plan' };
      try {
        const version = await cluster.version();
        const missing: string[] = [];
        for (const policy of deps.plan.failover.policies) {
          if (!policy.traffic) continue;
          const ns = policy.traffic.namespace;
          if (!(await cluster.namespaceExists(ns))) {
            missing.push(`namespace ${ns}`);
            continue;
          }
          const names = new Set((await cluster.listDeployments(ns)).map((d) => d.name));
          for (const d of policy.traffic.deployments)
            if (!names.has(d.name)) missing.push(`deployment ${ns}/${d.name}`);
        }
        return missing.length
          ? { ...base, ok: false, detail: `reachable (${version}) but missing ${missing.join(', ')}` }
          : { ...base, ok: true, detail: `reachable, ${version}` };
      } catch (err) {
        return { ...base, ok: false, detail: `unreachable: ${(err as Error).message.split('\n')[0]}` };
      }
    },
  };
}
