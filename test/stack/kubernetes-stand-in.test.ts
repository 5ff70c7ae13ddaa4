// The Kubernetes API stand-in (a stand-in for tests and the local stack, not a Kubernetes
// implementation), driven through @kubernetes/client-node exactly as Lifeboat's activities use it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ApisApi,
  AppsV1Api,
  CoreApi,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  VersionApi,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { V1ConfigMap, V1Deployment } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { validatePlan } from '../../src/domain/plan-validation.ts';
import {
  kubernetesStandInsRunning,
  kubernetesTokenFile,
  startKubernetesStandIns,
  stopKubernetesStandIns,
  writeKubeconfig,
} from '../../src/stack/kubernetes-clusters.ts';
import { createKubernetesStandIn } from '../../src/stack/kubernetes-stand-in.ts';
import { STACK_REGIONS, stackLayout } from '../../src/stack/layout.ts';
import { runningPid } from '../../src/stack/processes.ts';

const TOKEN = 'test-token-0123456789';
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const strategicPatch = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

interface Running {
  server: http.Server;
  url: string;
  kc: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
}

async function start(dir: string, stateFile: string, port = 0): Promise<Running> {
  const server = createKubernetesStandIn({ stateFile, token: TOKEN });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const kubeconfig = path.join(dir, 'test.kubeconfig');
  writeKubeconfig(kubeconfig, 'test', url, TOKEN);
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return { server, url, kc, core: kc.makeApiClient(CoreV1Api), apps: kc.makeApiClient(AppsV1Api) };
}

async function stop(r: Running): Promise<void> {
  await new Promise<void>((resolve) => {
    r.server.close(() => resolve());
    r.server.closeAllConnections();
  });
}

/** The status code and Status body of a failed client call. */
async function failure(call: Promise<unknown>): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    await call;
  } catch (err) {
    const e = err as { code?: number; body?: unknown };
    assert.equal(typeof e.code, 'number', String(err));
    const body = typeof e.body === 'string' && e.body ? (JSON.parse(e.body) as Record<string, unknown>) : {};
    return { code: e.code!, body };
  }
  assert.fail('the call succeeded');
}

function deployment(
  name: string,
  namespace: string,
  replicas: number,
  labels: Record<string, string> = {},
): V1Deployment {
  return {
    metadata: { name, namespace, labels: { app: name, ...labels } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'app', image: 'app:1' }] },
      },
    },
  };
}

async function waitReady(
  apps: AppsV1Api,
  namespace: string,
  name: string,
  replicas: number,
): Promise<V1Deployment> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const d = await apps.readNamespacedDeployment({ name, namespace });
    const s = d.status ?? {};
    if (
      s.observedGeneration === d.metadata?.generation &&
      (s.readyReplicas ?? 0) === replicas &&
      (s.availableReplicas ?? 0) === replicas &&
      (s.updatedReplicas ?? 0) === replicas
    ) {
      return d;
    }
    if (Date.now() > deadline) assert.fail(`deployment ${name} not ready: ${JSON.stringify(d.status)}`);
    await sleep(50);
  }
}

void describe('Kubernetes API stand-in', () => {
  let dir: string;
  let stateFile: string;
  let k: Running;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-k8s-'));
    stateFile = path.join(dir, 'state', 'cluster.json');
    k = await start(dir, stateFile);
  });
  after(async () => {
    await stop(k);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  void test('version and discovery', async () => {
    const version = await k.kc.makeApiClient(VersionApi).getCode();
    assert.equal(version.major, '1');
    assert.match(version.gitVersion, /stand-in/);
    const core = await k.kc.makeApiClient(CoreApi).getAPIVersions();
    assert.deepEqual(core.versions, ['v1']);
    const groups = await k.kc.makeApiClient(ApisApi).getAPIVersions();
    assert.ok(groups.groups.some((g) => g.name === 'apps'));
    const resources = await k.apps.getAPIResources();
    assert.ok(resources.resources.some((r) => r.name === 'deployments/scale'));
  });

  void test('requests without the bearer token are refused with 401', async () => {
    const none = await fetch(`${k.url}/api/v1/namespaces`);
    assert.equal(none.status, 401);
    const status = (await none.json()) as { kind: string; code: number; reason: string };
    assert.deepEqual([status.kind, status.code, status.reason], ['Status', 401, 'Unauthorized']);
    const wrong = await fetch(`${k.url}/version`, { headers: { Authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    const kubeconfig = path.join(dir, 'wrong.kubeconfig');
    writeKubeconfig(kubeconfig, 'wrong', k.url, 'not-the-token');
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    assert.equal((await failure(kc.makeApiClient(CoreV1Api).listNamespace())).code, 401);
  });

  void test('namespaces: create, list, get, conflict, delete cascades', async () => {
    const created = await k.core.createNamespace({
      body: { metadata: { name: 'shop', labels: { team: 'orders' } } },
    });
    assert.equal(created.metadata?.name, 'shop');
    assert.equal(created.status?.phase, 'Active');
    assert.match(created.metadata?.uid ?? '', /^[0-9a-f-]{36}$/);
    assert.match(created.metadata?.resourceVersion ?? '', /^\d+$/);
    assert.ok(created.metadata?.creationTimestamp instanceof Date);

    const list = await k.core.listNamespace();
    assert.deepEqual(
      list.items.map((n) => n.metadata?.name),
      ['default', 'kube-public', 'kube-system', 'shop'],
    );
    assert.equal((await k.core.readNamespace({ name: 'shop' })).metadata?.labels?.team, 'orders');
    const dup = await failure(k.core.createNamespace({ body: { metadata: { name: 'shop' } } }));
    assert.equal(dup.code, 409);
    assert.equal(dup.body.reason, 'AlreadyExists');
    const missing = await failure(k.core.readNamespace({ name: 'nowhere' }));
    assert.deepEqual(missing.body, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'namespaces "nowhere" not found',
      reason: 'NotFound',
      details: { name: 'nowhere', kind: 'namespaces' },
      code: 404,
    });
    const invalid = await failure(k.core.createNamespace({ body: { metadata: { name: 'Not_Valid' } } }));
    assert.equal(invalid.code, 422);

    await k.core.createNamespace({ body: { metadata: { name: 'scratch' } } });
    await k.core.createNamespacedConfigMap({ namespace: 'scratch', body: { metadata: { name: 'x' } } });
    await k.core.deleteNamespace({ name: 'scratch' });
    assert.equal((await failure(k.core.readNamespace({ name: 'scratch' }))).code, 404);
    assert.equal(
      (await failure(k.core.readNamespacedConfigMap({ name: 'x', namespace: 'scratch' }))).code,
      404,
    );
    const orphan = await failure(
      k.core.createNamespacedConfigMap({ namespace: 'scratch', body: { metadata: { name: 'x' } } }),
    );
    assert.equal(orphan.code, 404);
    assert.equal(orphan.body.message, 'namespaces "scratch" not found');
  });

  void test('configmaps: get, replace with optimistic concurrency, patches, delete', async () => {
    const body: V1ConfigMap = {
      metadata: { name: 'orders-db', labels: { app: 'orders' } },
      data: { DATABASE_HOST: 'a' },
    };
    const v1 = await k.core.createNamespacedConfigMap({ namespace: 'shop', body });
    assert.equal(v1.metadata?.namespace, 'shop');
    const read = await k.core.readNamespacedConfigMap({ name: 'orders-db', namespace: 'shop' });
    assert.deepEqual(read.data, { DATABASE_HOST: 'a' });
    assert.equal(read.metadata?.resourceVersion, v1.metadata?.resourceVersion);

    const v2 = await k.core.replaceNamespacedConfigMap({
      name: 'orders-db',
      namespace: 'shop',
      body: { ...read, data: { DATABASE_HOST: 'b' } },
    });
    assert.ok(Number(v2.metadata?.resourceVersion) > Number(v1.metadata?.resourceVersion));
    assert.equal(v2.metadata?.uid, v1.metadata?.uid);

    // `read` now carries a stale resourceVersion.
    const stale = await failure(
      k.core.replaceNamespacedConfigMap({
        name: 'orders-db',
        namespace: 'shop',
        body: { ...read, data: { DATABASE_HOST: 'c' } },
      }),
    );
    assert.equal(stale.code, 409);
    assert.equal(stale.body.reason, 'Conflict');
    assert.match(String(stale.body.message), /the object has been modified/);
    assert.equal(
      (await k.core.readNamespacedConfigMap({ name: 'orders-db', namespace: 'shop' })).data?.DATABASE_HOST,
      'b',
    );

    // A replace that changes nothing does not bump the resourceVersion.
    const same = await k.core.replaceNamespacedConfigMap({ name: 'orders-db', namespace: 'shop', body: v2 });
    assert.equal(same.metadata?.resourceVersion, v2.metadata?.resourceVersion);

    const merged = await k.core.patchNamespacedConfigMap(
      { name: 'orders-db', namespace: 'shop', body: { data: { EXTRA: 'x' } } },
      mergePatch,
    );
    assert.deepEqual(merged.data, { DATABASE_HOST: 'b', EXTRA: 'x' });
    // The client's default patch type is a JSON patch.
    const jsonPatched = await k.core.patchNamespacedConfigMap({
      name: 'orders-db',
      namespace: 'shop',
      body: [
        { op: 'test', path: '/data/DATABASE_HOST', value: 'b' },
        { op: 'replace', path: '/data/DATABASE_HOST', value: 'pg.us-west-2' },
        { op: 'remove', path: '/data/EXTRA' },
      ],
    });
    assert.deepEqual(jsonPatched.data, { DATABASE_HOST: 'pg.us-west-2' });
    const failedTest = await failure(
      k.core.patchNamespacedConfigMap({
        name: 'orders-db',
        namespace: 'shop',
        body: [{ op: 'test', path: '/data/DATABASE_HOST', value: 'b' }],
      }),
    );
    assert.equal(failedTest.code, 422);
    const stalePatch = await failure(
      k.core.patchNamespacedConfigMap(
        {
          name: 'orders-db',
          namespace: 'shop',
          body: { metadata: { resourceVersion: v1.metadata?.resourceVersion } },
        },
        mergePatch,
      ),
    );
    assert.equal(stalePatch.code, 409);

    const all = await k.core.listConfigMapForAllNamespaces();
    assert.deepEqual(
      all.items.map((c) => `${c.metadata?.namespace}/${c.metadata?.name}`),
      ['shop/orders-db'],
    );
    assert.match(all.metadata?.resourceVersion ?? '', /^\d+$/);

    await k.core.createNamespacedConfigMap({ namespace: 'shop', body: { metadata: { name: 'tmp' } } });
    const deleted = await k.core.deleteNamespacedConfigMap({ name: 'tmp', namespace: 'shop' });
    assert.equal(deleted.status, 'Success');
    assert.equal(
      (await failure(k.core.deleteNamespacedConfigMap({ name: 'tmp', namespace: 'shop' }))).code,
      404,
    );
    const absent = await failure(
      k.core.replaceNamespacedConfigMap({
        name: 'tmp',
        namespace: 'shop',
        body: { metadata: { name: 'tmp' } },
      }),
    );
    assert.equal(absent.code, 404);
  });

  void test('label and field selectors', async () => {
    await k.core.createNamespace({ body: { metadata: { name: 'sel' } } });
    const make = (name: string, labels: Record<string, string>) =>
      k.core.createNamespacedConfigMap({ namespace: 'sel', body: { metadata: { name, labels } } });
    await make('a', { tier: 'db', env: 'prod' });
    await make('b', { tier: 'web', env: 'prod' });
    await make('c', { tier: 'db' });
    const names = async (labelSelector?: string, fieldSelector?: string) =>
      (await k.core.listNamespacedConfigMap({ namespace: 'sel', labelSelector, fieldSelector })).items.map(
        (c) => c.metadata?.name,
      );
    assert.deepEqual(await names('tier=db'), ['a', 'c']);
    assert.deepEqual(await names('tier==db,env=prod'), ['a']);
    assert.deepEqual(await names('tier!=db'), ['b']);
    assert.deepEqual(await names('env'), ['a', 'b']);
    assert.deepEqual(await names('!env'), ['c']);
    assert.deepEqual(await names('tier in (web, db),env notin (prod)'), ['c']);
    assert.deepEqual(await names(undefined, 'metadata.name=b'), ['b']);
    assert.equal(
      (await failure(k.core.listNamespacedConfigMap({ namespace: 'sel', labelSelector: 'a=(' }))).code,
      400,
    );
    await k.core.deleteCollectionNamespacedConfigMap({ namespace: 'sel', labelSelector: 'tier=db' });
    assert.deepEqual(await names(), ['b']);
  });

  void test('secrets: stringData becomes base64 data', async () => {
    await k.core.createNamespacedSecret({
      namespace: 'shop',
      body: { metadata: { name: 'pg', labels: { app: 'orders' } }, stringData: { password: 's3cret' } },
    });
    const secret = await k.core.readNamespacedSecret({ name: 'pg', namespace: 'shop' });
    assert.equal(secret.type, 'Opaque');
    assert.deepEqual(secret.data, { password: Buffer.from('s3cret').toString('base64') });
    assert.equal(secret.stringData, undefined);
    const list = await k.core.listSecretForAllNamespaces({ labelSelector: 'app=orders' });
    assert.deepEqual(
      list.items.map((s) => s.metadata?.name),
      ['pg'],
    );
  });

  void test('services: cluster IP assigned and kept', async () => {
    const svc = await k.core.createNamespacedService({
      namespace: 'shop',
      body: {
        metadata: { name: 'orders-api' },
        spec: { selector: { app: 'orders-api' }, ports: [{ port: 80 }] },
      },
    });
    assert.match(svc.spec?.clusterIP ?? '', /^10\.96\.\d+\.\d+$/);
    assert.equal(svc.spec?.type, 'ClusterIP');
    assert.equal(svc.spec?.ports?.[0]?.protocol, 'TCP');
    const replaced = await k.core.replaceNamespacedService({
      name: 'orders-api',
      namespace: 'shop',
      body: {
        metadata: { name: 'orders-api' },
        spec: { selector: { app: 'orders-api-v2' }, ports: [{ port: 80 }] },
      },
    });
    assert.equal(replaced.spec?.clusterIP, svc.spec?.clusterIP);
    assert.equal(replaced.spec?.selector?.app, 'orders-api-v2');
    const all = await k.core.listServiceForAllNamespaces();
    assert.deepEqual(
      all.items.map((s) => s.metadata?.name),
      ['orders-api'],
    );
  });

  void test('deployments: generation, scale subresource, readiness follows replicas', async () => {
    const created = await k.apps.createNamespacedDeployment({
      namespace: 'shop',
      body: deployment('orders-api', 'shop', 2, { tier: 'web' }),
    });
    assert.equal(created.metadata?.generation, 1);
    assert.equal(created.status?.readyReplicas, undefined);
    const ready = await waitReady(k.apps, 'shop', 'orders-api', 2);
    assert.equal(ready.status?.observedGeneration, 1);
    assert.equal(ready.status?.conditions?.find((c) => c.type === 'Available')?.status, 'True');

    const scale = await k.apps.readNamespacedDeploymentScale({ name: 'orders-api', namespace: 'shop' });
    assert.equal(scale.kind, 'Scale');
    assert.equal(scale.apiVersion, 'autoscaling/v1');
    assert.deepEqual(
      [scale.spec?.replicas, scale.status?.replicas, scale.status?.selector],
      [2, 2, 'app=orders-api'],
    );

    // Scale to zero with a merge patch: the spec changes at once, the status follows.
    const patched = await k.apps.patchNamespacedDeploymentScale(
      { name: 'orders-api', namespace: 'shop', body: { spec: { replicas: 0 } } },
      mergePatch,
    );
    assert.equal(patched.spec?.replicas, 0);
    const right = await k.apps.readNamespacedDeployment({ name: 'orders-api', namespace: 'shop' });
    assert.equal(right.spec?.replicas, 0);
    assert.equal(right.metadata?.generation, 2);
    assert.equal(right.status?.readyReplicas, 2, 'status has not caught up yet');
    await waitReady(k.apps, 'shop', 'orders-api', 0);

    // Default JSON patch on the scale, then a PUT of the Scale.
    await k.apps.patchNamespacedDeploymentScale({
      name: 'orders-api',
      namespace: 'shop',
      body: [{ op: 'replace', path: '/spec/replicas', value: 3 }],
    });
    await waitReady(k.apps, 'shop', 'orders-api', 3);
    const current = await k.apps.readNamespacedDeploymentScale({ name: 'orders-api', namespace: 'shop' });
    const put = await k.apps.replaceNamespacedDeploymentScale({
      name: 'orders-api',
      namespace: 'shop',
      body: { ...current, spec: { replicas: 1 } },
    });
    assert.equal(put.spec?.replicas, 1);
    const staleScale = await failure(
      k.apps.replaceNamespacedDeploymentScale({
        name: 'orders-api',
        namespace: 'shop',
        body: { ...current, spec: { replicas: 4 } },
      }),
    );
    assert.equal(staleScale.code, 409);
    const done = await waitReady(k.apps, 'shop', 'orders-api', 1);
    assert.equal(done.metadata?.generation, done.status?.observedGeneration);

    // Strategic merge patch merges containers by name; a status in the body is ignored.
    const smp = await k.apps.patchNamespacedDeployment(
      {
        name: 'orders-api',
        namespace: 'shop',
        body: {
          spec: { template: { spec: { containers: [{ name: 'app', image: 'app:2' }] } } },
          status: { readyReplicas: 99 },
        },
      },
      strategicPatch,
    );
    assert.deepEqual(
      smp.spec?.template.spec?.containers.map((c) => [c.name, c.image]),
      [['app', 'app:2']],
    );
    assert.equal(smp.status?.readyReplicas, 1);

    const bad = await failure(
      k.apps.createNamespacedDeployment({
        namespace: 'shop',
        body: {
          ...deployment('broken', 'shop', 1),
          spec: { ...deployment('broken', 'shop', 1).spec!, selector: { matchLabels: { app: 'other' } } },
        },
      }),
    );
    assert.equal(bad.code, 422);

    await k.apps.createNamespacedDeployment({
      namespace: 'shop',
      body: deployment('worker', 'shop', 1, { tier: 'batch' }),
    });
    const web = await k.apps.listDeploymentForAllNamespaces({ labelSelector: 'tier=web' });
    assert.deepEqual(
      web.items.map((d) => d.metadata?.name),
      ['orders-api'],
    );
    const inShop = await k.apps.listNamespacedDeployment({ namespace: 'shop' });
    assert.deepEqual(
      inShop.items.map((d) => d.metadata?.name),
      ['orders-api', 'worker'],
    );
    await k.apps.deleteNamespacedDeployment({ name: 'worker', namespace: 'shop' });
    assert.equal(
      (await failure(k.apps.readNamespacedDeploymentScale({ name: 'worker', namespace: 'shop' }))).code,
      404,
    );
  });

  void test('the generic object client works through discovery', async () => {
    const client = KubernetesObjectApi.makeApiClient(k.kc);
    const cm = await client.read<V1ConfigMap>({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'orders-db', namespace: 'shop' },
    });
    assert.equal(cm.data?.DATABASE_HOST, 'pg.us-west-2');
    const list = await client.list('apps/v1', 'Deployment', 'shop');
    assert.deepEqual(
      list.items.map((d) => d.metadata?.name),
      ['orders-api'],
    );
  });

  void test('state survives a restart', async () => {
    const before = await k.apps.readNamespacedDeployment({ name: 'orders-api', namespace: 'shop' });
    const port = Number(new URL(k.url).port);
    await stop(k);
    const saved = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { version: number };
    assert.equal(saved.version, 1);
    k = await start(dir, stateFile, port);
    const after = await k.apps.readNamespacedDeployment({ name: 'orders-api', namespace: 'shop' });
    assert.deepEqual(after, before);
    const secret = await k.core.readNamespacedSecret({ name: 'pg', namespace: 'shop' });
    assert.equal(Buffer.from(secret.data?.password ?? '', 'base64').toString(), 's3cret');
    const next = await k.core.createNamespacedConfigMap({
      namespace: 'shop',
      body: { metadata: { name: 'after-restart' } },
    });
    assert.ok(Number(next.metadata?.resourceVersion) > Number(after.metadata?.resourceVersion));

    // A scale whose status had not caught up when the server stopped catches up after the restart.
    await k.apps.patchNamespacedDeploymentScale(
      { name: 'orders-api', namespace: 'shop', body: { spec: { replicas: 4 } } },
      mergePatch,
    );
    await stop(k);
    k = await start(dir, stateFile, port);
    assert.equal(
      (await k.apps.readNamespacedDeployment({ name: 'orders-api', namespace: 'shop' })).status
        ?.readyReplicas,
      1,
    );
    await waitReady(k.apps, 'shop', 'orders-api', 4);
  });
});

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

void describe('startKubernetesStandIns', () => {
  void test('starts both regions, seeds the example plan, is idempotent, keeps state across restarts', async () => {
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-k8s-stack-'));
    const layout = stackLayout(state);
    for (const region of STACK_REGIONS) {
      const port = await freePort();
      layout.kubernetes[region] = { ...layout.kubernetes[region], port, server: `http://127.0.0.1:${port}` };
    }
    const planText = fs.readFileSync(new URL('../../examples/lifeboat.yaml', import.meta.url), 'utf8');
    const result = validatePlan(parse(planText));
    assert.ok(result.ok, JSON.stringify(result));
    const plan = result.plan;
    const clients = (region: (typeof STACK_REGIONS)[number]) => {
      const kc = new KubeConfig();
      kc.loadFromFile(layout.kubernetes[region].kubeconfig);
      assert.equal(kc.getCurrentContext(), region);
      return { core: kc.makeApiClient(CoreV1Api), apps: kc.makeApiClient(AppsV1Api) };
    };
    try {
      await startKubernetesStandIns(layout, plan);
      assert.deepEqual(kubernetesStandInsRunning(layout), { 'us-east-1': true, 'us-west-2': true });
      for (const region of STACK_REGIONS) {
        assert.equal(fs.statSync(kubernetesTokenFile(layout, region)).mode & 0o777, 0o600);
        assert.equal(fs.statSync(layout.kubernetes[region].kubeconfig).mode & 0o777, 0o600);
      }
      const east = clients('us-east-1');
      const west = clients('us-west-2');
      assert.equal(
        (await east.apps.readNamespacedDeployment({ name: 'orders-api', namespace: 'shop' })).spec?.replicas,
        2,
      );
      assert.equal(
        (await west.apps.readNamespacedDeployment({ name: 'orders-api', namespace: 'shop' })).spec?.replicas,
        0,
      );
      const endpoint = await east.core.readNamespacedConfigMap({ name: 'orders-db', namespace: 'shop' });
      assert.deepEqual(endpoint.data, { DATABASE_HOST: '127.0.0.1' });
      assert.equal(
        (await failure(west.core.readNamespacedConfigMap({ name: 'orders-db', namespace: 'shop' }))).code,
        404,
      );
      await waitReady(east.apps, 'shop', 'orders-api', 2);

      // A "failover" changes the clusters; starting again reuses the processes and keeps the change.
      await east.apps.patchNamespacedDeploymentScale(
        { name: 'orders-api', namespace: 'shop', body: { spec: { replicas: 0 } } },
        mergePatch,
      );
      const pids = STACK_REGIONS.map((r) =>
        runningPid({ name: `kubernetes-${r}`, runDir: layout.runDir, logDir: layout.logDir }),
      );
      const token = fs.readFileSync(kubernetesTokenFile(layout, 'us-east-1'), 'utf8');
      await startKubernetesStandIns(layout, plan);
      assert.deepEqual(
        STACK_REGIONS.map((r) =>
          runningPid({ name: `kubernetes-${r}`, runDir: layout.runDir, logDir: layout.logDir }),
        ),
        pids,
      );
      assert.equal(fs.readFileSync(kubernetesTokenFile(layout, 'us-east-1'), 'utf8'), token);
      assert.equal(
        (await east.apps.readNamespacedDeployment({ name: 'orders-api', namespace: 'shop' })).spec?.replicas,
        0,
      );

      await stopKubernetesStandIns(layout);
      assert.deepEqual(kubernetesStandInsRunning(layout), { 'us-east-1': false, 'us-west-2': false });
      await startKubernetesStandIns(layout, plan);
      const again = clients('us-east-1');
      assert.equal(
        (await again.apps.readNamespacedDeployment({ name: 'orders-api', namespace: 'shop' })).spec?.replicas,
        0,
      );
      assert.equal(
        (await again.core.readNamespacedConfigMap({ name: 'orders-db', namespace: 'shop' })).data
          ?.DATABASE_HOST,
        '127.0.0.1',
      );
    } finally {
      await stopKubernetesStandIns(layout);
      fs.rmSync(state, { recursive: true, force: true });
    }
  });
});
