// THE KUBERNETES API STAND-IN — a stand-in for tests and the local stack, NOT a Kubernetes
// implementation. No package registry ships a Kubernetes API server, so this is the one stand-in
// Lifeboat allows (DESIGN.md, "Real parts"). It answers the REST paths that
// @kubernetes/client-node 2.x calls for the objects Lifeboat touches — namespaces, configmaps,
// secrets, services, deployments and the deployments' scale subresource — with Kubernetes'
// status codes and Status objects, resourceVersion-based optimistic concurrency, label selectors,
// the three patch formats, bearer-token authentication, and a deployment "controller" whose
// status follows spec.replicas after a short delay. There are no pods, no scheduler, no watch, no
// admission, no RBAC and no server-side apply. Production talks to a real cluster; nothing in
// Lifeboat branches on whether it is talking to this one.
import http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { PatchError } from './kubernetes-stand-in-patch.ts';
import type { KubeObject, ResourceType } from './kubernetes-stand-in-store.ts';
import {
  KubernetesStore,
  RESOURCE_TYPES,
  StatusError,
  apiVersionOf,
  isPatchType,
} from './kubernetes-stand-in-store.ts';

export interface KubernetesStandInOptions {
  /** JSON file holding every object; loaded at start, rewritten atomically after each change. */
  stateFile: string;
  /** The bearer token every request must carry. */
  token: string;
  /** How long a deployment takes to "become ready" after spec.replicas changes; default 300 ms. */
  readinessDelayMs?: number;
  /** Called with one line per request (method, path, status, duration). */
  log?: (line: string) => void;
}

const MAX_BODY = 8 * 1024 * 1024;
export const STAND_IN_VERSION = {
  major: '1',
  minor: '31',
  gitVersion: 'v1.31.0+lifeboat-stand-in',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-01-01T00:00:00Z',
  goVersion: 'none (Lifeboat Kubernetes API stand-in)',
  compiler: 'none',
  platform: 'linux/amd64',
};

/**
 * The stand-in's HTTP server (not yet listening). Closing the server stops its fake controller;
 * the state file is current after every request.
 */
export function createKubernetesStandIn(opts: KubernetesStandInOptions): http.Server {
  const store = new KubernetesStore({ stateFile: opts.stateFile, readinessDelayMs: opts.readinessDelayMs });
  const expected = Buffer.from(`Bearer ${opts.token}`);
  const authorized = (header: string | undefined) => {
    const got = Buffer.from(header ?? '');
    return got.length === expected.length && timingSafeEqual(got, expected);
  };
  const server = http.createServer((req, res) => {
    const started = Date.now();
    res.on('finish', () =>
      opts.log?.(`${req.method} ${req.url} ${res.statusCode} ${Date.now() - started}ms`),
    );
    const answer = (code: number, body: unknown) => {
      const text = typeof body === 'string';
      res.writeHead(code, {
        'Content-Type': text ? 'text/plain; charset=utf-8' : 'application/json',
        'Cache-Control': 'no-cache, private',
      });
      res.end(text ? body : JSON.stringify(body));
    };
    if (!authorized(req.headers.authorization)) {
      req.resume();
      answer(401, status(new StatusError(401, 'Unauthorized', 'Unauthorized')));
      return;
    }
    readBody(req)
      .then((body) =>
        handle(store, req.method ?? 'GET', new URL(req.url ?? '/', 'http://stand-in'), req, body),
      )
      .then(([code, result]) => answer(code, result))
      .catch((err: unknown) => {
        if (err instanceof StatusError) answer(err.code, status(err));
        else if (err instanceof PatchError) {
          answer(
            err.code,
            status(new StatusError(err.code, err.code === 422 ? 'Invalid' : 'BadRequest', err.message)),
          );
        } else {
          opts.log?.(`internal error: ${(err as Error).stack ?? String(err)}`);
          answer(
            500,
            status(
              new StatusError(500, 'InternalError', `Internal error occurred: ${(err as Error).message}`),
            ),
          );
        }
      });
  });
  server.on('close', () => store.close());
  return server;
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY)
        reject(new StatusError(413, 'RequestEntityTooLarge', 'the request body is too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function status(err: StatusError) {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: err.message,
    reason: err.reason,
    ...(err.details ? { details: err.details } : {}),
    code: err.code,
  };
}

const success = (t: ResourceType, obj: KubeObject | undefined) => ({
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Success',
  details: obj
    ? {
        name: obj.metadata.name,
        ...(t.group ? { group: t.group } : {}),
        kind: t.resource,
        uid: obj.metadata.uid,
      }
    : { ...(t.group ? { group: t.group } : {}), kind: t.resource },
});

const notFoundPath = () =>
  new StatusError(404, 'NotFound', 'the server could not find the requested resource');
const methodNotAllowed = (method: string) =>
  new StatusError(
    405,
    'MethodNotAllowed',
    `the server does not allow this method on the requested resource (${method})`,
  );

type Result = [number, unknown];

function handle(
  store: KubernetesStore,
  method: string,
  url: URL,
  req: http.IncomingMessage,
  raw: Buffer,
): Result {
  const parts = url.pathname
    .split('/')
    .filter(Boolean)
    .map((p) => decodeURIComponent(p));
  const discovery = discover(parts);
  if (discovery !== undefined) {
    if (method !== 'GET') throw methodNotAllowed(method);
    return [200, discovery];
  }

  // /api/v1/... or /apis/apps/v1/...
  let group: string;
  let rest: string[];
  if (parts[0] === 'api' && parts[1] === 'v1') [group, rest] = ['', parts.slice(2)];
  else if (parts[0] === 'apis' && parts[1] === 'apps' && parts[2] === 'v1')
    [group, rest] = ['apps', parts.slice(3)];
  else throw notFoundPath();
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [resource, name, subresource, ...extra] = rest;
  const t = resource === undefined ? undefined : store.type(group, resource);
  if (!t || extra.length > 0 || (namespace !== undefined && !t.namespaced)) throw notFoundPath();

  const q = url.searchParams;
  const dryRun = q.getAll('dryRun').includes('All');
  const body = () => parseJson(raw);
  const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const patchType = () => {
    if (!isPatchType(contentType)) {
      throw new StatusError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`,
      );
    }
    return contentType;
  };

  if (name === undefined) {
    // A collection; namespaced types listed without a namespace span all namespaces.
    if (method === 'GET') {
      if (q.get('watch') === 'true' || q.get('watch') === '1') {
        throw new StatusError(
          400,
          'BadRequest',
          'watch is not supported by the Lifeboat Kubernetes API stand-in',
        );
      }
      const selectors = {
        labelSelector: q.get('labelSelector') ?? '',
        fieldSelector: q.get('fieldSelector') ?? '',
      };
      const items = store.list(t, namespace, selectors).map((o) => {
        // The API server leaves kind and apiVersion out of list items; so does the stand-in.
        const item: Partial<KubeObject> = { ...o };
        delete item.kind;
        delete item.apiVersion;
        return item;
      });
      return [
        200,
        {
          kind: `${t.kind}List`,
          apiVersion: apiVersionOf(t),
          metadata: { resourceVersion: store.resourceVersion },
          items,
        },
      ];
    }
    if (method === 'POST') {
      if (t.namespaced && namespace === undefined) throw methodNotAllowed(method);
      return [201, store.create(t, namespace, body(), { dryRun })];
    }
    if (method === 'DELETE' && namespace !== undefined) {
      const selectors = {
        labelSelector: q.get('labelSelector') ?? '',
        fieldSelector: q.get('fieldSelector') ?? '',
      };
      for (const o of store.list(t, namespace, selectors))
        store.delete(t, o.metadata.namespace, o.metadata.name, {}, { dryRun });
      return [200, success(t, undefined)];
    }
    throw methodNotAllowed(method);
  }

  if (t.namespaced && namespace === undefined) throw notFoundPath();
  if (subresource === 'scale' && t.resource === 'deployments') {
    const ns = namespace!;
    if (method === 'GET') return [200, store.getScale(ns, name)];
    if (method === 'PUT') return [200, store.replaceScale(ns, name, body(), { dryRun })];
    if (method === 'PATCH') return [200, store.patchScale(ns, name, patchType(), body(), { dryRun })];
    throw methodNotAllowed(method);
  }
  if (subresource !== undefined) throw notFoundPath();

  switch (method) {
    case 'GET':
      return [200, store.get(t, namespace, name)];
    case 'PUT':
      return [200, store.replace(t, namespace, name, body(), { dryRun })];
    case 'PATCH':
      return [200, store.patch(t, namespace, name, patchType(), body(), { dryRun })];
    case 'DELETE': {
      const options = (raw.length > 0 ? parseJson(raw) : {}) as {
        preconditions?: { uid?: string; resourceVersion?: string };
        dryRun?: string[];
      };
      const dry = dryRun || (options.dryRun ?? []).includes('All');
      const deleted = store.delete(t, namespace, name, options.preconditions ?? {}, { dryRun: dry });
      return [200, success(t, deleted)];
    }
    default:
      throw methodNotAllowed(method);
  }
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new StatusError(400, 'BadRequest', `the request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** Version and discovery documents, enough for clients that look before they call. */
function discover(parts: string[]): unknown {
  const path = '/' + parts.join('/');
  const resources = (group: string) => ({
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/v1` : 'v1',
    resources: RESOURCE_TYPES.filter((t) => t.group === group).flatMap((t) => [
      {
        name: t.resource,
        singularName: t.kind.toLowerCase(),
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: [
          'create',
          'delete',
          ...(t.namespaced ? ['deletecollection'] : []),
          'get',
          'list',
          'patch',
          'update',
        ],
        shortNames: t.shortNames,
      },
      ...(t.resource === 'deployments'
        ? [
            {
              name: 'deployments/scale',
              singularName: '',
              namespaced: true,
              group: 'autoscaling',
              version: 'v1',
              kind: 'Scale',
              verbs: ['get', 'patch', 'update'],
            },
          ]
        : []),
    ]),
  });
  switch (path) {
    case '/version':
      return STAND_IN_VERSION;
    case '/healthz':
    case '/livez':
    case '/readyz':
      return 'ok';
    case '/api':
      return {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }],
      };
    case '/apis':
      return {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: [
          {
            name: 'apps',
            versions: [{ groupVersion: 'apps/v1', version: 'v1' }],
            preferredVersion: { groupVersion: 'apps/v1', version: 'v1' },
          },
        ],
      };
    case '/api/v1':
      return resources('');
    case '/apis/apps/v1':
      return resources('apps');
    case '/apis/apps':
      return {
        kind: 'APIGroup',
        apiVersion: 'v1',
        name: 'apps',
        versions: [{ groupVersion: 'apps/v1', version: 'v1' }],
        preferredVersion: { groupVersion: 'apps/v1', version: 'v1' },
      };
    default:
      return undefined;
  }
}
