// The manifests of a repository as last listed, read incrementally. Manifests are write-once
// (DESIGN: write-once repository), so the bytes under a key never change: a key read once is never
// read again, and only a key gone from the listing (a pruned or deleted backup) is forgotten.
import { parseManifest, type BackupManifest } from '../domain/manifest.ts';
import { repository } from '../domain/repository.ts';
import { byBackupTime } from './catalog.ts';
import type { ObjectStore } from './ports/object-store.ts';

interface Held {
  /** Undefined when the object is not a valid manifest of its database: kept so it is not re-read. */
  manifest?: BackupManifest;
  /** The generation at which it was read or noted (see refresh). */
  since: number;
}

export class ManifestCache {
  private readonly held = new Map<string, Held>();
  private generation = 0;

  /**
   * Lists a database's manifests, reads only the keys not held yet, forgets held keys the listing
   * no longer has; returns the database's manifests oldest first.
   */
  async refresh(store: ObjectStore, database: string): Promise<BackupManifest[]> {
    // A manifest noted while the listing is in flight may be missing from it: only entries held
    // before this refresh started are forgotten for being unlisted.
    const started = ++this.generation;
    const prefix = repository.manifestsPrefix('', database);
    const listed = (await store.list(prefix)).filter((o) => o.key.endsWith('.json')).map((o) => o.key);
    const present = new Set(listed);
    for (const [key, h] of this.held)
      if (key.startsWith(prefix) && !present.has(key) && h.since <= started) this.held.delete(key);
    await Promise.all(
      listed
        .filter((key) => !this.held.has(key))
        .map(async (key) => {
          const text = Buffer.from(await store.get(key)).toString('utf8');
          const parsed = parseManifest(text);
          const valid = parsed.ok && parsed.manifest.database === database;
          this.held.set(key, { manifest: valid ? parsed.manifest : undefined, since: started });
        }),
    );
    return [...this.held]
      .filter(([key, h]) => key.startsWith(prefix) && h.manifest)
      .sort(([a], [b]) => byBackupTime(a, b))
      .map(([, h]) => h.manifest!);
  }

  /** A manifest this process has just written: held without reading it back. */
  note(manifest: BackupManifest): void {
    const key = repository.manifest('', manifest.database, manifest.id);
    this.held.set(key, { manifest, since: ++this.generation });
  }
}
