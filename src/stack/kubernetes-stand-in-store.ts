// Part of the Kubernetes API stand-in (see kubernetes-stand-in.ts): a stand-in for tests and the
// local stack, not a Kubernetes implementation. This file is the object store: the handful of
// resource types Lifeboat uses, the API server's bookkeeping (uid, resourceVersion, generation,
// optimistic concurrency), a fake deployment controller whose status follows spec.replicas after
// a short delay, and persistence to one JSON file written atomically after every change.
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Json } from './kubernetes-stand-in-patch.ts';
import {
  clone,
  deepEqual,
  jsonPatch,
  mergePatch,
  parseFieldSelector,
  parseLabelSelector,
  strategicMergePatch,
} from './kubernetes-stand-in-patch.ts';

export interface ResourceType {
  /** Plural, as in the URL: `configmaps`. */
  resource: string;
  kind: string;
  /** '' for the core group. */
  group: '' | 'apps';
  namespaced: boolean;
  shortNames: string[];
}

export const RESOURCE_TYPES: readonly ResourceType[] = [
  { resource: 'namespaces', kind: 'Namespace', group: '', namespaced: false, shortNames: ['ns'] },
  { resource: 'configmaps', kind: 'ConfigMap', group: '', namespaced: true, shortNames: ['cm'] },
  { resource: 'secrets', kind: 'Secret', group: '', namespaced: true, shortNames: [] },
  { resource: 'services', kind: 'Service', group: '', namespaced: true, shortNames: ['svc'] },
  { resource: 'deployments', kind: 'Deployment', group: 'apps', namespaced: true, shortNames: ['deploy'] },
];

export const apiVersionOf = (t: ResourceType) => (t.group === '' ? 'v1' : `${t.group}/v1`);

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: Json | undefined;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: Json | ObjectMeta | undefined;
}

/** An API error, answered as a Kubernetes `Status` object. */
export class StatusError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: { name?: string; group?: string; kind?: string } | undefined;
  constructor(code: number, reason: string, message: string, details?: StatusError['details']) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
  }
}

export interface WriteOptions {
  dryRun?: boolean;
}

interface StateFile {
  version: 1;
  resourceVersion: number;
  objects: Record<string, KubeObject>;
}

const PATCH_TYPES = {
  'application/json-patch+json': jsonPatch,
  'application/merge-patch+json': mergePatch,
  'application/strategic-merge-patch+json': strategicMergePatch,
} as const;
export type PatchType = keyof typeof PATCH_TYPES;
export const isPatchType = (t: string): t is PatchType => t in PATCH_TYPES;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const timestamp = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

export class KubernetesStore {
  readonly #file: string;
  readonly #readinessDelayMs: number;
  #resourceVersion = 0;
  /** Key: `<resource>/<namespace>/<name>` (namespace empty for cluster-scoped objects). */
  #objects = new Map<string, KubeObject>();
  #timers = new Map<string, NodeJS.Timeout>();

  constructor(opts: { stateFile: string; readinessDelayMs?: number }) {
    this.#file = path.resolve(opts.stateFile);
    this.#readinessDelayMs = opts.readinessDelayMs ?? 300;
    if (fs.existsSync(this.#file)) {
      const state = JSON.parse(fs.readFileSync(this.#file, 'utf8')) as StateFile;
      if (state.version !== 1)
        throw new Error(`${this.#file}: unknown state version ${String(state.version)}`);
      this.#resourceVersion = state.resourceVersion;
      this.#objects = new Map(Object.entries(state.objects));
      // A deployment whose status had not caught up when the process stopped catches up now.
      for (const [key, obj] of this.#objects)
        if (key.startsWith('deployments/')) this.#scheduleRollout(key, obj);
    } else {
      const ns = this.type('', 'namespaces')!;
      for (const name of ['default', 'kube-system', 'kube-public'])
        this.create(ns, undefined, { metadata: { name } });
    }
  }

  type(group: string, resource: string): ResourceType | undefined {
    return RESOURCE_TYPES.find((t) => t.group === group && t.resource === resource);
  }

  get resourceVersion(): string {
    return String(this.#resourceVersion);
  }

  list(
    t: ResourceType,
    namespace: string | undefined,
    q: { labelSelector?: string; fieldSelector?: string } = {},
  ) {
    const labels = parseSelector(() => parseLabelSelector(q.labelSelector ?? ''));
    const fields = parseSelector(() => parseFieldSelector(q.fieldSelector ?? ''));
    const prefix = namespace === undefined ? `${t.resource}/` : `${t.resource}/${namespace}/`;
    return [...this.#objects.entries()]
      .filter(([key, o]) => key.startsWith(prefix) && labels(o.metadata.labels) && fields(o.metadata))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => clone(o));
  }

  get(t: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const obj = this.#objects.get(keyOf(t, namespace, name));
    if (!obj) throw notFound(t, name);
    return clone(obj);
  }

  create(t: ResourceType, namespace: string | undefined, body: unknown, opts: WriteOptions = {}): KubeObject {
    const obj = this.#checkBody(t, namespace, body);
    const meta = obj.metadata as Partial<ObjectMeta> & { generateName?: Json };
    if (!meta.name && typeof meta.generateName === 'string') {
      meta.name = meta.generateName + randomBytes(4).toString('hex').slice(0, 5);
    }
    this.#validateName(t, meta.name);
    const key = keyOf(t, namespace, meta.name!);
    if (this.#objects.has(key)) {
      throw new StatusError(
        409,
        'AlreadyExists',
        `${t.resource} "${meta.name}" already exists`,
        details(t, meta.name),
      );
    }
    this.#requireNamespace(t, namespace);
    for (const f of ['resourceVersion', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields'])
      delete meta[f];
    meta.uid = randomUUID();
    meta.creationTimestamp = timestamp();
    if (t.resource === 'deployments') meta.generation = 1;
    const created = this.#normalize(t, obj, undefined);
    if (opts.dryRun) return { ...created, metadata: { ...created.metadata, resourceVersion: '' } };
    return this.#commit(key, created);
  }

  replace(
    t: ResourceType,
    namespace: string | undefined,
    name: string,
    body: unknown,
    opts: WriteOptions = {},
  ) {
    const obj = this.#checkBody(t, namespace, body);
    if (obj.metadata.name !== name) {
      throw new StatusError(400, 'BadRequest', 'the name of the object does not match the name on the URL');
    }
    return this.#update(t, namespace, name, obj, opts);
  }

  patch(
    t: ResourceType,
    namespace: string | undefined,
    name: string,
    type: PatchType,
    patch: unknown,
    opts: WriteOptions = {},
  ) {
    const current = this.get(t, namespace, name);
    const patched = PATCH_TYPES[type](current as unknown as Json, patch as Json);
    return this.#update(t, namespace, name, this.#checkBody(t, namespace, patched), opts);
  }

  delete(
    t: ResourceType,
    namespace: string | undefined,
    name: string,
    preconditions: { uid?: string; resourceVersion?: string } = {},
    opts: WriteOptions = {},
  ): KubeObject {
    const current = this.get(t, namespace, name);
    if (preconditions.uid && preconditions.uid !== current.metadata.uid) {
      throw new StatusError(
        409,
        'Conflict',
        `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${current.metadata.uid}`,
        details(t, name),
      );
    }
    if (preconditions.resourceVersion && preconditions.resourceVersion !== current.metadata.resourceVersion) {
      throw conflict(t, name);
    }
    if (opts.dryRun) return current;
    this.#resourceVersion++;
    const key = keyOf(t, namespace, name);
    this.#objects.delete(key);
    this.#cancelRollout(key);
    if (t.resource === 'namespaces') {
      for (const k of [...this.#objects.keys()]) {
        if (k.split('/')[1] === name) {
          this.#objects.delete(k);
          this.#cancelRollout(k);
        }
      }
    }
    this.#save();
    return current;
  }

  /** The autoscaling/v1 Scale of a deployment. */
  getScale(namespace: string, name: string): KubeObject {
    return scaleOf(this.get(this.type('apps', 'deployments')!, namespace, name));
  }

  replaceScale(namespace: string, name: string, body: unknown, opts: WriteOptions = {}): KubeObject {
    const t = this.type('apps', 'deployments')!;
    const current = this.get(t, namespace, name);
    const scale = body as { metadata?: { resourceVersion?: string }; spec?: { replicas?: unknown } };
    const replicas = scale?.spec?.replicas;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      throw new StatusError(
        422,
        'Invalid',
        `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value`,
      );
    }
    const next = clone(current) as KubeObject & { spec: { replicas: number } };
    next.spec.replicas = replicas;
    next.metadata.resourceVersion = scale.metadata?.resourceVersion || current.metadata.resourceVersion;
    return scaleOf(this.#update(t, namespace, name, next, opts));
  }

  patchScale(namespace: string, name: string, type: PatchType, patch: unknown, opts: WriteOptions = {}) {
    const patched = PATCH_TYPES[type](this.getScale(namespace, name) as unknown as Json, patch as Json);
    return this.replaceScale(namespace, name, patched, opts);
  }

  /** Stops the fake controller's timers; the state on disk is already current. */
  close(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  #update(t: ResourceType, namespace: string | undefined, name: string, obj: KubeObject, opts: WriteOptions) {
    const key = keyOf(t, namespace, name);
    const current = this.#objects.get(key);
    if (!current) throw notFound(t, name);
    const rv = obj.metadata.resourceVersion;
    if (rv && rv !== current.metadata.resourceVersion) throw conflict(t, name);
    if (obj.metadata.uid && obj.metadata.uid !== current.metadata.uid) {
      throw new StatusError(409, 'Conflict', `Precondition failed: UID in object meta: ${obj.metadata.uid}`);
    }
    const meta = obj.metadata;
    meta.uid = current.metadata.uid;
    meta.creationTimestamp = current.metadata.creationTimestamp;
    meta.resourceVersion = current.metadata.resourceVersion;
    if (current.metadata.generation !== undefined) meta.generation = current.metadata.generation;
    else delete meta.generation;
    const next = this.#normalize(t, obj, current);
    if (t.resource === 'deployments' && !deepEqual(next.spec, current.spec)) {
      next.metadata.generation = (current.metadata.generation ?? 0) + 1;
    }
    if (deepEqual(next, current)) return clone(current); // a no-op write changes nothing, as in Kubernetes
    if (opts.dryRun) return next;
    return this.#commit(key, next);
  }

  #commit(key: string, obj: KubeObject): KubeObject {
    obj.metadata.resourceVersion = String(++this.#resourceVersion);
    this.#objects.set(key, obj);
    this.#save();
    if (key.startsWith('deployments/')) this.#scheduleRollout(key, obj);
    return clone(obj);
  }

  /** Checks kind, apiVersion and namespace of a request body; returns a copy with them filled in. */
  #checkBody(t: ResourceType, namespace: string | undefined, body: unknown): KubeObject {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new StatusError(400, 'BadRequest', 'the request body must be a JSON object');
    }
    const obj = clone(body) as { apiVersion?: unknown; kind?: unknown; metadata?: Partial<ObjectMeta> };
    if ((obj.kind && obj.kind !== t.kind) || (obj.apiVersion && obj.apiVersion !== apiVersionOf(t))) {
      throw new StatusError(
        400,
        'BadRequest',
        `the API version in the data (${String(obj.apiVersion)}) and kind (${String(obj.kind)}) do not match ${apiVersionOf(t)} ${t.kind}`,
      );
    }
    const meta: Partial<ObjectMeta> = (obj.metadata ??= {});
    if (t.namespaced) {
      if (meta.namespace && meta.namespace !== namespace) {
        throw new StatusError(
          400,
          'BadRequest',
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      meta.namespace = namespace;
    } else delete meta.namespace;
    // apiVersion, kind and metadata first, in the order the API server serves them.
    const out: KubeObject = { apiVersion: apiVersionOf(t), kind: t.kind, metadata: meta as ObjectMeta };
    for (const [k, v] of Object.entries(obj)) if (!(k in out)) out[k] = v as Json;
    return out;
  }

  #validateName(t: ResourceType, name: unknown): void {
    const re = t.resource === 'namespaces' || t.resource === 'services' ? DNS_LABEL : DNS_SUBDOMAIN;
    if (typeof name !== 'string' || name === '') {
      throw new StatusError(
        422,
        'Invalid',
        `${t.kind} "" is invalid: metadata.name: Required value: name or generateName is required`,
      );
    }
    if (!re.test(name) || name.length > 253) {
      throw new StatusError(
        422,
        'Invalid',
        `${t.kind} "${name}" is invalid: metadata.name: Invalid value: "${name}"`,
        details(t, name),
      );
    }
  }

  #requireNamespace(t: ResourceType, namespace: string | undefined): void {
    if (!t.namespaced) return;
    if (!this.#objects.has(`namespaces//${namespace}`)) {
      throw new StatusError(404, 'NotFound', `namespaces "${namespace}" not found`, {
        name: namespace,
        kind: 'namespaces',
      });
    }
  }

  /** Defaults and type-specific rules applied on every write, like the API server's strategies. */
  #normalize(t: ResourceType, obj: KubeObject, current: KubeObject | undefined): KubeObject {
    const name = obj.metadata.name;
    const invalid = (field: string, why: string) =>
      new StatusError(422, 'Invalid', `${t.kind} "${name}" is invalid: ${field}: ${why}`, details(t, name));
    switch (t.resource) {
      case 'namespaces': {
        obj.metadata.labels = { ...obj.metadata.labels, 'kubernetes.io/metadata.name': name };
        obj.spec = { finalizers: ['kubernetes'] };
        obj.status = { phase: 'Active' };
        break;
      }
      case 'secrets': {
        const data = { ...(obj.data as Record<string, string> | undefined) };
        for (const [k, v] of Object.entries((obj.stringData as Record<string, string> | undefined) ?? {})) {
          data[k] = Buffer.from(String(v)).toString('base64');
        }
        delete obj.stringData;
        if (Object.keys(data).length > 0) obj.data = data;
        obj.type ??= current?.type ?? 'Opaque';
        if (current && obj.type !== current.type) throw invalid('type', 'field is immutable');
        break;
      }
      case 'services': {
        const spec = { ...(obj.spec as Record<string, Json> | undefined) };
        spec.type ??= 'ClusterIP';
        const ip = (current?.spec as { clusterIP?: string } | undefined)?.clusterIP;
        if (current && spec.clusterIP && spec.clusterIP !== ip)
          throw invalid('spec.clusterIP', 'field is immutable');
        spec.clusterIP = ip ?? (spec.clusterIP as string | undefined) ?? this.#freeClusterIp();
        spec.clusterIPs = [spec.clusterIP];
        if (Array.isArray(spec.ports)) {
          spec.ports = spec.ports.map((p) => {
            const port = p as Record<string, Json>;
            return { protocol: 'TCP', targetPort: port.port ?? null, ...port };
          });
        }
        obj.spec = spec;
        obj.status = { loadBalancer: {} };
        break;
      }
      case 'deployments': {
        const spec = { ...(obj.spec as Record<string, Json> | undefined) } as {
          replicas?: Json;
          selector?: { matchLabels?: Record<string, string> };
          template?: { metadata?: { labels?: Record<string, string> } };
        } & Record<string, Json>;
        spec.replicas ??= 1;
        if (typeof spec.replicas !== 'number' || !Number.isInteger(spec.replicas) || spec.replicas < 0) {
          throw invalid('spec.replicas', 'must be a non-negative integer');
        }
        const match = spec.selector?.matchLabels;
        if (!match || Object.keys(match).length === 0) throw invalid('spec.selector', 'Required value');
        const podLabels = spec.template?.metadata?.labels ?? {};
        if (!Object.entries(match).every(([k, v]) => podLabels[k] === v)) {
          throw invalid('spec.template.metadata.labels', '`selector` does not match template `labels`');
        }
        if (current && !deepEqual(match, (current.spec as typeof spec).selector?.matchLabels)) {
          throw invalid('spec.selector', 'field is immutable');
        }
        spec.strategy ??= {
          type: 'RollingUpdate',
          rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' },
        };
        spec.revisionHistoryLimit ??= 10;
        spec.progressDeadlineSeconds ??= 600;
        obj.spec = spec;
        obj.status = current ? clone(current.status ?? {}) : {}; // status belongs to the controller
        break;
      }
    }
    return obj;
  }

  #freeClusterIp(): string {
    const used = new Set(
      this.list(this.type('', 'services')!, undefined).map(
        (s) => (s.spec as { clusterIP?: string }).clusterIP,
      ),
    );
    for (;;) {
      const n = 1 + Math.floor(Math.random() * 65_000);
      const ip = `10.96.${n >> 8}.${n & 255}`;
      if (!used.has(ip)) return ip;
    }
  }

  /** The fake deployment controller: status follows spec after the readiness delay. */
  #scheduleRollout(key: string, obj: KubeObject): void {
    const spec = obj.spec as { replicas: number };
    const status = (obj.status ?? {}) as {
      observedGeneration?: number;
      readyReplicas?: number;
      replicas?: number;
    };
    const settled =
      status.observedGeneration === obj.metadata.generation &&
      status.replicas === spec.replicas &&
      status.readyReplicas === spec.replicas;
    if (settled) return;
    this.#cancelRollout(key);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      const current = this.#objects.get(key);
      if (!current) return;
      const replicas = (current.spec as { replicas: number }).replicas;
      const now = timestamp();
      current.status = {
        observedGeneration: current.metadata.generation ?? 1,
        replicas,
        updatedReplicas: replicas,
        readyReplicas: replicas,
        availableReplicas: replicas,
        conditions: [
          {
            type: 'Available',
            status: 'True',
            reason: 'MinimumReplicasAvailable',
            message: 'Deployment has minimum availability.',
            lastUpdateTime: now,
            lastTransitionTime: now,
          },
          {
            type: 'Progressing',
            status: 'True',
            reason: 'NewReplicaSetAvailable',
            message: `ReplicaSet "${current.metadata.name}" has successfully progressed.`,
            lastUpdateTime: now,
            lastTransitionTime: now,
          },
        ],
      };
      current.metadata.resourceVersion = String(++this.#resourceVersion);
      this.#save();
    }, this.#readinessDelayMs);
    this.#timers.set(key, timer);
  }

  #cancelRollout(key: string): void {
    clearTimeout(this.#timers.get(key));
    this.#timers.delete(key);
  }

  /** Writes the whole state to a temporary file, fsyncs it, and renames it over the state file. */
  #save(): void {
    const state: StateFile = {
      version: 1,
      resourceVersion: this.#resourceVersion,
      objects: Object.fromEntries(this.#objects),
    };
    fs.mkdirSync(path.dirname(this.#file), { recursive: true });
    const tmp = `${this.#file}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(state, null, 1) + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.#file);
  }
}

function keyOf(t: ResourceType, namespace: string | undefined, name: string): string {
  return `${t.resource}/${t.namespaced ? (namespace ?? '') : ''}/${name}`;
}

function details(t: ResourceType, name: string | undefined) {
  return { name, ...(t.group ? { group: t.group } : {}), kind: t.resource };
}

function notFound(t: ResourceType, name: string): StatusError {
  const what = t.group ? `${t.resource}.${t.group}` : t.resource;
  return new StatusError(404, 'NotFound', `${what} "${name}" not found`, details(t, name));
}

function conflict(t: ResourceType, name: string): StatusError {
  const what = t.group ? `${t.resource}.${t.group}` : t.resource;
  return new StatusError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${what} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    details(t, name),
  );
}

function parseSelector<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new StatusError(400, 'BadRequest', (err as Error).message);
  }
}

function scaleOf(d: KubeObject): KubeObject {
  const spec = d.spec as { replicas: number; selector: { matchLabels: Record<string, string> } };
  const status = (d.status ?? {}) as { replicas?: number };
  const { name, namespace, uid, resourceVersion, creationTimestamp } = d.metadata;
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name, namespace, uid, resourceVersion, creationTimestamp },
    spec: { replicas: spec.replicas },
    status: {
      replicas: status.replicas ?? 0,
      selector: Object.entries(spec.selector.matchLabels)
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
    },
  };
}
