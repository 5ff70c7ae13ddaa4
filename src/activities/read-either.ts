// Restores read from either location (3-2-1): the primary first, the secondary when the primary
// cannot be read or lacks what is asked for. Every answer says which location served it.
import { LifeboatError } from '../domain/errors.ts';
import { catalogEntry, type BackupManifest } from '../domain/manifest.ts';
import type { WalListing } from '../domain/restore.ts';
import { readCatalog, readWalListing, type Catalog } from './catalog.ts';
import type { ObjectStore } from './ports/object-store.ts';
import { describeAwsError, type StorageLocationName } from './storage.ts';

export interface Source {
  name: StorageLocationName;
  store: ObjectStore;
}

/** The plan's locations in reading order: primary, then secondary. */
export function readingOrder(stores: Partial<Record<StorageLocationName, ObjectStore>>): Source[] {
  const order: Source[] = [];
  if (stores.primary) order.push({ name: 'primary', store: stores.primary });
  if (stores.secondary) order.push({ name: 'secondary', store: stores.secondary });
  if (!order.length) throw new LifeboatError('InvalidInput', 'the plan has no storage location');
  return order;
}

const url = (s: Source) => `${s.name} s3://${s.store.bucket}${s.store.prefix ? `/${s.store.prefix}` : ''}`;

/**
 * Reads `read` from every location that answers. Fails (with the first error) only when none
 * does; `unreadable` names the ones that did not, so a restore can say it ran on one copy.
 */
async function fromEach<T>(
  sources: Source[],
  read: (store: ObjectStore) => Promise<T>,
): Promise<{ results: { source: Source; value: T }[]; unreadable: string[] }> {
  const results: { source: Source; value: T }[] = [];
  const unreadable: string[] = [];
  let first: unknown;
  for (const source of sources)
    try {
      results.push({ source, value: await read(source.store) });
    } catch (err) {
      first ??= err;
      unreadable.push(`${url(source)}: ${describeAwsError(err) || (err as Error).message}`);
    }
  if (!results.length) throw first;
  return { results, unreadable };
}

/** Every backup either location holds (the primary's manifest wins a tie), and who served each. */
export async function readCatalogEither(
  sources: Source[],
  database: string,
): Promise<{ catalog: Catalog; servedBy: Record<string, StorageLocationName>; unreadable: string[] }> {
  const { results, unreadable } = await fromEach(sources, (s) => readCatalog(s, database));
  const servedBy: Record<string, StorageLocationName> = {};
  const manifests: BackupManifest[] = [];
  const catalog: Catalog = { entries: [], manifests: [], problems: [] };
  for (const { source, value } of results) {
    catalog.problems.push(...value.problems);
    for (const m of value.manifests)
      if (!servedBy[m.id]) {
        servedBy[m.id] = source.name;
        manifests.push(m);
      }
  }
  // Oldest first by the time in the id, as readCatalog orders one location.
  const time = (id: string) => id.slice(id.lastIndexOf('-') + 1);
  manifests.sort((a, b) => time(a.id).localeCompare(time(b.id)) || a.id.localeCompare(b.id));
  catalog.manifests = manifests;
  catalog.entries = manifests.map(catalogEntry);
  return { catalog, servedBy, unreadable };
}

/** The WAL archive as the union of both locations: a segment in either is a segment. */
export async function readWalListingEither(
  sources: Source[],
  database: string,
  walSegmentSize: number,
): Promise<{ wal: WalListing; unreadable: string[] }> {
  const { results, unreadable } = await fromEach(sources, (s) => readWalListing(s, database, walSegmentSize));
  const segments = new Set<string>();
  const partials = new Map<string, WalListing['partials'][number]>();
  for (const { value } of results) {
    for (const s of value.wal.segments) segments.add(s);
    for (const p of value.wal.partials) partials.set(`${p.segment}.${p.upToLsn}`, p);
  }
  return {
    wal: { segments: [...segments].sort(), partials: [...partials.values()], walSegmentSize },
    unreadable,
  };
}

/** The first location that holds `key` (with its size), or an error naming what each said. */
export async function locate(sources: Source[], key: string): Promise<Source & { skipped: string[] }> {
  const skipped: string[] = [];
  let unreachable = false;
  for (const source of sources)
    try {
      if (await source.store.head(key)) return { ...source, skipped };
      skipped.push(`${url(source)}: no ${key}`);
    } catch (err) {
      unreachable = true;
      skipped.push(`${url(source)}: ${describeAwsError(err) || (err as Error).message}`);
    }
  throw new LifeboatError(
    unreachable ? 'Unreachable' : 'IntegrityError',
    `${key} cannot be read: ${skipped.join('; ')}`,
    {
      key,
    },
  );
}

/**
 * A read-only store over both locations for readers that take one store (the restored server's
 * `lifeboat wal-fetch`): the primary answers first; an object it lacks, or any read it cannot
 * serve, is asked of the secondary. A primary that is down and a secondary that lacks the object
 * is an error, never "absent": recovery must not end early because one copy was unreachable.
 */
export function readEitherStore(
  primary: ObjectStore,
  secondary: ObjectStore,
  served: (location: StorageLocationName, key: string) => void,
): ObjectStore {
  const readOnly = () => {
    throw new LifeboatError('InvalidInput', 'a store that reads either copy does not write');
  };
  async function either<T>(
    key: string,
    read: (s: ObjectStore) => Promise<T | undefined>,
  ): Promise<T | undefined> {
    let failure: Error | undefined;
    try {
      const v = await read(primary);
      if (v !== undefined) {
        served('primary', key);
        return v;
      }
    } catch (err) {
      failure = err as Error;
    }
    const v = await read(secondary);
    if (v !== undefined) {
      served('secondary', key);
      return v;
    }
    if (failure) throw failure;
    return undefined;
  }
  /** Read only where the object is: a missing key moves on to the other copy. */
  const whereHeld =
    <T>(key: string, read: (s: ObjectStore) => Promise<T>) =>
    async (s: ObjectStore): Promise<T | undefined> =>
      (await s.head(key)) ? read(s) : undefined;
  /** Read from the first location that holds the object; neither holding it is an error. */
  const held = async <T>(key: string, read: (s: ObjectStore) => Promise<T>): Promise<T> => {
    const v = await either(key, whereHeld(key, read));
    if (v === undefined) throw new LifeboatError('IntegrityError', `${key} is in neither location`);
    return v;
  };
  return {
    bucket: primary.bucket,
    prefix: primary.prefix,
    headBucket: async () => {
      await Promise.any([primary.headBucket(), secondary.headBucket()]);
    },
    head: (key) => either(key, (s) => s.head(key)),
    getIfPresent: (key) => either(key, (s) => s.getIfPresent(key)),
    get: (key) => held(key, (s) => s.get(key)),
    getStream: (key, range) => held(key, (s) => s.getStream(key, range)),
    presignGet: (key, expiresInSeconds) => held(key, (s) => s.presignGet(key, expiresInSeconds)),
    list: async (keyPrefix) => {
      const { results } = await fromEach(
        [
          { name: 'primary', store: primary },
          { name: 'secondary', store: secondary },
        ],
        (s) => s.list(keyPrefix),
      );
      const byKey = new Map(results.flatMap((r) => r.value.map((o) => [o.key, o] as const)).reverse());
      return [...byKey.values()].sort((a, b) => a.key.localeCompare(b.key));
    },
    put: readOnly,
    delete: readOnly,
    createMultipartUpload: readOnly,
    uploadPart: readOnly,
    completeMultipartUpload: readOnly,
    abortMultipartUpload: readOnly,
    listMultipartUploads: readOnly,
    objectLockProblem: readOnly,
  };
}
