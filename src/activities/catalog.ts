// The catalog is derived by listing manifests: nothing is rewritten, so it works on write-once
// (Object Lock) buckets and needs no decryption key. Used by `lifeboat backups list` directly
// (it must work when Temporal is down) and by workflows through the listBackups activity.
import { catalogEntry, parseManifest, type BackupManifest, type CatalogEntry } from '../domain/manifest.ts';
import { repository } from '../domain/repository.ts';
import type { WalListing } from '../domain/restore.ts';
import type { ObjectStore } from './ports/object-store.ts';

export interface Catalog {
  /** Oldest first (backup ids sort by time). */
  entries: CatalogEntry[];
  manifests: BackupManifest[];
  /** Manifests that could not be read or do not validate: reported, never hidden. */
  problems: { key: string; problems: string[] }[];
}

export async function readCatalog(store: ObjectStore, database: string): Promise<Catalog> {
  const objects = (await store.list(repository.manifestsPrefix('', database)))
    .filter((o) => o.key.endsWith('.json'))
    // Oldest first by the time in the id (`<db>-<kind>-<time>`): sorting whole keys would list
    // every full backup before every incremental.
    .sort((a, b) => byBackupTime(a.key, b.key));
  const catalog: Catalog = { entries: [], manifests: [], problems: [] };
  const texts = await Promise.all(
    objects.map(async (o) => ({ key: o.key, text: Buffer.from(await store.get(o.key)).toString('utf8') })),
  );
  for (const { key, text } of texts) {
    const parsed = parseManifest(text);
    if (!parsed.ok) catalog.problems.push({ key, problems: parsed.problems });
    else if (parsed.manifest.database !== database)
      catalog.problems.push({
        key,
        problems: [`database: "${parsed.manifest.database}", filed under "${database}"`],
      });
    else {
      catalog.manifests.push(parsed.manifest);
      catalog.entries.push(catalogEntry(parsed.manifest));
    }
  }
  return catalog;
}

/**
 * The WAL archive of a database as stored: completed and partial segment names (for chain
 * resolution and the gap check) and every object key under it (so nothing stored is unseen).
 */
export async function readWalListing(
  store: ObjectStore,
  database: string,
  walSegmentSize: number,
): Promise<{ wal: WalListing; keys: string[] }> {
  const objects = await store.list(repository.walPrefix('', database));
  const wal: WalListing = { segments: [], partials: [], walSegmentSize };
  for (const o of objects) {
    const full = /\/([0-9A-F]{24})\.zst\.age$/.exec(o.key);
    if (full) wal.segments.push(full[1]!);
    const partial = /\/([0-9A-F]{24})\.partial\.([0-9A-F]+)-([0-9A-F]+)\.zst\.age$/.exec(o.key);
    if (partial) wal.partials.push({ segment: partial[1]!, upToLsn: `${partial[2]}/${partial[3]}` });
  }
  wal.segments.sort();
  return { wal, keys: objects.map((o) => o.key) };
}

/** Orders manifest keys oldest first by the time in the backup id. */
export function byBackupTime(a: string, b: string): number {
  return timeOfKey(a).localeCompare(timeOfKey(b)) || a.localeCompare(b);
}

function timeOfKey(key: string): string {
  return key.slice(key.lastIndexOf('-') + 1);
}
