// The Kubernetes export of a backup, on the worker of the cluster's region. Each selected object is
// reduced to what was declared and stored once under a keyed hash of its canonical JSON
// (HMAC-SHA256, key derived from the repository's age identity: see kubernetes-object-names.ts),
// zstd + age like every other artifact (secrets included: nothing readable without the key). An
// object whose name is already stored is not uploaded again, so a backup's cost is what changed.
// The snapshot (which object is stored under which key, what the parent had that is gone) is
// written once per backup and named in the manifest.
import { createHash } from 'node:crypto';
import { heartbeat } from '@temporalio/activity';
import { LifeboatError } from '../domain/errors.ts';
import {
  canonicalJson,
  deletionsSince,
  EXPORTABLE_RESOURCES,
  parseSnapshot,
  selectedResources,
  serializeSnapshot,
  SNAPSHOT_FORMAT,
  sortEntries,
  stripRuntimeFields,
  type KubernetesExportSummary,
  type KubernetesSelection,
  type KubernetesSnapshot,
  type SnapshotEntry,
} from '../domain/kubernetes-snapshot.ts';
import type { Plan } from '../domain/plan.ts';
import { repository } from '../domain/repository.ts';
import { loadRecipients } from './backup.ts';
import { objectName, objectNamingKey } from './kubernetes-object-names.ts';
import type { Environment } from './ports/environment.ts';
import type { KubernetesCluster } from './ports/kubernetes-cluster.ts';
import type { ObjectStore } from './ports/object-store.ts';
import type { StorageLocationName } from './storage.ts';
import { sealWal } from './wal-seal.ts';

export interface KubernetesExportInput {
  database: string;
  backupId: string;
  selection: KubernetesSelection;
  /** The parent backup's snapshot key (from its manifest), for an incremental. */
  parent?: { backupId: string; snapshot: string };
}

export function createKubernetesExportActivities(deps: {
  plan: Plan;
  env: Environment;
  stores: Partial<Record<StorageLocationName, ObjectStore>>;
  clusters: Record<string, KubernetesCluster>;
}) {
  return {
    /** Stores the selected objects not stored yet and writes the backup's snapshot; idempotent. */
    async exportKubernetesObjects(input: KubernetesExportInput): Promise<KubernetesExportSummary> {
      const store = deps.stores.primary;
      if (!store) throw new LifeboatError('InvalidInput', 'the plan has no primary storage location');
      const { region } = input.selection;
      const cluster = deps.clusters[region];
      if (!cluster)
        throw new LifeboatError(
          'UnknownReference',
          `no kubernetes cluster for region ${region} in the plan: add regions.${region}.kubernetes or change the backup policy's kubernetes.region`,
        );
      const selected = selectedResources(input.selection);
      if (!selected.ok)
        throw new LifeboatError('InvalidInput', `backup policy kubernetes: ${selected.problems.join('; ')}`);
      const snapshotKey = repository.clusterSnapshot('', region, input.backupId);

      // A retry after the snapshot was written returns what that attempt wrote: written once.
      const existing = await store.head(snapshotKey);
      if (existing) {
        const text = Buffer.from(await store.get(snapshotKey));
        const parsed = parseSnapshot(text.toString('utf8'));
        if (!parsed.ok)
          throw new LifeboatError('IntegrityError', `${snapshotKey}: ${parsed.problems.join('; ')}`);
        return summary(parsed.snapshot, snapshotKey, text, 0);
      }

      const namingKey = objectNamingKey(deps.plan, deps.env, region);
      const objects = await kube(() => listSelected(cluster, selected.resources, input.selection));
      const recipients = loadRecipients(deps.plan);
      const entries: SnapshotEntry[] = [];
      const newKeys = new Set<string>();
      let storedBytes = 0;
      for (const o of objects) {
        const body = canonicalJson(o.declared);
        const key = repository.clusterObject('', region, objectName(namingKey, body));
        entries.push({
          kind: o.kind,
          ...(o.namespace ? { namespace: o.namespace } : {}),
          name: o.name,
          key,
        });
        if (newKeys.has(key)) continue;
        // Content-addressed: an existing key holds these very bytes, so it is never written again.
        if (await store.head(key)) continue;
        const sealed = await sealWal(Buffer.from(body, 'utf8'), recipients);
        await store.put(key, sealed);
        // Read back before the snapshot names it: a later backup trusts any object under this key.
        const back = Buffer.from(await store.get(key));
        if (!back.equals(sealed)) {
          await store.delete(key);
          throw new LifeboatError(
            'IntegrityError',
            `${key}: storage returned ${back.length} bytes that differ from the ${sealed.length} written; the object was deleted: check the storage location`,
          );
        }
        newKeys.add(key);
        storedBytes += sealed.length;
        heartbeat({ objects: entries.length, uploaded: newKeys.size });
      }

      let parentEntries: SnapshotEntry[] = [];
      if (input.parent) {
        const parsed = parseSnapshot(Buffer.from(await store.get(input.parent.snapshot)).toString('utf8'));
        if (!parsed.ok)
          throw new LifeboatError(
            'IntegrityError',
            `the parent snapshot ${input.parent.snapshot}: ${parsed.problems.join('; ')}`,
          );
        parentEntries = parsed.snapshot.objects;
      }
      const current = sortEntries(entries);
      const snapshot: KubernetesSnapshot = {
        format: SNAPSHOT_FORMAT,
        id: input.backupId,
        database: input.database,
        cluster: region,
        createdAt: new Date().toISOString(),
        selection: {
          namespaces: input.selection.namespaces,
          resources: selected.resources,
          ...(input.selection.labelSelector ? { labelSelector: input.selection.labelSelector } : {}),
        },
        naming: 'hmac-sha256',
        objects: current,
        parent: input.parent?.backupId ?? null,
        deletions: deletionsSince(parentEntries, current),
        newKeys: [...newKeys].sort(),
      };
      const text = Buffer.from(serializeSnapshot(snapshot), 'utf8');
      await store.put(snapshotKey, text);
      return summary(snapshot, snapshotKey, text, storedBytes);
    },
  };
}

function summary(
  snapshot: KubernetesSnapshot,
  key: string,
  text: Buffer,
  storedBytes: number,
): KubernetesExportSummary {
  return {
    cluster: snapshot.cluster,
    snapshot: key,
    snapshotSha256: createHash('sha256').update(text).digest('hex'),
    parent: snapshot.parent,
    objects: snapshot.objects.length,
    newObjects: snapshot.newKeys.length,
    deletions: snapshot.deletions.length,
    storedBytes,
  };
}

interface Listed {
  kind: string;
  namespace?: string;
  name: string;
  declared: unknown;
}

/** The selected namespaces themselves, then each selected namespaced kind in each of them. */
async function listSelected(
  cluster: KubernetesCluster,
  resources: (keyof typeof EXPORTABLE_RESOURCES)[],
  selection: KubernetesSelection,
): Promise<Listed[]> {
  const out: Listed[] = [];
  for (const namespace of selection.namespaces) {
    if (resources.includes('namespaces')) {
      const r = EXPORTABLE_RESOURCES.namespaces;
      const ns = await cluster.readClusterObject(r.apiVersion, r.kind, namespace);
      if (ns) out.push({ kind: r.kind, name: namespace, declared: stripRuntimeFields('namespaces', ns) });
    }
    for (const resource of resources) {
      const r = EXPORTABLE_RESOURCES[resource];
      if (!r.namespaced) continue;
      for (const o of await cluster.listObjects(r.apiVersion, r.kind, namespace, selection.labelSelector)) {
        const name = (o.metadata as { name?: string } | undefined)?.name ?? '';
        out.push({ kind: r.kind, namespace, name, declared: stripRuntimeFields(resource, o) });
      }
    }
  }
  return out;
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
