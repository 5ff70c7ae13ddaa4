// Kubernetes objects in backups: which resources a backup policy selects, how an object is reduced
// to what an operator declared (runtime fields stripped, keys in a stable order, so the same
// object always hashes the same), and the snapshot index written once per backup. Pure: the
// workflows use it to decide, the export activity to hash and store.
import { z } from 'zod';
import type { Plan } from './plan.ts';
import { repository } from './repository.ts';

/** v2 names objects by a keyed hash and records each one's storage key. */
export const SNAPSHOT_FORMAT = 'lifeboat-kubernetes-snapshot/v2';
/** Written before v2: objects named by the plain sha256 of their canonical JSON. Still read. */
export const SNAPSHOT_FORMAT_V1 = 'lifeboat-kubernetes-snapshot/v1';
/** How a snapshot's objects are named: v2 writes only `hmac-sha256`; `sha256` is a v1 snapshot read. */
export type ObjectNaming = 'hmac-sha256' | 'sha256';

/** The kinds Lifeboat exports, by their plural resource name (what includeResources names). */
export const EXPORTABLE_RESOURCES = {
  namespaces: { apiVersion: 'v1', kind: 'Namespace', namespaced: false },
  configmaps: { apiVersion: 'v1', kind: 'ConfigMap', namespaced: true },
  secrets: { apiVersion: 'v1', kind: 'Secret', namespaced: true },
  services: { apiVersion: 'v1', kind: 'Service', namespaced: true },
  deployments: { apiVersion: 'apps/v1', kind: 'Deployment', namespaced: true },
} as const;
export type ExportableResource = keyof typeof EXPORTABLE_RESOURCES;

export interface KubernetesSelection {
  /** The region whose cluster is exported (the policy's, else the database's primary region). */
  region: string;
  namespaces: string[];
  includeResources: string[];
  excludeResources: string[];
  labelSelector?: string;
}

/** The policy's Kubernetes selection for a database, or undefined when its policies ask for none. */
export function kubernetesSelection(plan: Plan, database: string): KubernetesSelection | undefined {
  const policy = plan.backup.policies.find((p) => p.database === database && p.kubernetes);
  const k = policy?.kubernetes;
  const db = plan.databases[database];
  if (!k || !db || k.namespaces.length === 0) return undefined;
  return {
    region: k.region ?? db.primaryRegion,
    namespaces: [...k.namespaces],
    includeResources: [...k.includeResources],
    excludeResources: [...k.excludeResources],
    ...(k.labelSelector ? { labelSelector: k.labelSelector } : {}),
  };
}

/** `configmaps`, `ConfigMap`, `configmap` and `deployments.apps` all name one resource. */
function resourceOf(name: string): ExportableResource | undefined {
  const n = name.toLowerCase().replace(/\.apps$/, '');
  for (const [plural, r] of Object.entries(EXPORTABLE_RESOURCES))
    if (n === plural || n === r.kind.toLowerCase()) return plural as ExportableResource;
  return undefined;
}

/** Whether Lifeboat can export the resource a policy names (the plan schema checks it). */
export function isExportableResource(name: string): boolean {
  return resourceOf(name) !== undefined;
}

/** The resources to export: included (all exportable when none listed) minus excluded, or the unknown names. */
export function selectedResources(
  selection: Pick<KubernetesSelection, 'includeResources' | 'excludeResources'>,
): { ok: true; resources: ExportableResource[] } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  const resolve = (names: string[], field: string) =>
    names.flatMap((name, i) => {
      const r = resourceOf(name);
      if (!r)
        problems.push(
          `${field}.${i}: "${name}" is not a resource Lifeboat exports (${Object.keys(EXPORTABLE_RESOURCES).join(', ')})`,
        );
      return r ? [r] : [];
    });
  const include = resolve(selection.includeResources, 'includeResources');
  const exclude = new Set(resolve(selection.excludeResources, 'excludeResources'));
  if (problems.length) return { ok: false, problems };
  const base = include.length ? include : (Object.keys(EXPORTABLE_RESOURCES) as ExportableResource[]);
  return { ok: true, resources: [...new Set(base)].filter((r) => !exclude.has(r)) };
}

/** Annotations the cluster or kubectl writes, not the operator: they change without a real change. */
const RUNTIME_ANNOTATIONS = [
  'kubectl.kubernetes.io/last-applied-configuration',
  'deployment.kubernetes.io/revision',
];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/**
 * What the operator declared: kind, apiVersion, name, namespace, labels, annotations and the body,
 * without what the cluster adds at run time (uid, resourceVersion, generation, creationTimestamp,
 * managedFields, selfLink, status, a service's allocated cluster IPs, kubectl's last-applied copy).
 */
export function stripRuntimeFields(resource: ExportableResource, obj: Record<string, unknown>): Json {
  const r = EXPORTABLE_RESOURCES[resource];
  const meta = (obj.metadata ?? {}) as Record<string, unknown>;
  const annotations = Object.fromEntries(
    Object.entries((meta.annotations ?? {}) as Record<string, string>).filter(
      ([k]) => !RUNTIME_ANNOTATIONS.includes(k),
    ),
  );
  const labels = (meta.labels ?? {}) as Record<string, string>;
  const metadata: Record<string, Json> = { name: meta.name as string };
  if (r.namespaced) metadata.namespace = meta.namespace as string;
  if (Object.keys(labels).length) metadata.labels = labels;
  if (Object.keys(annotations).length) metadata.annotations = annotations;
  const body: Record<string, unknown> = { ...obj };
  delete body.metadata;
  delete body.status;
  delete body.kind;
  delete body.apiVersion;
  if (resource === 'services' && body.spec) {
    // Allocated by the cluster: a restore into another cluster must get its own.
    const spec = { ...(body.spec as Record<string, unknown>) };
    delete spec.clusterIP;
    delete spec.clusterIPs;
    body.spec = spec;
  }
  if (resource === 'deployments' && body.spec) {
    const spec = { ...(body.spec as Record<string, unknown>) };
    const template = spec.template as { metadata?: Record<string, unknown> } | undefined;
    if (template?.metadata && 'creationTimestamp' in template.metadata) {
      const m = { ...template.metadata };
      delete m.creationTimestamp;
      spec.template = { ...template, metadata: m };
    }
    body.spec = spec;
  }
  return { apiVersion: r.apiVersion, kind: r.kind, metadata, ...(body as Record<string, Json>) };
}

/** JSON with every object's keys sorted and no spacing: equal objects give equal bytes. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a hex sha256');
const objectKey = z
  .string()
  .regex(
    /^clusters\/[^/]+\/objects\/[0-9a-f]{2}\/[0-9a-f]{64}\.json\.zst\.age$/,
    'expected clusters/<region>/objects/<xx>/<hex>.json.zst.age',
  );
const entry = z.strictObject({
  kind: z.string().min(1),
  namespace: z.string().optional(),
  name: z.string().min(1),
  /** Where the object is stored, relative to the storage location: readers use it as recorded. */
  key: objectKey,
});
export type SnapshotEntry = z.output<typeof entry>;

const snapshotFields = {
  /** The backup id: one snapshot per backup, written once. */
  id: z.string().min(1),
  database: z.string().min(1),
  /** The cluster: the plan region whose Kubernetes API was read. */
  cluster: z.string().min(1),
  createdAt: z.iso.datetime({ offset: true }),
  selection: z.strictObject({
    namespaces: z.array(z.string()),
    resources: z.array(z.string()),
    labelSelector: z.string().optional(),
  }),
  /** The snapshot this one is compared with (an incremental's parent backup), or null. */
  parent: z.string().nullable(),
};

export const kubernetesSnapshotSchema = z.strictObject({
  format: z.literal(SNAPSHOT_FORMAT),
  ...snapshotFields,
  /**
   * Objects are named by HMAC-SHA256 of their canonical JSON under a key derived from the
   * repository's age identity: the snapshot is plain JSON, so it carries no plain content hash.
   */
  naming: z.literal('hmac-sha256'),
  /** Every selected object as it was, by storage key. */
  objects: z.array(entry),
  /** Objects of the parent snapshot that are gone now. */
  deletions: z.array(entry),
  /** Keys this backup stored (absent from the repository before it). */
  newKeys: z.array(objectKey),
});

const v1Entry = z.strictObject({
  kind: z.string().min(1),
  namespace: z.string().optional(),
  name: z.string().min(1),
  sha256,
});
const v1Schema = z.strictObject({
  format: z.literal(SNAPSHOT_FORMAT_V1),
  ...snapshotFields,
  objects: z.array(v1Entry),
  deletions: z.array(v1Entry),
  newHashes: z.array(sha256),
});

/** A snapshot as read: v2 as written, or a v1 one with each object's key as v1 named it. */
export type KubernetesSnapshot = Omit<z.output<typeof kubernetesSnapshotSchema>, 'format' | 'naming'> & {
  format: typeof SNAPSHOT_FORMAT | typeof SNAPSHOT_FORMAT_V1;
  naming: ObjectNaming;
};

/** What a backup's manifest and result say about its Kubernetes export. */
export interface KubernetesExportSummary {
  cluster: string;
  /** The snapshot's key, relative to the storage location. */
  snapshot: string;
  snapshotSha256: string;
  parent: string | null;
  objects: number;
  newObjects: number;
  deletions: number;
  /** Bytes of the objects this backup uploaded (zstd + age). */
  storedBytes: number;
}

const identity = (e: SnapshotEntry) => `${e.kind}/${e.namespace ?? ''}/${e.name}`;

/** Every object key a snapshot names (objects, deletions, new keys), once each: what must not be swept. */
export function snapshotKeys(snapshot: KubernetesSnapshot): string[] {
  return [
    ...new Set([
      ...snapshot.objects.map((o) => o.key),
      ...snapshot.deletions.map((o) => o.key),
      ...snapshot.newKeys,
    ]),
  ];
}

/** Sorted by kind, namespace and name, so a snapshot's bytes do not depend on listing order. */
export function sortEntries(entries: SnapshotEntry[]): SnapshotEntry[] {
  return [...entries].sort((a, b) => (identity(a) < identity(b) ? -1 : identity(a) > identity(b) ? 1 : 0));
}

/** Objects of the parent that the current snapshot no longer has (by kind, namespace and name). */
export function deletionsSince(parent: SnapshotEntry[], current: SnapshotEntry[]): SnapshotEntry[] {
  const now = new Set(current.map(identity));
  return sortEntries(parent.filter((e) => !now.has(identity(e))));
}

export function serializeSnapshot(snapshot: KubernetesSnapshot): string {
  return `${JSON.stringify(snapshot, null, 2)}\n`;
}

export function parseSnapshot(
  text: string,
): { ok: true; snapshot: KubernetesSnapshot } | { ok: false; problems: string[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, problems: [`not JSON: ${(err as Error).message}`] };
  }
  const problems = (issues: z.core.$ZodIssue[]) =>
    issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  if ((raw as { format?: unknown } | null)?.format === SNAPSHOT_FORMAT_V1) {
    const v1 = v1Schema.safeParse(raw);
    if (!v1.success) return { ok: false, problems: problems(v1.error.issues) };
    const { newHashes, objects, deletions, ...rest } = v1.data;
    const keyOf = (hash: string) => repository.clusterObject('', rest.cluster, hash);
    const entryOf = ({ sha256: hash, ...e }: z.output<typeof v1Entry>): SnapshotEntry => ({
      ...e,
      key: keyOf(hash),
    });
    return {
      ok: true,
      snapshot: {
        ...rest,
        naming: 'sha256',
        objects: objects.map(entryOf),
        deletions: deletions.map(entryOf),
        newKeys: newHashes.map(keyOf),
      },
    };
  }
  const parsed = kubernetesSnapshotSchema.safeParse(raw);
  if (parsed.success) return { ok: true, snapshot: parsed.data };
  return { ok: false, problems: problems(parsed.error.issues) };
}
