// Kubernetes object keys do not reveal Secret contents, on the real local stack and its Kubernetes
// API stand-in: a Secret with a low-entropy password is stored under a keyed hash, not the sha256
// of its canonical JSON nor of its data (so listing the bucket confirms no guess); the same content
// in two backups is stored once; `backups show-k8s` and the break-glass path (stock age and zstd
// on the key the snapshot records) read it; and a snapshot in the old (v1, plain sha256) format
// still shows, opens, and serves as an incremental's parent.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { MockActivityEnvironment } from '@temporalio/testing';
import { parse, stringify } from 'yaml';
import { loadRecipients } from '../../src/activities/backup.ts';
import {
  createKubernetesExportActivities,
  type KubernetesExportInput,
} from '../../src/activities/kubernetes-export.ts';
import { objectName, objectNamingKey } from '../../src/activities/kubernetes-object-names.ts';
import { sealWal } from '../../src/activities/wal-seal.ts';
import { createKubernetesCluster } from '../../src/activities/ports/kubernetes-cluster.ts';
import { createObjectStore, type ObjectStore } from '../../src/activities/ports/object-store.ts';
import type { FullBackupResult } from '../../src/domain/backup.ts';
import {
  canonicalJson,
  parseSnapshot,
  SNAPSHOT_FORMAT_V1,
  stripRuntimeFields,
  type KubernetesExportSummary,
  type KubernetesSnapshot,
} from '../../src/domain/kubernetes-snapshot.ts';
import { parseManifest, serializeManifest } from '../../src/domain/manifest.ts';
import type { Plan } from '../../src/domain/plan.ts';
import { repository } from '../../src/domain/repository.ts';
import { loadPlan } from '../../src/workers/plan-file.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';

const DB = 'orders';
const REGION = 'us-east-1';
const NS = `keys-${Date.now().toString(36)}`;
/** Low entropy on purpose: the guess an attacker would try first. */
const PASSWORD = 'hunter2';
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const digestOf = (key: string) => /([0-9a-f]{64})\.json\.zst\.age$/.exec(key)![1]!;

describe('kubernetes object keys do not reveal secret contents', () => {
  let stack: TestStack;
  let worker: WorkerProcess;
  let store: ObjectStore;
  let plan: Plan;
  let planFile: string;
  let tmp: string;
  let keyFile: string;
  let core: CoreV1Api;
  let first: FullBackupResult;
  let second: FullBackupResult;
  const cli = (args: string[]) => runCli([...args, '-f', planFile], stack.env);
  const env = () => ['--env-file', stack.layout.secretsFile];
  const snapshotOf = async (key: string): Promise<KubernetesSnapshot> => {
    const parsed = parseSnapshot(Buffer.from(await store.get(key)).toString('utf8'));
    assert.ok(parsed.ok, JSON.stringify(parsed));
    return parsed.snapshot;
  };
  /** The break-glass path: the object under the recorded key, opened with stock age and zstd. */
  const open = async (key: string): Promise<Buffer> => {
    const sealed = path.join(tmp, path.basename(key));
    fs.writeFileSync(sealed, Buffer.from(await store.get(key)));
    return execFileSync('sh', ['-c', `age -d -i '${keyFile}' '${sealed}' | zstd -d -q`]);
  };
  const objectKeys = async () => (await store.list(`clusters/${REGION}/objects/`)).map((o) => o.key);
  const fullBackup = async (): Promise<FullBackupResult> => {
    const run = await cli(['backup', 'full', '--database', DB, '--json']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    return JSON.parse(run.stdout) as FullBackupResult;
  };

  before(async () => {
    stack = await ensureStack();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-k8s-keys-'));
    keyFile = path.join(tmp, 'age.key');
    fs.writeFileSync(keyFile, `${stack.secrets.LIFEBOAT_AGE_IDENTITY}\n`, { mode: 0o600 });
    const raw = parse(fs.readFileSync(stack.planFile, 'utf8')) as {
      storage: { primary: { url: string } };
      backup: { policies: { kubernetes?: unknown }[] };
    };
    raw.storage.primary.url = `s3://${stack.layout.s3.bucket}/test-k8s-keys-${Date.now()}`;
    raw.backup.policies[0]!.kubernetes = { namespaces: [NS], includeResources: ['secrets', 'configmaps'] };
    planFile = path.join(tmp, 'lifeboat.yaml');
    fs.writeFileSync(planFile, stringify(raw));
    plan = loadPlan(planFile);
    store = createObjectStore(plan.storage.primary, stack.env);

    const kc = new KubeConfig();
    kc.loadFromFile(stack.layout.kubernetes[REGION].kubeconfig);
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: 'db-password' }, stringData: { password: PASSWORD } },
    });
    await core.createNamespacedConfigMap({
      namespace: NS,
      body: { metadata: { name: 'app-config' }, data: { LOG_LEVEL: 'info' } },
    });
    worker = await startWorker(REGION, stack.layout.secretsFile, planFile, {
      ...stack.env,
      LIFEBOAT_SPOOL: path.join(tmp, 'spool'),
    });
    first = await fullBackup();
  });

  after(async () => {
    await worker?.stop('SIGTERM');
    await core?.deleteNamespace({ name: NS }).catch(() => undefined);
    if (store) for (const o of await store.list('')) await store.delete(o.key).catch(() => undefined);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("a Secret's object key is neither the sha256 of its canonical JSON nor of its data", async () => {
    const snapshot = await snapshotOf(first.kubernetes!.snapshot);
    assert.equal(snapshot.naming, 'hmac-sha256');
    const entry = snapshot.objects.find((o) => o.kind === 'Secret')!;
    assert.ok(entry, JSON.stringify(snapshot.objects));
    // The object as the cluster serves it, reduced the way the export reduces it.
    const live = await core.readNamespacedSecret({ namespace: NS, name: 'db-password' });
    const body = canonicalJson(stripRuntimeFields('secrets', live as unknown as Record<string, unknown>));
    const opened = await open(entry.key);
    assert.equal(opened.toString('utf8'), body, 'the stored object is the canonical JSON');
    assert.equal(JSON.parse(body).data.password, Buffer.from(PASSWORD).toString('base64'));

    const guesses = [
      sha256(body),
      sha256(PASSWORD),
      sha256(Buffer.from(PASSWORD).toString('base64')),
      sha256(canonicalJson({ password: Buffer.from(PASSWORD).toString('base64') })),
      sha256(canonicalJson({ password: PASSWORD })),
    ];
    const listed = await objectKeys();
    assert.ok(listed.includes(entry.key), 'the recorded key is the stored object');
    for (const g of guesses) {
      assert.ok(!listed.some((k) => k.includes(g)), `a listed key contains the guess ${g}`);
      assert.ok(!fs.readFileSync(path.join(tmp, path.basename(entry.key))).includes(g));
    }
    const snapshotText = Buffer.from(await store.get(first.kubernetes!.snapshot)).toString('utf8');
    for (const g of guesses) assert.ok(!snapshotText.includes(g), `the plain snapshot contains ${g}`);

    // Keyed: the name is the HMAC under the key derived from the repository's identity, and the
    // same content under another identity's key gets another name.
    assert.equal(digestOf(entry.key), objectName(objectNamingKey(plan, stack.env, REGION), body));
    const otherIdentity = execFileSync('age-keygen', { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .split('\n')
      .find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
    const otherRecipient = execFileSync('age-keygen', ['-y'], { input: otherIdentity }).toString().trim();
    const otherPlan: Plan = {
      ...plan,
      storage: {
        ...plan.storage,
        encryption: { recipients: [otherRecipient], identityEnv: plan.storage.encryption.identityEnv },
      },
    };
    const otherKey = objectNamingKey(
      otherPlan,
      { [plan.storage.encryption.identityEnv]: otherIdentity },
      REGION,
    );
    assert.notEqual(objectName(otherKey, body), digestOf(entry.key));
  });

  it('the same content in two backups is stored once', async () => {
    const before = await objectKeys();
    second = await fullBackup();
    assert.equal(second.kubernetes?.objects, 2);
    assert.equal(second.kubernetes?.newObjects, 0);
    assert.equal(second.kubernetes?.storedBytes, 0);
    assert.deepEqual((await objectKeys()).sort(), before.sort());
    const a = await snapshotOf(first.kubernetes!.snapshot);
    const b = await snapshotOf(second.kubernetes.snapshot);
    assert.deepEqual(b.objects, a.objects);
  });

  it('backups show-k8s reads the snapshot; the recorded key opens to the Secret', async () => {
    const show = await cli(['backups', 'show-k8s', '--database', DB, '--backup', second.backupId, ...env()]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /2 object\(s\), 0 stored by this backup/);
    assert.match(show.stdout, new RegExp(`Secret +${NS} +db-password +[0-9a-f]{12}`));
    const json = await cli([
      'backups',
      'show-k8s',
      '--database',
      DB,
      '--backup',
      second.backupId,
      '--json',
      ...env(),
    ]);
    assert.equal(json.code, 0, json.stderr);
    const shown = (JSON.parse(json.stdout) as { snapshot: KubernetesSnapshot }).snapshot;
    assert.deepEqual(shown, await snapshotOf(second.kubernetes!.snapshot));
    const secret = shown.objects.find((o) => o.kind === 'Secret')!;
    const obj = JSON.parse((await open(secret.key)).toString('utf8')) as { data: { password: string } };
    assert.equal(Buffer.from(obj.data.password, 'base64').toString(), PASSWORD);
  });

  it('an old (v1, plain sha256) snapshot still shows, opens, and is an incremental parent', async () => {
    // What the previous version wrote: objects under the sha256 of their JSON, a v1 snapshot, and
    // a manifest naming it (a copy of the first backup's, under an older id).
    const current = await snapshotOf(first.kubernetes!.snapshot);
    const recipients = loadRecipients(plan);
    const v1Objects = [];
    for (const o of current.objects) {
      const body = await open(o.key);
      const hash = sha256(body);
      await store.put(repository.clusterObject('', REGION, hash), await sealWal(body, recipients));
      v1Objects.push({
        kind: o.kind,
        ...(o.namespace ? { namespace: o.namespace } : {}),
        name: o.name,
        sha256: hash,
      });
    }
    const goneBody = canonicalJson({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'gone', namespace: NS },
    });
    const gone = { kind: 'ConfigMap', namespace: NS, name: 'gone', sha256: sha256(goneBody) };
    await store.put(
      repository.clusterObject('', REGION, gone.sha256),
      await sealWal(Buffer.from(goneBody), recipients),
    );
    const oldId = `${DB}-full-20260101T000000Z`;
    const oldSnapshotKey = repository.clusterSnapshot('', REGION, oldId);
    const v1 = {
      format: SNAPSHOT_FORMAT_V1,
      id: oldId,
      database: DB,
      cluster: REGION,
      createdAt: '2026-01-01T00:00:00.000Z',
      selection: current.selection,
      objects: [...v1Objects, gone].sort((x, y) =>
        `${x.kind}/${x.name}`.localeCompare(`${y.kind}/${y.name}`),
      ),
      parent: null,
      deletions: [],
      newHashes: [...v1Objects, gone].map((o) => o.sha256).sort(),
    };
    const v1Text = `${JSON.stringify(v1, null, 2)}\n`;
    await store.put(oldSnapshotKey, v1Text);
    const manifest = parseManifest(
      Buffer.from(await store.get(repository.manifest('', DB, first.backupId))).toString('utf8'),
    );
    assert.ok(manifest.ok);
    await store.put(
      repository.manifest('', DB, oldId),
      serializeManifest({
        ...manifest.manifest,
        id: oldId,
        kubernetes: {
          ...manifest.manifest.kubernetes!,
          snapshot: oldSnapshotKey,
          snapshotSha256: sha256(v1Text),
          objects: v1.objects.length,
          newObjects: v1.newHashes.length,
        },
      }),
    );

    const json = await cli(['backups', 'show-k8s', '--database', DB, '--backup', oldId, '--json', ...env()]);
    assert.equal(json.code, 0, json.stderr);
    const shown = (JSON.parse(json.stdout) as { snapshot: KubernetesSnapshot }).snapshot;
    assert.equal(shown.naming, 'sha256');
    assert.equal(shown.objects.length, 3);
    const secret = shown.objects.find((o) => o.kind === 'Secret')!;
    assert.equal(
      secret.key,
      repository.clusterObject('', REGION, v1Objects.find((o) => o.kind === 'Secret')!.sha256),
    );
    const obj = JSON.parse((await open(secret.key)).toString('utf8')) as { data: { password: string } };
    assert.equal(Buffer.from(obj.data.password, 'base64').toString(), PASSWORD);
    const text = await cli(['backups', 'show-k8s', '--database', DB, '--backup', oldId, ...env()]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /3 object\(s\), 3 stored by this backup/);

    // An export whose parent snapshot is v1: the deletion is recorded under the parent's key.
    const activities = createKubernetesExportActivities({
      plan,
      env: stack.env,
      stores: { primary: store },
      clusters: { [REGION]: createKubernetesCluster(stack.layout.kubernetes[REGION].kubeconfig) },
    });
    const run = (i: KubernetesExportInput): Promise<KubernetesExportSummary> =>
      activities.exportKubernetesObjects(i);
    const out: KubernetesExportSummary = await new MockActivityEnvironment().run(run, {
      database: DB,
      backupId: `${DB}-incremental-20260101T010000Z`,
      selection: {
        region: REGION,
        namespaces: [NS],
        includeResources: ['secrets', 'configmaps'],
        excludeResources: [],
      },
      parent: { backupId: oldId, snapshot: oldSnapshotKey },
    });
    const child = await snapshotOf(out.snapshot);
    assert.equal(child.parent, oldId);
    assert.deepEqual(child.deletions, [
      {
        kind: 'ConfigMap',
        namespace: NS,
        name: 'gone',
        key: repository.clusterObject('', REGION, gone.sha256),
      },
    ]);
    assert.deepEqual(child.objects, current.objects, 'the current objects keep their keyed names');
  });
});
