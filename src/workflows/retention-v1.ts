// Retention as it was before it covered the whole repository (patched('retention-repository')):
// the primary location's backups and WAL only. Kept unchanged so that runs recorded before it
// (test/replay/retention-*.history.json) replay; new runs take the path in retention.ts.
import { proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import { parseDuration } from '../domain/duration.ts';
import {
  activeHolds,
  ancestorsOf,
  expiredWalSegments,
  lowerLsn,
  planRetention,
  type RetentionRunInput,
  type RetentionResult,
} from '../domain/retention.ts';
import { NON_RETRYABLE_ERROR_TYPES } from '../domain/errors.ts';
import type { Activities } from '../activities/index.ts';

/** Listing and deleting objects: short calls, retried with backoff. */
const apiCall = {
  startToCloseTimeout: '5m',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 6,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
} as const;

/** WAL objects per deletion activity: bounded so each call stays well inside its timeout. */
const WAL_BATCH = 200;

const { readRetentionInventory, deleteBackup, deleteWalObjects } = proxyActivities<Activities>(apiCall);

export async function retentionPrimaryOnly(input: RetentionRunInput): Promise<RetentionResult> {
  const inv = await readRetentionInventory({ database: input.database });
  const now = new Date().toISOString();
  const pitrWindowMs = input.pitrWindow ? parseDuration(input.pitrWindow)! : inv.policy.minAgeMs;
  const plan = planRetention({
    backups: inv.backups,
    policy: inv.policy,
    now,
    holds: activeHolds(inv.holdEvents),
    pitrWindowMs,
  });
  const expiredSegments = new Set(
    inv.walSegmentSize === null
      ? []
      : expiredWalSegments(
          inv.wal.map((w) => w.segment),
          plan.walKeepFromLsn,
          inv.walSegmentSize,
        ),
  );
  const walKeys = inv.wal.filter((w) => expiredSegments.has(w.segment)).flatMap((w) => w.keys);
  const result: RetentionResult = {
    database: input.database,
    dryRun: input.dryRun,
    now,
    pitrWindowMs,
    plan,
    deletedBackups: [],
    skippedBackups: [],
    wal: { expired: walKeys.length, deleted: 0, locked: [], keepFromLsn: plan.walKeepFromLsn },
    problems: [...inv.problems, ...plan.warnings],
  };
  setCurrentDetails(
    `${input.dryRun ? '**dry run** — would delete' : 'deleting'} ${plan.deleted.length} backup(s), keeping ${plan.kept.length}; ${walKeys.length} WAL object(s) expired`,
  );
  if (input.dryRun) return result;

  const byId = new Map(inv.backups.map((b) => [b.id, b]));
  // Backups an expired-but-locked backup stands on: left too, so no chain in the catalog breaks.
  const standing = new Map<string, string>();
  // Newest first: an incremental goes before the backups its (also expired) chain builds on.
  for (const d of [...plan.deleted].reverse()) {
    const child = standing.get(d.id);
    const r = child
      ? { deleted: false, locked: [{ key: d.id, why: `needed by ${child}, left under Object Lock` }] }
      : await deleteBackup({
          database: input.database,
          id: d.id,
          objectKeys: byId.get(d.id)?.objectKeys ?? [],
        });
    if (r.deleted) {
      result.deletedBackups.push(d.id);
      continue;
    }
    result.skippedBackups.push({ id: d.id, locked: r.locked });
    for (const a of ancestorsOf(inv.backups, d.id)) if (!standing.has(a)) standing.set(a, d.id);
    // What stays keeps its WAL: its start onwards is not pruned.
    result.wal.keepFromLsn = lowerLsn(result.wal.keepFromLsn, byId.get(d.id)?.startLsn ?? null);
  }
  const stillExpired = new Set(
    inv.walSegmentSize === null
      ? []
      : expiredWalSegments([...expiredSegments], result.wal.keepFromLsn, inv.walSegmentSize),
  );
  const walToDelete = inv.wal.filter((w) => stillExpired.has(w.segment)).flatMap((w) => w.keys);
  // An unreadable manifest means the catalog is incomplete: a backup we cannot see may need WAL.
  if (inv.problems.length === 0) {
    for (let i = 0; i < walToDelete.length; i += WAL_BATCH) {
      const r = await deleteWalObjects({ keys: walToDelete.slice(i, i + WAL_BATCH) });
      result.wal.deleted += r.deleted;
      result.wal.locked.push(...r.locked);
    }
  } else {
    result.problems.push('WAL not pruned: the catalog has unreadable manifests, whose backups may need it');
  }
  setCurrentDetails(
    `deleted ${result.deletedBackups.length} backup(s), ${result.skippedBackups.length} skipped (Object Lock); ${result.wal.deleted} WAL object(s) deleted`,
  );
  return result;
}
