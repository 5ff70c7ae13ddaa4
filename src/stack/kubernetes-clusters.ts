// The local stack's two "Kubernetes clusters": one Kubernetes API stand-in per region (a stand-in
// for tests and the local stack, not a Kubernetes implementation; see kubernetes-stand-in.ts),
// each with its own bearer token and kubeconfig, seeded from the plan's failover traffic so a
// failover has deployments to scale and an endpoint ConfigMap to rewrite.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { V1ConfigMap, V1Deployment, V1Namespace } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { Plan } from '../domain/plan.ts';
import type { StackLayout, StackRegion } from './layout.ts';
import { STACK_REGIONS } from './layout.ts';
import type { PartProcess } from './processes.ts';
import { portOpen, runningPid, startDetached, stopPart, waitUntil } from './processes.ts';

const MAIN = fileURLToPath(new URL('./kubernetes-stand-in-main.ts', import.meta.url));
/** Label on every object the stack seeds, so they can be told from objects tests create. */
export const SEEDED_BY = { 'app.kubernetes.io/managed-by': 'lifeboat-stack' } as const;

export function kubernetesPart(layout: StackLayout, region: StackRegion): PartProcess {
  return { name: `kubernetes-${region}`, runDir: layout.runDir, logDir: layout.logDir };
}

/** The file holding the region's bearer token (mode 0600), beside its kubeconfig. */
export function kubernetesTokenFile(layout: StackLayout, region: StackRegion): string {
  return path.join(path.dirname(layout.kubernetes[region].kubeconfig), `${region}.token`);
}

/**
 * Starts (or reuses) the stand-in of each region, writes its kubeconfig, waits until it answers,
 * and creates the plan's namespaces, deployments and endpoint ConfigMap where they are missing.
 * Objects that exist are left alone: after a failover the clusters keep the failed-over state.
 */
export async function startKubernetesStandIns(layout: StackLayout, plan: Plan): Promise<void> {
  await Promise.all(
    STACK_REGIONS.map(async (region) => {
      const k = layout.kubernetes[region];
      const part = kubernetesPart(layout, region);
      const tokenFile = kubernetesTokenFile(layout, region);
      const token = ensureToken(tokenFile);
      writeKubeconfig(k.kubeconfig, region, k.server, token);
      if (runningPid(part) === undefined) {
        const url = new URL(k.server);
        if (await portOpen(url.hostname, k.port)) {
          throw new Error(
            `${part.name}: port ${k.port} is already in use by a process the stack did not start`,
          );
        }
        startDetached(part, {
          command: process.execPath,
          args: [
            '--disable-warning=ExperimentalWarning',
            MAIN,
            '--port',
            String(k.port),
            '--state-file',
            k.stateFile,
            '--token-file',
            tokenFile,
          ],
        });
      }
      await waitUntil(
        part,
        `Kubernetes API stand-in on ${k.server}`,
        () => versionAnswers(k.server, token),
        30_000,
      );
    }),
  );
  await seedFromPlan(layout, plan);
}

export async function stopKubernetesStandIns(layout: StackLayout): Promise<void> {
  await Promise.all(STACK_REGIONS.map((region) => stopPart(kubernetesPart(layout, region))));
}

export function kubernetesStandInsRunning(layout: StackLayout): Record<StackRegion, boolean> {
  return Object.fromEntries(
    STACK_REGIONS.map((region) => [region, runningPid(kubernetesPart(layout, region)) !== undefined]),
  ) as Record<StackRegion, boolean>;
}

async function versionAnswers(server: string, token: string): Promise<boolean> {
  const res = await fetch(new URL('/version', server), {
    headers: { Authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(2000),
  });
  await res.body?.cancel();
  return res.ok;
}

function ensureToken(file: string): string {
  try {
    const token = fs.readFileSync(file, 'utf8').trim();
    if (token) return token;
  } catch {
    /* not yet generated */
  }
  const token = randomBytes(32).toString('base64url');
  writePrivate(file, `${token}\n`);
  return token;
}

/** Writes (mode 0600, only when it changed) a kubeconfig whose one context, `region`, is current. */
export function writeKubeconfig(file: string, region: string, server: string, token: string): void {
  const user = `lifeboat-${region}`;
  const text =
    `# Kubeconfig of a Kubernetes API stand-in for ${region} (the local stack's, not a real cluster).\n` +
    `# The stand-in speaks plain HTTP on loopback; @kubernetes/client-node 2.x only accepts an http://\n` +
    `# server when insecure-skip-tls-verify is set (there is no TLS to verify).\n` +
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: region,
          cluster: { server, ...(server.startsWith('http:') ? { 'insecure-skip-tls-verify': true } : {}) },
        },
      ],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: region, context: { cluster: region, user, namespace: 'default' } }],
      'current-context': region,
      preferences: {},
    });
  let existing: string | undefined;
  try {
    existing = fs.readFileSync(file, 'utf8');
  } catch {
    /* first start */
  }
  if (existing !== text) writePrivate(file, text);
}

/** Writes a file readable only by its owner, atomically (temporary file + rename). */
function writePrivate(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

async function seedFromPlan(layout: StackLayout, plan: Plan): Promise<void> {
  for (const region of STACK_REGIONS) {
    const kc = new KubeConfig();
    kc.loadFromFile(layout.kubernetes[region].kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    for (const policy of plan.failover.policies) {
      const traffic = policy.traffic;
      if (!traffic) continue;
      const primary = plan.databases[policy.database]?.primaryRegion;
      const namespace = traffic.namespace;
      const ns: V1Namespace = { metadata: { name: namespace, labels: { ...SEEDED_BY } } };
      await ignoreExisting(core.createNamespace({ body: ns }));
      for (const d of traffic.deployments) {
        const labels = { app: d.name };
        const body: V1Deployment = {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: d.name, namespace, labels: { ...labels, ...SEEDED_BY } },
          spec: {
            replicas: region === primary ? d.replicas : 0,
            selector: { matchLabels: labels },
            template: {
              metadata: { labels },
              spec: {
                containers: [
                  {
                    name: d.name,
                    image: `example.invalid/${d.name}:local`,
                    envFrom: traffic.endpointConfigMap
                      ? [{ configMapRef: { name: traffic.endpointConfigMap.name, optional: true } }]
                      : undefined,
                  },
                ],
              },
            },
          },
        };
        await ignoreExisting(apps.createNamespacedDeployment({ namespace, body }));
      }
      const cm = traffic.endpointConfigMap;
      const host = primary === undefined ? undefined : plan.regions[primary]?.postgres.host;
      if (cm && region === primary && host !== undefined) {
        const body: V1ConfigMap = {
          metadata: { name: cm.name, namespace, labels: { ...SEEDED_BY } },
          data: { [cm.key]: host },
        };
        await ignoreExisting(core.createNamespacedConfigMap({ namespace, body }));
      }
    }
  }
}

async function ignoreExisting(call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
}
