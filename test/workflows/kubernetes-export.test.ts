// Kubernetes objects in backups, on the real local stack and its Kubernetes API stand-in: a full
// backup exports exactly the selected objects with runtime fields stripped, secrets stored
// encrypted (opened with stock `age -d | zstd -d`); a second full with no change uploads nothing;
// an incremental after one change and one deletion uploads one object and records the deletion;
// include/exclude and the label selector are honoured.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Client, Connection } from '@temporalio/client';
import type pg from 'pg';
import {
  createKubernetesExportActivities,
  type KubernetesExportInput,
} from '../../src/activities/kubernetes-export.ts';
import { createKubernetesCluster } from '../../src/activities/ports/kubernetes-cluster.ts';
import { createObjectStore, type ObjectStore } from '../../src/activities/ports/object-store.ts';
import type { FullBackupResult } from '../../src/domain/backup.ts';
import type { IncrementalBackupResult } from '../../src/domain/incremental.ts';
import {
  parseSnapshot,
  type KubernetesExportSummary,
  type KubernetesSnapshot,
} from '../../src/domain/kubernetes-snapshot.ts';
import { parseManifest } from '../../src/domain/manifest.ts';
import type { Plan } from '../../src/domain/plan.ts';
import { repository } from '../../src/domain/repository.ts';
import {
  connectPrimary,
  DB,
  releasePrimary,
  resetArchiver,
  terminateArchiver,
  writeArchivingPlan,
} from '../support/archiving.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';

const REGION = 'us-east-1';
const NS = `export-${Date.now().toString(36)}`;
const OTHER_NS = `${NS}-other`;
const SECRET_VALUE = `s3cr3t-${randomBytes(12).toString('hex')}`;
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

describe('kubernetes objects in backups', () => {
  let stack: TestStack;
  let worker: WorkerProcess;
  let connection: Connection;
  let client: Client;
  let store: ObjectStore;
  let plan: Plan;
  let planFile: string;
  let tmp: string;
  let admin: pg.Client;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  const cli = (args: string[]) => runCli([...args, '-f', planFile], stack.env);
  const snapshotOf = async (key: string): Promise<KubernetesSnapshot> => {
    const parsed = parseSnapshot(Buffer.from(await store.get(key)).toString('utf8'));
    assert.ok(parsed.ok, JSON.stringify(parsed));
    return parsed.snapshot;
  };
  const names = (s: KubernetesSnapshot) => s.objects.map((o) => `${o.kind} ${o.namespace ?? ''}/${o.name}`);
  let firstFull: FullBackupResult;
  let secondFull: FullBackupResult;

  before(async () => {
    stack = await ensureStack();
    connection = await Connection.connect({ address: stack.layout.temporal.address });
    client = new Client({ connection });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-k8s-export-'));
    ({ planFile, plan } = writeArchivingPlan(stack, tmp, {
      name: 'k8s-export',
      edit: (raw) => {
        raw.backup.policies[0].kubernetes = { namespaces: [NS] };
      },
    }));
    store = createObjectStore(plan.storage.primary, stack.env);

    const kc = new KubeConfig();
    kc.loadFromFile(stack.layout.kubernetes[REGION].kubeconfig);
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    for (const ns of [NS, OTHER_NS]) await core.createNamespace({ body: { metadata: { name: ns } } });
    const web = { tier: 'web' };
    await core.createNamespacedConfigMap({
      namespace: NS,
      body: {
        metadata: {
          name: 'app-config',
          labels: web,
          annotations: { [LAST_APPLIED]: '{"kind":"ConfigMap"}', 'team.example/owner': 'orders' },
        },
        data: { LOG_LEVEL: 'info' },
      },
    });
    await core.createNamespacedConfigMap({
      namespace: NS,
      body: { metadata: { name: 'feature-flags', labels: { tier: 'batch' } }, data: { NEW_CHECKOUT: 'off' } },
    });
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: 'db-credentials', labels: web }, stringData: { password: SECRET_VALUE } },
    });
    await core.createNamespacedService({
      namespace: NS,
      body: {
        metadata: { name: 'orders-svc', labels: web },
        spec: { selector: { app: 'api' }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    });
    await apps.createNamespacedDeployment({
      namespace: NS,
      body: {
        metadata: { name: 'api', labels: web },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'api' } },
          template: {
            metadata: { labels: { app: 'api' } },
            spec: { containers: [{ name: 'api', image: 'example.invalid/api:1' }] },
          },
        },
      },
    });
    await core.createNamespacedConfigMap({
      namespace: OTHER_NS,
      body: { metadata: { name: 'not-selected' }, data: { A: 'b' } },
    });

    admin = await connectPrimary(stack);
    await resetArchiver(client, admin);
    await admin.query('create table if not exists k8s_export_probe (id bigserial primary key, note text)');
    worker = await startWorker(REGION, stack.layout.secretsFile, planFile, {
      ...stack.env,
      LIFEBOAT_SPOOL: path.join(tmp, 'spool'),
    });
  });

  after(async () => {
    if (client) await terminateArchiver(client, 'test over');
    await worker?.stop('SIGTERM');
    await releasePrimary(admin, 'k8s_export_probe');
    for (const ns of [NS, OTHER_NS]) await core?.deleteNamespace({ name: ns }).catch(() => undefined);
    await connection?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a full backup exports exactly the selected objects, stripped, secrets encrypted', async () => {
    const run = await cli(['backup', 'full', '--database', DB, '--json']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    firstFull = JSON.parse(run.stdout) as FullBackupResult;
    const k = firstFull.kubernetes;
    assert.ok(k, 'the result names the export');
    assert.equal(k.cluster, REGION);
    assert.equal(k.snapshot, repository.clusterSnapshot('', REGION, firstFull.backupId));
    assert.equal(k.objects, 6);
    assert.equal(k.newObjects, 6);
    assert.equal(k.parent, null);

    const manifest = parseManifest(
      Buffer.from(await store.get(repository.manifest('', DB, firstFull.backupId))).toString('utf8'),
    );
    assert.ok(manifest.ok, JSON.stringify(manifest));
    assert.deepEqual(manifest.manifest.kubernetes, k);

    const snapshotBytes = Buffer.from(await store.get(k.snapshot));
    assert.equal(createHash('sha256').update(snapshotBytes).digest('hex'), k.snapshotSha256);
    const snapshot = await snapshotOf(k.snapshot);
    assert.deepEqual(names(snapshot), [
      `ConfigMap ${NS}/app-config`,
      `ConfigMap ${NS}/feature-flags`,
      `Deployment ${NS}/api`,
      `Namespace /${NS}`,
      `Secret ${NS}/db-credentials`,
      `Service ${NS}/orders-svc`,
    ]);
    assert.equal(snapshot.newKeys.length, 6);
    assert.ok(!snapshotBytes.toString().includes(SECRET_VALUE));

    const keyFile = path.join(tmp, 'age.key');
    fs.writeFileSync(keyFile, `${stack.secrets.LIFEBOAT_AGE_IDENTITY}\n`, { mode: 0o600 });
    const secretB64 = Buffer.from(SECRET_VALUE).toString('base64');
    for (const entry of snapshot.objects) {
      const stored = Buffer.from(await store.get(entry.key));
      assert.ok(
        !stored.includes(SECRET_VALUE) && !stored.includes(secretB64),
        `${entry.name} stored in clear`,
      );
      const sealed = path.join(tmp, path.basename(entry.key));
      fs.writeFileSync(sealed, stored);
      // The break-glass path: stock age and zstd open every stored object.
      const opened = execFileSync('sh', ['-c', `age -d -i '${keyFile}' '${sealed}' | zstd -d -q`]);
      // Named by a keyed hash (test/workflows/kubernetes-object-keys.test.ts), never the plain sha256.
      assert.ok(!entry.key.includes(createHash('sha256').update(opened).digest('hex')), entry.name);
      const obj = JSON.parse(opened.toString('utf8')) as {
        kind: string;
        metadata: Record<string, unknown> & { annotations?: Record<string, string> };
        status?: unknown;
        data?: Record<string, string>;
        spec?: { clusterIP?: string; template?: { metadata?: Record<string, unknown> } };
      };
      assert.equal(obj.kind, entry.kind);
      for (const field of [
        'uid',
        'resourceVersion',
        'generation',
        'creationTimestamp',
        'managedFields',
        'selfLink',
      ])
        assert.ok(!(field in obj.metadata), `${entry.name}: metadata.${field} kept`);
      assert.equal(obj.status, undefined, `${entry.name}: status kept`);
      assert.ok(!(obj.metadata.annotations && LAST_APPLIED in obj.metadata.annotations));
      if (entry.kind === 'Secret')
        assert.equal(Buffer.from(obj.data!.password!, 'base64').toString(), SECRET_VALUE);
      if (entry.name === 'app-config')
        assert.deepEqual(obj.metadata.annotations, { 'team.example/owner': 'orders' });
      if (entry.kind === 'Service') assert.equal(obj.spec?.clusterIP, undefined);
    }
  });

  it('a second full backup with no change uploads no object', async () => {
    const before = (await store.list(`clusters/${REGION}/objects/`)).length;
    const run = await cli(['backup', 'full', '--database', DB, '--json']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    secondFull = JSON.parse(run.stdout) as FullBackupResult;
    assert.equal(secondFull.kubernetes?.objects, 6);
    assert.equal(secondFull.kubernetes?.newObjects, 0);
    assert.equal(secondFull.kubernetes?.storedBytes, 0);
    assert.equal((await store.list(`clusters/${REGION}/objects/`)).length, before);
    assert.ok(firstFull.kubernetes && secondFull.kubernetes);
    const first = await snapshotOf(firstFull.kubernetes.snapshot);
    const second = await snapshotOf(secondFull.kubernetes.snapshot);
    assert.deepEqual(second.objects, first.objects);
  });

  it('an incremental after one change and one deletion uploads one object and records the deletion', async () => {
    const archiver = await cli(['archiver', 'start', '--database', DB]);
    assert.equal(archiver.code, 0, archiver.stderr);
    await admin.query(`insert into k8s_export_probe (note) values ('a change to seal')`);
    await core.replaceNamespacedConfigMap({
      namespace: NS,
      name: 'app-config',
      body: {
        metadata: { name: 'app-config', labels: { tier: 'web' } },
        data: { LOG_LEVEL: 'debug' },
      },
    });
    await core.deleteNamespacedConfigMap({ namespace: NS, name: 'feature-flags' });
    const before = (await store.list(`clusters/${REGION}/objects/`)).length;

    const run = await cli(['backup', 'incremental', '--database', DB, '--json']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const inc = JSON.parse(run.stdout) as IncrementalBackupResult;
    assert.equal(inc.outcome, 'completed');
    assert.equal(inc.parent, secondFull.backupId);
    const k = inc.kubernetes;
    assert.ok(k);
    assert.equal(k.parent, secondFull.backupId);
    assert.equal(k.objects, 5);
    assert.equal(k.newObjects, 1);
    assert.equal(k.deletions, 1);
    assert.equal((await store.list(`clusters/${REGION}/objects/`)).length, before + 1);

    const snapshot = await snapshotOf(k.snapshot);
    const parent = await snapshotOf(secondFull.kubernetes!.snapshot);
    assert.deepEqual(
      snapshot.deletions,
      parent.objects.filter((o) => o.name === 'feature-flags'),
    );
    const changed = snapshot.objects.find((o) => o.name === 'app-config')!;
    assert.deepEqual(snapshot.newKeys, [changed.key]);
    assert.notEqual(changed.key, parent.objects.find((o) => o.name === 'app-config')!.key);
    process.stderr.write(
      `# incremental ${inc.backupId}: ${inc.segments} WAL segment(s), kubernetes ${k.objects} objects, ${k.newObjects} new (${k.storedBytes} bytes), ${k.deletions} deletion(s)\n`,
    );
    const manifest = parseManifest(
      Buffer.from(await store.get(repository.manifest('', DB, inc.backupId))).toString('utf8'),
    );
    assert.ok(manifest.ok);
    assert.deepEqual(manifest.manifest.kubernetes, k);

    // The operator's view: lifeboat backups show-k8s reads the same snapshot from storage.
    const env = ['--env-file', stack.layout.secretsFile];
    const show = await cli(['backups', 'show-k8s', '--database', DB, '--backup', inc.backupId, ...env]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(
      show.stdout,
      new RegExp(`5 object\\(s\\), 1 stored by this backup, 1 deleted since ${secondFull.backupId}`),
    );
    assert.match(show.stdout, new RegExp(`deleted: ConfigMap ${NS}/feature-flags`));
    const json = await cli([
      'backups',
      'show-k8s',
      '--database',
      DB,
      '--backup',
      inc.backupId,
      '--json',
      ...env,
    ]);
    assert.deepEqual((JSON.parse(json.stdout) as { snapshot: KubernetesSnapshot }).snapshot, snapshot);
    const none = await cli([
      'backups',
      'show-k8s',
      '--database',
      DB,
      '--backup',
      'orders-full-19700101T000000Z',
      ...env,
    ]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--backup: no backup "orders-full-19700101T000000Z" of orders/);
  });

  it('honours includeResources, excludeResources and the label selector', async () => {
    const activities = createKubernetesExportActivities({
      plan,
      env: stack.env,
      stores: { primary: store },
      clusters: { [REGION]: createKubernetesCluster(stack.layout.kubernetes[REGION].kubeconfig) },
    });
    const env = new MockActivityEnvironment();
    const exported = async (id: string, selection: Record<string, unknown>) => {
      const run = (i: KubernetesExportInput): Promise<KubernetesExportSummary> =>
        activities.exportKubernetesObjects(i);
      const out: KubernetesExportSummary = await env.run(run, {
        database: DB,
        backupId: `selection-${id}`,
        selection: {
          region: REGION,
          namespaces: [NS],
          includeResources: [],
          excludeResources: [],
          ...selection,
        },
      });
      return names(await snapshotOf(out.snapshot));
    };
    assert.deepEqual(await exported('include', { includeResources: ['configmaps', 'Deployment'] }), [
      `ConfigMap ${NS}/app-config`,
      `Deployment ${NS}/api`,
    ]);
    assert.deepEqual(
      await exported('exclude', { excludeResources: ['secrets', 'namespaces', 'deployments.apps'] }),
      [`ConfigMap ${NS}/app-config`, `Service ${NS}/orders-svc`],
    );
    await core.createNamespacedConfigMap({
      namespace: NS,
      body: { metadata: { name: 'batch-config', labels: { tier: 'batch' } }, data: { X: 'y' } },
    });
    assert.deepEqual(
      await exported('labels', { labelSelector: 'tier=web', excludeResources: ['namespaces'] }),
      [
        `ConfigMap ${NS}/app-config`,
        `Deployment ${NS}/api`,
        `Secret ${NS}/db-credentials`,
        `Service ${NS}/orders-svc`,
      ],
    );
    await assert.rejects(
      exported('unknown', { includeResources: ['ingresses'] }),
      /includeResources\.0: "ingresses" is not a resource Lifeboat exports/,
    );
  });
});
