// Kubernetes objects in backups, the pure part: which resources a policy selects, what is stripped,
// that equal objects hash to equal bytes, deletions since a parent, and manifests with and without
// the export both validate, and snapshot indexes of both formats (v2 keyed names, v1 sha256) parse.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  canonicalJson,
  deletionsSince,
  kubernetesSelection,
  parseSnapshot,
  selectedResources,
  serializeSnapshot,
  SNAPSHOT_FORMAT,
  SNAPSHOT_FORMAT_V1,
  stripRuntimeFields,
  type KubernetesSnapshot,
  type SnapshotEntry,
} from '../../src/domain/kubernetes-snapshot.ts';
import { parseManifest } from '../../src/domain/manifest.ts';
import { validatePlan } from '../../src/domain/plan-validation.ts';
import { editedPlan } from '../support/plans.ts';

const hash = (c: string) => c.repeat(64);

describe('selectedResources', () => {
  const cases = [
    {
      name: 'nothing listed: every exportable resource',
      include: [],
      exclude: [],
      want: ['namespaces', 'configmaps', 'secrets', 'services', 'deployments'],
    },
    {
      name: 'include by plural, kind or group',
      include: ['ConfigMap', 'deployments.apps'],
      exclude: [],
      want: ['configmaps', 'deployments'],
    },
    {
      name: 'exclude wins over include',
      include: ['secrets', 'configmaps'],
      exclude: ['secret'],
      want: ['configmaps'],
    },
    {
      name: 'exclude alone',
      include: [],
      exclude: ['secrets', 'namespaces'],
      want: ['configmaps', 'services', 'deployments'],
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      assert.deepEqual(selectedResources({ includeResources: c.include, excludeResources: c.exclude }), {
        ok: true,
        resources: c.want,
      });
    });

  it('names every unknown resource with its path', () => {
    assert.deepEqual(selectedResources({ includeResources: ['pods'], excludeResources: ['x', 'secrets'] }), {
      ok: false,
      problems: [
        'includeResources.0: "pods" is not a resource Lifeboat exports (namespaces, configmaps, secrets, services, deployments)',
        'excludeResources.0: "x" is not a resource Lifeboat exports (namespaces, configmaps, secrets, services, deployments)',
      ],
    });
  });
});

describe('stripRuntimeFields and canonicalJson', () => {
  const live = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'web',
      namespace: 'shop',
      uid: 'a-uid',
      resourceVersion: '42',
      generation: 3,
      creationTimestamp: '2026-11-22T00:00:00Z',
      managedFields: [{ manager: 'kubectl' }],
      selfLink: '/api/v1/namespaces/shop/services/web',
      labels: { app: 'web' },
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', team: 'orders' },
    },
    spec: {
      clusterIP: '10.0.0.7',
      clusterIPs: ['10.0.0.7'],
      ports: [{ port: 80 }],
      selector: { app: 'web' },
    },
    status: { loadBalancer: {} },
  };

  it('keeps what was declared, drops what the cluster added', () => {
    assert.deepEqual(stripRuntimeFields('services', live), {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'shop', labels: { app: 'web' }, annotations: { team: 'orders' } },
      spec: { ports: [{ port: 80 }], selector: { app: 'web' } },
    });
  });

  it('gives the same bytes whatever the key order or the runtime fields', () => {
    const reordered = {
      status: { loadBalancer: { ingress: [] } },
      spec: { selector: { app: 'web' }, ports: [{ port: 80 }], clusterIP: '10.0.0.9' },
      metadata: { ...live.metadata, resourceVersion: '43', uid: 'other' },
      kind: 'Service',
      apiVersion: 'v1',
    };
    assert.equal(
      canonicalJson(stripRuntimeFields('services', reordered)),
      canonicalJson(stripRuntimeFields('services', live)),
    );
    assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: null }] }), '{"a":[{"c":null,"d":2}],"b":1}');
  });
});

describe('deletionsSince', () => {
  const e = (kind: string, name: string, c: string): SnapshotEntry => ({
    kind,
    namespace: 'shop',
    name,
    key: `clusters/us-east-1/objects/${c}${c}/${hash(c)}.json.zst.age`,
  });
  it('lists what the parent had and the current snapshot has not, by identity not hash', () => {
    const parent = [e('ConfigMap', 'a', '1'), e('ConfigMap', 'b', '2'), e('Secret', 'a', '3')];
    const current = [e('ConfigMap', 'a', '9'), e('Secret', 'a', '3')];
    assert.deepEqual(deletionsSince(parent, current), [e('ConfigMap', 'b', '2')]);
    assert.deepEqual(deletionsSince([], current), []);
  });
});

describe('snapshot index formats', () => {
  const base = {
    id: 'orders-full-20261122T000000Z',
    database: 'orders',
    cluster: 'us-east-1',
    createdAt: '2026-11-22T00:00:00.000Z',
    selection: { namespaces: ['shop'], resources: ['secrets'] },
    parent: null,
  };
  const key = (c: string) => `clusters/us-east-1/objects/${c}${c}/${hash(c)}.json.zst.age`;
  it('v2 records each object by its storage key, and round-trips', () => {
    const v2: KubernetesSnapshot = {
      ...base,
      format: SNAPSHOT_FORMAT,
      naming: 'hmac-sha256',
      objects: [{ kind: 'Secret', namespace: 'shop', name: 'db', key: key('a') }],
      deletions: [],
      newKeys: [key('a')],
    };
    assert.deepEqual(parseSnapshot(serializeSnapshot(v2)), { ok: true, snapshot: v2 });
  });
  it('a v1 index (plain sha256 per object) still parses, with the keys v1 stored the objects under', () => {
    const v1 = {
      ...base,
      format: SNAPSHOT_FORMAT_V1,
      objects: [{ kind: 'Secret', namespace: 'shop', name: 'db', sha256: hash('a') }],
      deletions: [{ kind: 'ConfigMap', namespace: 'shop', name: 'gone', sha256: hash('b') }],
      newHashes: [hash('a')],
    };
    assert.deepEqual(parseSnapshot(JSON.stringify(v1)), {
      ok: true,
      snapshot: {
        ...base,
        format: SNAPSHOT_FORMAT_V1,
        naming: 'sha256',
        objects: [{ kind: 'Secret', namespace: 'shop', name: 'db', key: key('a') }],
        deletions: [{ kind: 'ConfigMap', namespace: 'shop', name: 'gone', key: key('b') }],
        newKeys: [key('a')],
      },
    });
  });
  it('names what is wrong in either format', () => {
    assert.deepEqual(
      parseSnapshot(JSON.stringify({ ...base, format: SNAPSHOT_FORMAT_V1, objects: [{}] })).ok,
      false,
    );
    const bad = parseSnapshot(
      JSON.stringify({
        ...base,
        format: SNAPSHOT_FORMAT,
        naming: 'sha256',
        objects: [],
        deletions: [],
        newKeys: ['x'],
      }),
    );
    assert.equal(bad.ok, false);
    assert.ok(!bad.ok && bad.problems.some((p) => p.startsWith('naming:')), JSON.stringify(bad));
    assert.ok(!bad.ok && bad.problems.some((p) => p.startsWith('newKeys.0:')), JSON.stringify(bad));
  });
});

describe('kubernetesSelection', () => {
  it('is absent without a kubernetes section, and defaults the region to the primary', () => {
    const without = validatePlan(
      editedPlan((p) => {
        delete p.backup.policies[0].kubernetes;
      }),
    );
    assert.ok(without.ok);
    assert.equal(kubernetesSelection(without.plan, 'orders'), undefined);
    const withK8s = validatePlan(
      editedPlan((p) => {
        p.backup.policies[0].kubernetes = { namespaces: ['shop'], labelSelector: 'app=orders' };
      }),
    );
    assert.ok(withK8s.ok, JSON.stringify(withK8s));
    assert.deepEqual(kubernetesSelection(withK8s.plan, 'orders'), {
      region: 'us-east-1',
      namespaces: ['shop'],
      includeResources: [],
      excludeResources: [],
      labelSelector: 'app=orders',
    });
  });
});

describe('plan validation of the kubernetes selection', () => {
  it('names every resource Lifeboat cannot export, with its path', () => {
    const result = validatePlan(
      editedPlan((p) => {
        p.backup.policies[0].kubernetes = {
          namespaces: ['shop'],
          includeResources: ['configmaps', 'pods'],
          excludeResources: ['ingresses'],
        };
      }),
    );
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.deepEqual(result.problems.map((p) => p.path).sort(), [
      'backup.policies[0].kubernetes.excludeResources[0]',
      'backup.policies[0].kubernetes.includeResources[1]',
    ]);
    assert.match(result.problems[0]!.message, /not a resource Lifeboat exports \(namespaces, configmaps/);
  });
});

describe('manifest kubernetes field', () => {
  const old = {
    format: 'lifeboat-backup-manifest/v1',
    id: 'orders-full-20261122T163500Z',
    database: 'orders',
    kind: 'full',
    parent: null,
    plan: 'local',
    createdBy: { workflowId: 'backup-orders', runId: 'r' },
    postgres: {
      systemIdentifier: '1',
      version: '15.18',
      versionNum: 150018,
      timeline: 1,
      walSegmentSize: 16777216,
    },
    start: { lsn: '0/8000028', time: '2026-11-22T16:35:00.000Z' },
    stop: { lsn: '0/8000100', time: '2026-11-22T16:35:01.000Z' },
    sizes: { raw: 10, stored: 5 },
    objects: [{ key: 'k', role: 'base', format: 'tar+zstd+age', bytes: 5, sha256: hash('a') }],
    encryption: { format: 'age', recipients: ['age1x'] },
    compression: { format: 'zstd', level: 3 },
    label: 'l',
    timings: {
      startedAt: '2026-11-22T16:35:00.000Z',
      finishedAt: '2026-11-22T16:35:02.000Z',
      totalMs: 2000,
      checkpointMs: 1,
      streamMs: 1,
      verifyMs: 1,
      attempts: 1,
    },
    verification: { verified: true, at: '2026-11-22T16:35:02.000Z', method: 'checksums', detail: 'd' },
  };
  it('is optional: a manifest written before the export still validates', () => {
    assert.equal(parseManifest(JSON.stringify(old)).ok, true);
  });
  it('validates when present, and a damaged one is named', () => {
    const kubernetes = {
      cluster: 'us-east-1',
      snapshot: 'clusters/us-east-1/snapshots/x.json',
      snapshotSha256: hash('b'),
      parent: null,
      objects: 3,
      newObjects: 1,
      deletions: 0,
      storedBytes: 300,
    };
    assert.equal(parseManifest(JSON.stringify({ ...old, kubernetes })).ok, true);
    const bad = parseManifest(
      JSON.stringify({ ...old, kubernetes: { ...kubernetes, snapshotSha256: 'zz' } }),
    );
    assert.deepEqual(bad, { ok: false, problems: ['kubernetes.snapshotSha256: expected a hex sha256'] });
  });
});
