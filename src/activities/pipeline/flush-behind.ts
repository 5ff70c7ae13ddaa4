// Writes back each file of a restore as soon as tar has finished it, while tar writes the next.
// Why: tar leaves 1.5 GB of the benchmark's data directory dirty in the page cache, and
// PostgreSQL's start-up sync then waits for all of it to reach the disk (0.5-0.8 s of the
// restore's RTO on the benchmark's machine), where the disk sat idle during the download. Flushed
// behind tar, that sync finds almost nothing left to write. Only finished files are flushed: one
// tar is still writing would make both wait on each other's page locks. bsdtar (-v) ends a
// member's line only once the member is written, so a whole line names a finished file.
import fs from 'node:fs';
import path from 'node:path';

export interface FlushBehind {
  /** tar (`-v`) has written this member. */
  finished(member: string): void;
  /** tar has exited. Resolves once every flush has ended. */
  finish(): Promise<FlushCount>;
}

export interface FlushCount {
  flushed: number;
  /** Members that could not be opened or synced (symlinks, vanished files): left to the server's sync. */
  skipped: number;
}

export function flushBehind(dataDir: string): FlushBehind {
  const root = path.resolve(dataDir);
  const flushes: Promise<void>[] = [];
  const count: FlushCount = { flushed: 0, skipped: 0 };
  const flush = (member: string) => {
    const file = path.resolve(root, member);
    // Directories (tar names them with a trailing slash) and anything outside the directory.
    if (member.endsWith('/') || !file.startsWith(`${root}${path.sep}`)) return;
    flushes.push(
      (async () => {
        // O_NOFOLLOW: a symlink (pg_tblspc) is not ours to sync; the server syncs what it points at.
        const handle = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
        try {
          await handle.datasync();
        } finally {
          await handle.close();
        }
      })().then(
        () => void count.flushed++,
        () => void count.skipped++,
      ),
    );
  };
  return {
    finished: flush,
    async finish() {
      await Promise.all(flushes);
      return { ...count };
    },
  };
}
