// Part of the Kubernetes API stand-in (see kubernetes-stand-in.ts): a stand-in for tests and the
// local stack, not a Kubernetes implementation. This file holds the pure helpers: the three patch
// formats the API server accepts, label and field selectors, and deep equality.

/** A JSON value as stored by the stand-in. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** A client error the server turns into a Kubernetes Status (400 BadRequest, 422 Invalid, …). */
export class PatchError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a))
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (!isObject(a) || !isObject(b)) return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => k in b && deepEqual(a[k], b[k]));
}

export const clone = <T>(v: T): T => structuredClone(v);

/** RFC 7386 JSON merge patch: objects merge recursively, null deletes, everything else replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

/**
 * A simplified strategic merge patch: like a merge patch, except that lists whose items are all
 * objects with a `name` (containers, env, ports, volumes …) are merged item by item on `name`, and
 * an item `{ name, $patch: delete }` removes that item. Kubernetes decides per field from its
 * OpenAPI schema; this heuristic covers the fields Lifeboat touches.
 */
export function strategicMergePatch(target: Json, patch: Json): Json {
  if (Array.isArray(patch) && Array.isArray(target) && byName(patch) && byName(target)) {
    const out = target.map((x) => clone(x)) as JsonObject[];
    for (const item of patch as JsonObject[]) {
      const i = out.findIndex((x) => x.name === item.name);
      if (item.$patch === 'delete') {
        if (i >= 0) out.splice(i, 1);
      } else if (i >= 0) out[i] = strategicMergePatch(out[i]!, item) as JsonObject;
      else out.push(clone(item));
    }
    return out;
  }
  if (!isObject(patch)) return clone(patch);
  if (patch.$patch === 'replace') {
    const rest = { ...patch };
    delete rest.$patch;
    return clone(rest);
  }
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = strategicMergePatch(out[k] ?? null, v);
  }
  return out;
}

const byName = (list: Json[]) =>
  list.length > 0 &&
  list.every((x) => isObject(x) && typeof x.name === 'string' && Object.keys(x).length > 0);

/** RFC 6902 JSON patch (add, remove, replace, move, copy, test). */
export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new PatchError(400, 'json patch must be an array of operations');
  let doc = clone(target);
  for (const op of ops) {
    if (!isObject(op) || typeof op.op !== 'string' || typeof op.path !== 'string') {
      throw new PatchError(400, `invalid json patch operation: ${JSON.stringify(op)}`);
    }
    const path = op.path;
    const from = typeof op.from === 'string' ? op.from : undefined;
    switch (op.op) {
      case 'add':
        doc = pointerSet(doc, path, clone(op.value ?? null), 'add');
        break;
      case 'replace':
        pointerGet(doc, path);
        doc = pointerSet(doc, path, clone(op.value ?? null), 'replace');
        break;
      case 'remove':
        doc = pointerRemove(doc, path);
        break;
      case 'move': {
        if (from === undefined) throw new PatchError(400, 'move needs from');
        const value = pointerGet(doc, from);
        doc = pointerSet(pointerRemove(doc, from), path, value, 'add');
        break;
      }
      case 'copy': {
        if (from === undefined) throw new PatchError(400, 'copy needs from');
        doc = pointerSet(doc, path, clone(pointerGet(doc, from)), 'add');
        break;
      }
      case 'test':
        if (!deepEqual(pointerGet(doc, path), op.value)) {
          throw new PatchError(422, `the test operation on ${path} failed: value differs`);
        }
        break;
      default:
        throw new PatchError(400, `unknown json patch operation ${op.op}`);
    }
  }
  return doc;
}

function tokens(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PatchError(400, `invalid JSON pointer ${pointer}`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function pointerGet(doc: Json, pointer: string): Json {
  let cur: Json = doc;
  for (const t of tokens(pointer)) {
    const next: Json | undefined = Array.isArray(cur) ? cur[Number(t)] : isObject(cur) ? cur[t] : undefined;
    if (next === undefined || (Array.isArray(cur) && !/^\d+$/.test(t))) {
      throw new PatchError(422, `the path ${pointer} does not exist`);
    }
    cur = next;
  }
  return cur;
}

function parentOf(doc: Json, pointer: string): { parent: Json; last: string } {
  const ts = tokens(pointer);
  const last = ts.pop();
  if (last === undefined) throw new PatchError(422, 'cannot address the whole document here');
  const prefix = ts.map((t) => '/' + t.replaceAll('~', '~0').replaceAll('/', '~1')).join('');
  return { parent: pointerGet(doc, prefix), last };
}

function pointerSet(doc: Json, pointer: string, value: Json, mode: 'add' | 'replace'): Json {
  if (pointer === '') return value;
  const { parent, last } = parentOf(doc, pointer);
  if (Array.isArray(parent)) {
    const i = last === '-' ? parent.length : Number(last);
    if (!Number.isInteger(i) || i < 0 || i > parent.length || (mode === 'replace' && i >= parent.length)) {
      throw new PatchError(422, `index ${last} out of range at ${pointer}`);
    }
    if (mode === 'add') parent.splice(i, 0, value);
    else parent[i] = value;
  } else if (isObject(parent)) {
    parent[last] = value;
  } else {
    throw new PatchError(422, `the parent of ${pointer} is not an object or array`);
  }
  return doc;
}

function pointerRemove(doc: Json, pointer: string): Json {
  pointerGet(doc, pointer);
  const { parent, last } = parentOf(doc, pointer);
  if (Array.isArray(parent)) parent.splice(Number(last), 1);
  else if (isObject(parent)) delete parent[last];
  return doc;
}

type Requirement =
  { key: string; op: 'exists' | 'notexists' } | { key: string; op: 'in' | 'notin'; values: string[] };

/**
 * Parses a label selector (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`) into a predicate on labels.
 * Throws PatchError(400) for a malformed selector, as the API server answers BadRequest.
 */
export function parseLabelSelector(
  selector: string,
): (labels: Record<string, string> | undefined) => boolean {
  const reqs: Requirement[] = [];
  for (const raw of splitTopLevel(selector)) {
    const part = raw.trim();
    if (part === '') continue;
    let m: RegExpMatchArray | null;
    if ((m = /^([^\s=!(),]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part))) {
      const values = m[3]!.split(',').map((v) => v.trim());
      reqs.push({ key: m[1]!, op: m[2] as 'in' | 'notin', values });
    } else if ((m = /^([^\s=!(),]+)\s*(==|=|!=)\s*([^\s=!(),]*)$/.exec(part))) {
      reqs.push({ key: m[1]!, op: m[2] === '!=' ? 'notin' : 'in', values: [m[3]!] });
    } else if ((m = /^!\s*([^\s=!(),]+)$/.exec(part))) {
      reqs.push({ key: m[1]!, op: 'notexists' });
    } else if ((m = /^([^\s=!(),]+)$/.exec(part))) {
      reqs.push({ key: m[1]!, op: 'exists' });
    } else {
      throw new PatchError(400, `unable to parse requirement: ${JSON.stringify(part)}`);
    }
  }
  return (labels) =>
    reqs.every((r) => {
      const v = labels?.[r.key];
      switch (r.op) {
        case 'exists':
          return v !== undefined;
        case 'notexists':
          return v === undefined;
        case 'in':
          return v !== undefined && r.values.includes(v);
        case 'notin':
          return v === undefined || !r.values.includes(v);
      }
    });
}

function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** Field selectors on `metadata.name` and `metadata.namespace` (`=`, `==`, `!=`). */
export function parseFieldSelector(
  selector: string,
): (meta: { name?: string; namespace?: string }) => boolean {
  const tests: ((meta: { name?: string; namespace?: string }) => boolean)[] = [];
  for (const raw of selector.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const m = /^(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw new PatchError(400, `field label not supported: ${part.split(/[=!]/)[0]}`);
    const field = m[1] === 'metadata.name' ? 'name' : 'namespace';
    const want = m[3]!;
    const equal = m[2] !== '!=';
    tests.push((meta) => (meta[field] === want) === equal);
  }
  return (meta) => tests.every((t) => t(meta));
}
