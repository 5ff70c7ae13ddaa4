// The second copy carries a backup's Kubernetes export too: on the stack's real S3 and its
// Kubernetes API stand-in, a real export (snapshot index + objects) is named by a backup manifest,
// and replicateBackup puts the index and every object it names at the secondary location; a later
// backup whose objects are unchanged copies its new index and finds the objects already there.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createKubernetesExportActivities } from '../../src/activities/kubernetes-export.ts';
import { createKubernetesCluster } from '../../src/activities/ports/kubernetes-cluster.ts';
import type { ObjectStore } from '../../src/activities/ports/object-store.ts';
import { createReplicateActivities } from '../../src/activities/replicate.ts';
import type { BaseBackupResult } from '../../src/domain/backup.ts';
import {
  kubernetesSelection,
  parseSnapshot,
  type KubernetesExportSummary,
} from '../../src/domain/kubernetes-snapshot.ts';
import { serializeManifest } from '../../src/domain/manifest.ts';
import { repository } from '../../src/domain/repository.ts';
import { baseBackupFixture, fullManifestFixture } from '../support/manifests.ts';
import { emptyStores, scratchStore } from '../support/scratch-stores.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';

describe('second copy of a backup with a Kubernetes export', () => {
  let stack: TestStack;
  let primary: ObjectStore;
  let secondary: ObjectStore;

  before(async () => {
    stack = await ensureStack();
    primary = scratchStore(stack, 'k8s-copy-primary');
    secondary = scratchStore(stack, 'k8s-copy-secondary');
  });

  after(() => emptyStores(primary, secondary));

  /** A full backup of `orders` whose base is a small stored object, with a real export. */
  async function backup(id: string, startTime: string) {
    const activities = createKubernetesExportActivities({
      plan: stack.plan,
      env: stack.secrets,
      stores: { primary },
      clusters: {
        'us-east-1': createKubernetesCluster(stack.layout.kubernetes['us-east-1'].kubeconfig),
      },
    });
    // The activity heartbeats: it runs in an activity context (Temporal's test harness for one).
    const exported: KubernetesExportSummary = await new MockActivityEnvironment().run(() =>
      activities.exportKubernetesObjects({
        database: 'orders',
        backupId: id,
        selection: kubernetesSelection(stack.plan, 'orders')!,
      }),
    );
    const body = Buffer.from(`base of ${id}`);
    const object = {
      key: repository.backupAttemptObject('', 'orders', id, 1, 'base.tar.zst.age'),
      bytes: body.length,
      sha256: createHash('sha256').update(body).digest('hex'),
    };
    await primary.put(object.key, body);
    const base: BaseBackupResult = baseBackupFixture({
      attempt: 1,
      object,
      startTime,
      stopTime: startTime,
      label: `lifeboat ${id}`,
    });
    const manifest = {
      ...fullManifestFixture({
        id,
        base,
        verification: {
          method: 'content',
          verifiedBytes: body.length,
          files: 1,
          walSegments: 1,
          detail: 'ok',
        },
        startedAt: new Date(startTime),
        verifiedAt: new Date(startTime),
        finishedAt: new Date(startTime),
        verifyMs: 1,
      }),
      kubernetes: exported,
    };
    await primary.put(repository.manifest('', 'orders', id), serializeManifest(manifest));
    const snapshot = parseSnapshot(Buffer.from(await primary.get(exported.snapshot)).toString('utf8'));
    assert.ok(snapshot.ok);
    return { exported, snapshot: snapshot.snapshot };
  }

  it('copies the snapshot index and every object it names; unchanged objects are found there, not copied again', async () => {
    const replicate = createReplicateActivities({ stores: { primary, secondary } });
    const first = await backup('orders-full-20261122T100000Z', '2026-11-22T10:00:00.000Z');
    assert.ok(first.snapshot.objects.length > 0, 'the stand-in has objects to export');
    assert.equal(first.exported.newObjects, first.snapshot.objects.length);
    const r1 = await replicate.replicateBackup({
      database: 'orders',
      backupId: 'orders-full-20261122T100000Z',
    });
    // base + objects + index + manifest, all copied now.
    assert.equal(r1.objects, first.snapshot.objects.length + 3);
    assert.equal(r1.copied, r1.objects);
    for (const key of [first.exported.snapshot, ...first.snapshot.objects.map((o) => o.key)])
      assert.deepEqual(Buffer.from(await secondary.get(key)), Buffer.from(await primary.get(key)), key);

    const second = await backup('orders-full-20261122T110000Z', '2026-11-22T11:00:00.000Z');
    assert.equal(second.exported.newObjects, 0);
    const r2 = await replicate.replicateBackup({
      database: 'orders',
      backupId: 'orders-full-20261122T110000Z',
    });
    assert.equal(r2.present, second.snapshot.objects.length);
    assert.equal(r2.copied, 3, 'base, index and manifest');
    assert.ok(await secondary.head(second.exported.snapshot));
  });
});
