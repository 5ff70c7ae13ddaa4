// Retention over the whole repository on the real local stack, through the CLI: a plan whose
// secondary location is a bucket with S3 Object Lock on the stack's SeaweedFS, and whose backups
// export a namespace of the Kubernetes API stand-in. Three full backups (1 daily kept, no
// minAge): B1 names configmap `app` v1, B2 and B3 name v2; B2's base object is under an S3 legal
// hold on the secondary only; the primary has lost B3's manifest (only the secondary lists it);
// B1's copy on the secondary is unfinished (its objects there, no manifest).
// WAL stand-ins: a complete segment with two partials, a lone partial, and a segment complete on
// the primary only with a partial on both. Last, a legal-hold marker written to the secondary only.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, PutObjectLegalHoldCommand, type S3Client } from '@aws-sdk/client-s3';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import {
  createObjectStore,
  createS3Client,
  type ObjectStore,
} from '../../src/activities/ports/object-store.ts';
import { parseSnapshot, snapshotKeys } from '../../src/domain/kubernetes-snapshot.ts';
import { parseManifest, type BackupManifest } from '../../src/domain/manifest.ts';
import { repository } from '../../src/domain/repository.ts';
import type { RetentionResult } from '../../src/domain/retention.ts';
import type { LocationOutcome } from '../../src/domain/retention-repository.ts';
import { loadPlan } from '../../src/workers/plan-file.ts';
import { deleteLockedBucket } from '../support/lock-bucket.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';
import { tempDir } from '../support/temp-dir.ts';

const DB = 'orders';
const REGION = 'us-east-1';
const RUN = Date.now().toString(36);
const NS = `retention-${RUN}`;
const LOCK_BUCKET = `lifeboat-retention-lock-${RUN}`;
const seg = (n: string) => `000000010000FFFF000000${n}`;

describe('retention of the whole repository: both locations, Kubernetes objects, WAL partials', () => {
  let stack: TestStack;
  let worker: WorkerProcess;
  let primary: ObjectStore;
  let secondary: ObjectStore;
  let s3: S3Client;
  let core: CoreV1Api;
  let planFile: string;
  let folder: string;
  const ids: string[] = [];
  const manifests = new Map<string, BackupManifest>();
  // Object keys, read from the snapshot indexes before anything is deleted.
  let onlyB1: string[] = [];
  let keptByB3: string[] = [];
  const cli = (args: string[]) => runCli([...args, '-f', planFile], stack.env);
  const retention = async (expectCode: number, ...extra: string[]) => {
    const run = await cli(['retention', '--database', DB, '--json', ...extra]);
    assert.equal(run.code, expectCode, run.stdout + run.stderr);
    return JSON.parse(run.stdout) as RetentionResult;
  };
  const at = (r: RetentionResult, where: 'primary' | 'secondary'): LocationOutcome => {
    const o = r.locations?.find((l) => l.location === where);
    assert.ok(o, `no ${where} outcome in ${JSON.stringify(r.locations)}`);
    return o;
  };
  const has = async (store: ObjectStore, key: string) => (await store.head(key)) !== undefined;
  const wal = {
    complete: repository.walSegment('', DB, seg('FE')),
    partials: ['FE000100', 'FE800000'].map((lsn) => repository.walPartial('', DB, seg('FE'), `FFFF/${lsn}`)),
    lone: repository.walPartial('', DB, seg('FF'), 'FFFF/FF000200'),
    primaryOnlyComplete: repository.walSegment('', DB, seg('FD')),
    partialOfPrimaryOnly: repository.walPartial('', DB, seg('FD'), 'FFFF/FD000300'),
  };

  before(async () => {
    stack = await ensureStack();
    const tmp = tempDir('lifeboat-retention-repo-');
    const raw = parse(fs.readFileSync(stack.planFile, 'utf8')) as {
      storage: { primary: { url: string }; secondary?: unknown };
      backup: { policies: { database: string; retention?: unknown; kubernetes?: unknown }[] };
    };
    folder = `test-retention-repo-${RUN}`;
    raw.storage.primary.url = `s3://${stack.layout.s3.bucket}/${folder}`;
    raw.storage.secondary = { ...raw.storage.primary, url: `s3://${LOCK_BUCKET}/${folder}` };
    for (const p of raw.backup.policies)
      if (p.database === DB) {
        p.retention = { daily: 1, weekly: 0, monthly: 0, yearly: 0, minAge: '0s' };
        p.kubernetes = { namespaces: [NS], includeResources: ['configmaps'] };
      }
    planFile = path.join(tmp, 'lifeboat.yaml');
    fs.writeFileSync(planFile, stringify(raw));
    const plan = loadPlan(planFile);
    s3 = createS3Client(plan.storage.secondary!, stack.env);
    await s3.send(new CreateBucketCommand({ Bucket: LOCK_BUCKET, ObjectLockEnabledForBucket: true }));
    primary = createObjectStore(plan.storage.primary, stack.env);
    secondary = createObjectStore(plan.storage.secondary!, stack.env);

    const kc = new KubeConfig();
    kc.loadFromFile(stack.layout.kubernetes[REGION].kubeconfig);
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    const configMap = (name: string, data: Record<string, string>) => ({
      namespace: NS,
      name,
      body: { metadata: { name }, data },
    });
    await core.createNamespacedConfigMap(configMap('app', { VERSION: '1' }));
    await core.createNamespacedConfigMap(configMap('shared', { REGION }));

    worker = await startWorker(REGION, stack.layout.secretsFile, planFile, stack.env);
    for (let i = 0; i < 3; i++) {
      if (i === 1) await core.replaceNamespacedConfigMap(configMap('app', { VERSION: '2' }));
      const run = await cli(['backup', 'full', '--database', DB, '--json']);
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const id = (JSON.parse(run.stdout) as { backupId: string }).backupId;
      ids.push(id);
      const parsed = parseManifest(
        Buffer.from(await primary.get(repository.manifest('', DB, id))).toString('utf8'),
      );
      assert.ok(parsed.ok && parsed.manifest.kubernetes, JSON.stringify(parsed));
      manifests.set(id, parsed.manifest);
    }
    const [b1, b2, b3] = ids as [string, string, string];
    const indexKeys = async (id: string) => {
      const parsed = parseSnapshot(
        Buffer.from(await primary.get(manifests.get(id)!.kubernetes!.snapshot)).toString('utf8'),
      );
      assert.ok(parsed.ok, JSON.stringify(parsed));
      return snapshotKeys(parsed.snapshot);
    };
    const [k1, k2, k3] = [await indexKeys(b1), await indexKeys(b2), await indexKeys(b3)];
    onlyB1 = k1.filter((k) => !k2.includes(k) && !k3.includes(k));
    keptByB3 = k3;
    assert.equal(onlyB1.length, 1, 'B1 alone names configmap app v1');

    // B2 is under an S3 legal hold on the secondary only.
    await s3.send(
      new PutObjectLegalHoldCommand({
        Bucket: LOCK_BUCKET,
        Key: `${folder}/${manifests.get(b2)!.objects[0]!.key}`,
        LegalHold: { Status: 'ON' },
      }),
    );
    // The primary lost B3's manifest: only the secondary lists it.
    await primary.delete(repository.manifest('', DB, b3));
    // B1's copy to the secondary never got its manifest: objects there that no catalog lists.
    await secondary.delete(repository.manifest('', DB, b1));

    for (const store of [primary, secondary])
      for (const key of [wal.complete, ...wal.partials, wal.lone, wal.partialOfPrimaryOnly])
        await store.put(key, 'stand-in');
    await primary.put(wal.primaryOnlyComplete, 'stand-in');
  });

  after(async () => {
    await worker?.stop('SIGTERM');
    await core?.deleteNamespace({ name: NS }).catch(() => undefined);
    if (!s3) return;
    await deleteLockedBucket(s3, LOCK_BUCKET);
    s3.destroy();
  });

  it('dry run: says what would go at each location, from the union of both catalogs; deletes nothing', async () => {
    const [b1, b2, b3] = ids as [string, string, string];
    const r = await retention(0, '--dry-run', '--kubernetes-grace', '0s');
    assert.deepEqual(r.plan.deleted.map((d) => d.id).sort(), [b1, b2]);
    // B3 is kept though the primary no longer lists it: the secondary does.
    assert.deepEqual(
      r.plan.kept.map((k) => k.id),
      [b3],
    );
    assert.deepEqual(at(r, 'primary').expired, [b1, b2]);
    // B1 has no manifest on the secondary: only B2 is listed as going there.
    assert.deepEqual(at(r, 'secondary').expired, [b2]);
    const sweep = at(r, 'primary').kubernetes.find((k) => k.cluster === REGION);
    assert.ok(sweep, JSON.stringify(at(r, 'primary').kubernetes));
    assert.equal(sweep.snapshotsDeleted, 2);
    assert.equal(sweep.unreferenced, 1, 'configmap app v1, named by B1 only');
    assert.equal(sweep.deleted, 0);
    // Snapshot indexes are copied with their backups (the second copy): B2's would go there too.
    assert.deepEqual(
      at(r, 'secondary').kubernetes.map((k) => k.snapshotsDeleted),
      [1],
    );
    // Two partials of the complete segment, one of the segment complete on the primary only.
    assert.equal(at(r, 'primary').partials.superseded, 3);
    assert.equal(at(r, 'secondary').partials.superseded, 2);
    assert.ok(await has(secondary, manifests.get(b1)!.objects[0]!.key), 'B1 objects gone from the secondary');
    for (const id of [b1, b2])
      assert.ok(await has(primary, repository.manifest('', DB, id)), `${id} manifest gone from the primary`);
    assert.ok(await has(secondary, repository.manifest('', DB, b2)), 'B2 manifest gone from the secondary');
    assert.ok(await has(primary, onlyB1[0]!));
    assert.ok(await has(primary, wal.partials[0]!));

    const text = await cli(['retention', '--database', DB, '--dry-run']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(
      text.stdout,
      new RegExp(`secondary \\(s3://${LOCK_BUCKET}/${folder}\\): backups that would go: ${b2}`),
    );
  });

  it('real run: expired backups go from both locations, but B2 stays on the secondary under its legal hold, reported', async () => {
    const [b1, b2, b3] = ids as [string, string, string];
    const r = await retention(1);
    assert.deepEqual(r.deletedBackups, [b1]);
    assert.deepEqual(
      r.skippedBackups.map((s) => [s.id, s.locked.map((l) => [l.location, l.why])]),
      [[b2, [['secondary', 'S3 Object Lock legal hold']]]],
    );
    assert.deepEqual(at(r, 'primary').deleted.sort(), [b1, b2]);
    assert.deepEqual(at(r, 'secondary').deleted, []);
    // B1's unfinished copy: its objects on the secondary went too, though no manifest listed them.
    assert.deepEqual(at(r, 'secondary').incomplete, [b1]);
    for (const id of [b1, b2]) {
      assert.equal(
        await has(primary, repository.manifest('', DB, id)),
        false,
        `${id} manifest on the primary`,
      );
      assert.deepEqual(await primary.list(repository.backupFolder('', DB, id) + '/'), []);
      // Its snapshot index went with it.
      assert.equal(
        await has(primary, manifests.get(id)!.kubernetes!.snapshot),
        false,
        `${id} snapshot index`,
      );
    }
    assert.equal(await has(secondary, repository.manifest('', DB, b1)), false);
    assert.deepEqual(await secondary.list(repository.backupFolder('', DB, b1) + '/'), []);
    assert.equal(
      await has(secondary, manifests.get(b1)!.kubernetes!.snapshot),
      false,
      'B1 index on the secondary',
    );
    assert.ok(await has(secondary, repository.manifest('', DB, b2)), 'B2 manifest left on the secondary');
    assert.ok(await has(secondary, manifests.get(b2)!.objects[0]!.key), 'B2 base left on the secondary');
    // B3, listed by the secondary only, is untouched everywhere.
    assert.ok(await has(secondary, repository.manifest('', DB, b3)));
    assert.ok(await has(primary, manifests.get(b3)!.kubernetes!.snapshot));

    // The object only B1 named is unreferenced now, but younger than the default grace (1d): left.
    const sweep = at(r, 'primary').kubernetes.find((k) => k.cluster === REGION)!;
    assert.deepEqual([sweep.snapshotsDeleted, sweep.unreferenced, sweep.young, sweep.deleted], [2, 1, 1, 0]);
    assert.ok(await has(primary, onlyB1[0]!), 'a young unreferenced object was swept');

    // Partials: those of a complete segment go; the complete segment and a lone partial stay.
    for (const store of [primary, secondary]) {
      assert.ok(await has(store, wal.complete));
      for (const p of wal.partials) assert.equal(await has(store, p), false, `${p} still stored`);
      assert.ok(await has(store, wal.lone), 'a lone partial was pruned');
    }
    assert.equal(await has(primary, wal.partialOfPrimaryOnly), false);
    assert.ok(await has(primary, wal.primaryOnlyComplete));
    assert.ok(
      await has(secondary, wal.partialOfPrimaryOnly),
      'a partial was pruned on the secondary, where its complete segment is not stored',
    );
    assert.deepEqual([at(r, 'primary').partials.deleted, at(r, 'secondary').partials.deleted], [3, 2]);
  });

  it('with the grace age passed: the object no kept snapshot names goes, every object B3 names stays', async () => {
    const [, b2] = ids as [string, string, string];
    const r = await retention(1, '--kubernetes-grace', '0s');
    // B2 is still expired and still held on the secondary: reported again, still there.
    assert.deepEqual(
      r.skippedBackups.map((s) => s.id),
      [b2],
    );
    const sweep = at(r, 'primary').kubernetes.find((k) => k.cluster === REGION)!;
    assert.deepEqual([sweep.unreferenced, sweep.young, sweep.deleted], [1, 0, 1]);
    assert.equal(await has(primary, onlyB1[0]!), false, 'the object only B1 named is still stored');
    for (const key of keptByB3) assert.ok(await has(primary, key), `${key}, named by B3, was swept`);
    assert.deepEqual(sweep.problems, []);
  });
  it('a legal-hold marker only the secondary has still holds (the union of both locations\u2019 markers)', async () => {
    const [, b2] = ids as [string, string, string];
    const when = new Date();
    const marker = { backupId: b2, action: 'hold', at: when.toISOString(), by: 'tester', reason: 'LEGAL-9' };
    await secondary.put(repository.legalHoldEvent('', DB, b2, when, 'hold'), JSON.stringify(marker));
    const r = await retention(0, '--dry-run');
    const kept = r.plan.kept.find((k) => k.id === b2);
    assert.ok(kept, JSON.stringify(r.plan));
    assert.match(kept.rules.map((x) => x.detail).join('; '), /legal hold by tester at .*: LEGAL-9/);
    assert.deepEqual(at(r, 'secondary').expired, []);
  });

  it('the snapshot index of a backup that never got a manifest keeps its objects only within the grace age', async () => {
    const [, , b3] = ids as [string, string, string];
    // A backup that failed after its export: its index is stored, its manifest never was.
    const failedId = `${DB}-full-20260101T000000Z`;
    const orphanObject = `clusters/${REGION}/objects/0f/${'0f'.repeat(32)}.json.zst.age`;
    const index = JSON.parse(
      Buffer.from(await primary.get(manifests.get(b3)!.kubernetes!.snapshot)).toString('utf8'),
    ) as { id: string; objects: { key: string }[]; deletions: unknown[]; newKeys: string[] };
    index.id = failedId;
    index.objects = index.objects.slice(0, 1).map((o) => ({ ...o, key: orphanObject }));
    index.deletions = [];
    index.newKeys = [orphanObject];
    const orphanIndex = repository.clusterSnapshot('', REGION, failedId);
    await primary.put(orphanIndex, JSON.stringify(index));
    await primary.put(orphanObject, 'stand-in');
    const sweepOf = (r: RetentionResult) => at(r, 'primary').kubernetes.find((k) => k.cluster === REGION)!;

    // Younger than the grace age (1d by default): it may be a backup still running; it holds.
    const young = sweepOf(await retention(0));
    assert.equal(young.orphanSnapshots, undefined);
    assert.ok(await has(primary, orphanIndex));
    assert.ok(await has(primary, orphanObject), 'an object a young index names was swept');

    const dry = sweepOf(await retention(0, '--dry-run', '--kubernetes-grace', '0s'));
    assert.deepEqual(dry.orphanSnapshots, [orphanIndex]);
    assert.deepEqual([dry.unreferenced, dry.deleted], [1, 0]);
    assert.ok(await has(primary, orphanIndex), 'a dry run deleted the orphan index');
    const text = await cli(['retention', '--database', DB, '--dry-run', '--kubernetes-grace', '0s']);
    assert.match(
      text.stdout,
      new RegExp(`1 snapshot index\\(es\\) of backups that never got a manifest would go .*${failedId}`),
    );

    const real = sweepOf(await retention(0, '--kubernetes-grace', '0s'));
    assert.deepEqual(real.orphanSnapshots, [orphanIndex]);
    assert.deepEqual([real.unreferenced, real.deleted], [1, 1]);
    assert.equal(await has(primary, orphanIndex), false, 'the orphan index is still stored');
    assert.equal(await has(primary, orphanObject), false, 'the object only the orphan named is still stored');
    for (const key of keptByB3) assert.ok(await has(primary, key), `${key}, named by B3, was swept`);
    assert.ok(
      await has(primary, manifests.get(b3)!.kubernetes!.snapshot),
      "B3's index (manifest on the secondary only) went",
    );
  });
});
