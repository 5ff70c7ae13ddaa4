// The prefetch folder of a restored server (`<data dir>.lifeboat/prefetch/`): the names through
// which the background prefetcher (`lifeboat wal-fetch --prefetch-from`), the restore_command
// script and `lifeboat wal-fetch` itself talk. One place, since the script is written from them.
import type { RestoreTarget } from './restore.ts';
import { segmentOfLsn } from './wal.ts';

export const PREFETCH = {
  /** The prefetcher's pid: at most one runs per restored server. */
  lock: '.prefetcher',
  /** Left by a prefetcher as it exits, removed by whoever starts one: neither it nor a lock means one is starting. */
  stopped: '.stopped',
  /** The segment the prefetcher fetches next (the script waits for it and what follows). */
  next: '.next',
  /** The first segment the archive does not hold completed: its end. */
  end: '.end',
  /** Written once every timeline history file of the archive is there. */
  histories: '.histories',
  /** The newest segment replay asked `lifeboat wal-fetch` for. */
  wanted: '.wanted',
  /** Beside a segment's name: asked of the prefetcher by the script … */
  want: '.want',
  /** … and its answers: the bytes (kept for re-reads), not in the archive, or a storage error. */
  served: '.served',
  absent: '.absent',
  error: '.error',
} as const;

/**
 * Where replay will stop, as the target tells: the segment of a target LSN; for a target time, the
 * first segment holding a commit or abort at or after it (the prefetcher reads the times from the
 * segments it fetches). A named restore point and `latest` say nothing: no bound.
 */
export interface PrefetchUntil {
  segment?: string;
  time?: Date;
}

export function prefetchUntil(
  target: RestoreTarget,
  timeline: number,
  walSegmentSize: number,
): PrefetchUntil {
  if (target.kind === 'lsn') return { segment: segmentOfLsn(timeline, target.lsn, walSegmentSize) };
  if (target.kind === 'time') return { time: new Date(target.time) };
  return {};
}
