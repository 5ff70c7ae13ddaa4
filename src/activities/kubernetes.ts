// Kubernetes activities: run on the task queue of the cluster's region.
import { heartbeat, sleep } from '@temporalio/activity';
import type { Finding } from '../domain/doctor.ts';
import { LifeboatError } from '../domain/errors.ts';
import { kubernetesSelection } from '../domain/kubernetes-snapshot.ts';
import type { Plan } from '../domain/plan.ts';
import { objectNamingKey } from './kubernetes-object-names.ts';
import type { Environment } from './ports/environment.ts';
import type { KubernetesCluster } from './ports/kubernetes-cluster.ts';

export function createKubernetesActivities(deps: {
  plan: Plan;
  env: Environment;
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
        // A backup exporting this cluster names its objects with a key from the repository's age
        // identity: a worker without it would fail every such backup at the export step.
        const exporting = Object.keys(deps.plan.databases).filter(
          (db) => kubernetesSelection(deps.plan, db)?.region === input.region,
        );
        let naming = '';
        if (exporting.length)
          try {
            objectNamingKey(deps.plan, deps.env, input.region);
          } catch (err) {
            naming = `; this worker cannot export the objects of ${exporting.join(', ')}: ${(err as Error).message}`;
          }
        if (missing.length)
          return {
            ...base,
            ok: false,
            detail: `reachable (${version}) but missing ${missing.join(', ')}${naming}`,
          };
        return naming
          ? { ...base, ok: false, detail: `reachable (${version})${naming}` }
          : { ...base, ok: true, detail: `reachable, ${version}` };
      } catch (err) {
        return { ...base, ok: false, detail: `unreachable: ${(err as Error).message.split('\n')[0]}` };
      }
    },

    /** Sets the replicas of deployments in a region's cluster (scale subresource); idempotent. */
    async scaleDeployments(input: {
      region: string;
      namespace: string;
      deployments: { name: string; replicas: number }[];
    }): Promise<{ scaled: string[] }> {
      const cluster = clusterOf(deps, input.region);
      for (const d of input.deployments)
        await kube(() => cluster.scaleDeployment(input.namespace, d.name, d.replicas));
      return { scaled: input.deployments.map((d) => `${input.namespace}/${d.name}=${d.replicas}`) };
    },

    /** Waits (heartbeating) until every listed deployment has as many ready replicas as desired. */
    async waitDeploymentsReady(input: {
      region: string;
      namespace: string;
      deployments: string[];
    }): Promise<{ ready: string[] }> {
      const cluster = clusterOf(deps, input.region);
      for (;;) {
        const states = await Promise.all(
          input.deployments.map((name) => kube(() => cluster.readDeployment(input.namespace, name))),
        );
        const waiting = states.filter((s) => s.readyReplicas !== s.replicas);
        if (waiting.length === 0)
          return {
            ready: states.map((s) => `${input.namespace}/${s.name} ${s.readyReplicas}/${s.replicas}`),
          };
        heartbeat(waiting.map((s) => `${s.name} ${s.readyReplicas}/${s.replicas}`).join(', '));
        await sleep(250);
      }
    },

    /** Writes the database endpoint into the configmap the apps read (created when missing). */
    async setEndpointConfigMap(input: {
      region: string;
      namespace: string;
      name: string;
      key: string;
      value: string;
      annotations: Record<string, string>;
    }): Promise<{ detail: string }> {
      const cluster = clusterOf(deps, input.region);
      await kube(() =>
        cluster.applyConfigMap(input.namespace, input.name, { [input.key]: input.value }, input.annotations),
      );
      return { detail: `${input.namespace}/${input.name} ${input.key}=${input.value}` };
    },
  };
}

function clusterOf(deps: { clusters: Record<string, KubernetesCluster> }, region: string): KubernetesCluster {
  const cluster = deps.clusters[region];
  if (!cluster)
    throw new LifeboatError('UnknownReference', `no kubernetes cluster for region ${region} in the plan`);
  return cluster;
}

/** A cluster that does not answer may answer on the next attempt; a 4xx other than 409/429 will not. */
async function kube<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    const code = (err as { code?: number }).code;
    const message = (err as Error).message.split('\n')[0]!;
    if (code !== undefined && code >= 400 && code < 500 && code !== 409 && code !== 429)
      throw new LifeboatError('InvalidInput', `kubernetes answered ${code}: ${message}`);
    throw new LifeboatError('Unreachable', `kubernetes: ${message}`);
  }
}
