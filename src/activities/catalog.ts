// The catalog is derived by listing manifests: nothing is rewritten, so it works on write-once
// (Object Lock) buckets and needs no decryption key. Used by `lifeboat backups list` directly
// (it must work when Temporal is down) and by workflows through the listBackups activity.
import { catalogEntry, parseManifest, type BackupManifest, type CatalogEntry } from '../domain/manifest.ts';
import { repository } from '../domain/repository.ts';
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
    .sort((a, b) => a.key.localeCompare(b.key));
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
