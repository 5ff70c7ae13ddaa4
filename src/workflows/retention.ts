// Retention: GFS pruning of one database's backups and archived WAL, at every storage location.
// The plan is computed in the workflow from an inventory read by an activity (so a dry run and the
// real run decide alike, and the decision is in history), from the union of both locations'
// catalogs; each location then carries it out on its own: deletions are activities that check S3
// Object Lock there first and are idempotent, so a worker lost mid-way is simply retried. With
// the backups go their Kubernetes snapshot indexes, then each cluster's objects no remaining index
// names are swept, and WAL partial uploads superseded by their complete segment are pruned.
// Workflow id retention-<db>: one at a time.
import { patched, proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import { parseDuration } from '../domain/duration.ts';
import { NON_RETRYABLE_ERROR_TYPES } from '../domain/errors.ts';
import { repository } from '../domain/repository.ts';
import {
  activeHolds,
  ancestorsOf,
  expiredWalSegments,
  lowerLsn,
  planRetention,
  retentionInputSchema,
  type LockedObject,
  type RetentionInventory,
  type RetentionPlan,
  type RetentionResult,
  type RetentionWorkflowInput,
} from '../domain/retention.ts';
import {
  supersededPartials,
  type LocationInventory,
  type LocationOutcome,
} from '../domain/retention-repository.ts';
import { parseWorkflowInput } from './input.ts';
import { retentionPrimaryOnly } from './retention-v1.ts';
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

const { readRetentionInventory, deleteBackup, deleteWalObjects } = proxyActivities<Activities>(apiCall);
/**
 * The sweep reads every snapshot index and may delete many objects in one call: it may take long,
 * and heartbeats as it goes, so that a lost worker is noticed without cutting a long sweep short.
 */
const { sweepKubernetesObjects } = proxyActivities<Activities>({
  ...apiCall,
  startToCloseTimeout: '1h',
  heartbeatTimeout: '2m',
});

/** WAL objects per deletion activity: bounded so each call stays well inside its timeout. */
const WAL_BATCH = 200;

/** Both locations, Kubernetes objects, WAL partials: runs recorded before it replay the old path. */
export const RETENTION_REPOSITORY_PATCH = 'retention-repository';

/** Unreferenced Kubernetes objects younger than this stay: longer than any backup runs. */
const DEFAULT_KUBERNETES_GRACE = '1d';

export async function retentionWorkflow(rawInput: RetentionWorkflowInput): Promise<RetentionResult> {
  const input = parseWorkflowInput(retentionInputSchema, rawInput ?? {}, 'retentionWorkflow');
  if (!patched(RETENTION_REPOSITORY_PATCH)) return retentionPrimaryOnly(input);

  const inv = await readRetentionInventory({ database: input.database });
  const now = new Date().toISOString();
  const pitrWindowMs = input.pitrWindow ? parseDuration(input.pitrWindow)! : inv.policy.minAgeMs;
  const graceMs = parseDuration(input.kubernetesGrace ?? DEFAULT_KUBERNETES_GRACE)!;
  const plan = planRetention({
    backups: inv.backups,
    policy: inv.policy,
    now,
    holds: activeHolds(inv.holdEvents),
    pitrWindowMs,
  });
  // An inventory without locations (as read before they existed) describes the primary alone.
  const locations = inv.locations ?? [
    {
      location: 'primary' as const,
      url: 'primary',
      backups: inv.backups.map((b) => ({ id: b.id, objectKeys: b.objectKeys })),
      wal: inv.wal,
      problems: inv.problems,
    },
  ];
  const result: RetentionResult = {
    database: input.database,
    dryRun: input.dryRun,
    now,
    pitrWindowMs,
    plan,
    deletedBackups: [],
    skippedBackups: [],
    wal: { expired: 0, deleted: 0, locked: [], keepFromLsn: plan.walKeepFromLsn },
    problems: [...inv.problems, ...plan.warnings],
    locations: [],
  };
  setCurrentDetails(
    `${input.dryRun ? '**dry run** — would delete' : 'deleting'} ${plan.deleted.length} backup(s), keeping ${plan.kept.length}, at ${locations.map((l) => l.location).join(' and ')}`,
  );
  for (const loc of locations) {
    const outcome = await applyAt(loc, inv, plan, {
      dryRun: input.dryRun,
      graceMs,
      database: input.database,
    });
    result.locations!.push(outcome);
  }

  // The summary over locations: a backup is deleted when it went from every location holding it.
  const outcomes = result.locations!;
  const skipped = new Map<string, LockedObject[]>();
  for (const o of outcomes)
    for (const s of o.skipped)
      skipped.set(s.id, [
        ...(skipped.get(s.id) ?? []),
        ...s.locked.map((l) => (outcomes.length > 1 ? { ...l, location: o.location } : l)),
      ]);
  // Newest first, the order they are deleted in.
  for (const d of [...plan.deleted].reverse()) {
    if (skipped.has(d.id)) result.skippedBackups.push({ id: d.id, locked: skipped.get(d.id)! });
    else if (outcomes.some((o) => o.deleted.includes(d.id))) result.deletedBackups.push(d.id);
  }
  for (const o of outcomes) {
    result.wal.expired += o.wal.expired;
    result.wal.deleted += o.wal.deleted;
    result.wal.locked.push(...o.wal.locked, ...o.partials.locked);
    result.wal.keepFromLsn = lowerLsn(result.wal.keepFromLsn, o.wal.keepFromLsn);
    for (const k of o.kubernetes) result.problems.push(...k.problems);
  }
  if (inv.problems.length && !input.dryRun)
    result.problems.push('WAL not pruned: the catalog has unreadable manifests, whose backups may need it');
  setCurrentDetails(
    `deleted ${result.deletedBackups.length} backup(s), ${result.skippedBackups.length} skipped (Object Lock); ${result.wal.deleted} WAL object(s) deleted`,
  );
  return result;
}

/** A backup's Kubernetes snapshot index, as its manifest at any location names it. */
function snapshotOf(inv: RetentionInventory, id: string): string | undefined {
  for (const l of inv.locations ?? []) {
    const s = l.backups.find((b) => b.id === id)?.snapshot;
    if (s) return s;
  }
  return undefined;
}

/** The plan carried out (or, in a dry run, described) at one storage location. */
async function applyAt(
  loc: LocationInventory,
  inv: RetentionInventory,
  plan: RetentionPlan,
  opts: { dryRun: boolean; graceMs: number; database: string },
): Promise<LocationOutcome> {
  const here = new Map(loc.backups.map((b) => [b.id, b]));
  const byId = new Map(inv.backups.map((b) => [b.id, b]));
  const expiredHere = plan.deleted.filter((d) => here.has(d.id)).map((d) => d.id);
  const outcome: LocationOutcome = {
    location: loc.location,
    url: loc.url,
    expired: expiredHere,
    deleted: [],
    skipped: [],
    wal: { expired: 0, deleted: 0, locked: [], keepFromLsn: plan.walKeepFromLsn },
    partials: { superseded: 0, deleted: 0, locked: [] },
    kubernetes: [],
    incomplete: [],
  };
  const walKeys = (keepFromLsn: string | null) => {
    const expired = new Set(
      inv.walSegmentSize === null
        ? []
        : expiredWalSegments(
            loc.wal.map((w) => w.segment),
            keepFromLsn,
            inv.walSegmentSize,
          ),
    );
    return loc.wal.filter((w) => expired.has(w.segment)).flatMap((w) => w.keys);
  };
  const expiredWal = walKeys(plan.walKeepFromLsn);
  outcome.wal.expired = expiredWal.length;

  // Snapshot indexes deleted with their backups here (only where they were stored).
  const snapshotsDeleted: string[] = [];
  if (!opts.dryRun) {
    // Backups an expired-but-locked backup stands on here: left too, so no chain here breaks.
    const standing = new Map<string, string>();
    // Newest first: an incremental goes before the backups its (also expired) chain builds on.
    // Every expired backup, also those without a manifest here: an unfinished copy leaves objects
    // under the backup's folder that no catalog here lists, and they would stay forever.
    for (const { id } of [...plan.deleted].reverse()) {
      const child = standing.get(id);
      const stored = here.get(id);
      const snapshot = stored?.snapshot ?? snapshotOf(inv, id);
      const r: { deleted: boolean; locked: LockedObject[]; snapshot?: string; removed?: number } = child
        ? { deleted: false, locked: [{ key: id, why: `needed by ${child}, left under Object Lock` }] }
        : await deleteBackup({
            database: opts.database,
            id,
            objectKeys: stored?.objectKeys ?? [],
            location: loc.location,
            ...(snapshot ? { snapshot } : {}),
          });
      if (r.deleted) {
        if (stored) outcome.deleted.push(id);
        else if (r.removed) outcome.incomplete.push(id);
        if (r.snapshot) snapshotsDeleted.push(r.snapshot);
        continue;
      }
      // Nothing of it here (no manifest, nothing stored) is nothing to keep here.
      if (!stored && child) continue;
      outcome.skipped.push({ id, locked: r.locked });
      for (const a of ancestorsOf(inv.backups, id)) if (!standing.has(a)) standing.set(a, id);
      // What stays here keeps its WAL here: its start onwards is not pruned at this location.
      outcome.wal.keepFromLsn = lowerLsn(outcome.wal.keepFromLsn, byId.get(id)?.startLsn ?? null);
    }
  }

  // An unreadable manifest (at either location) means the catalog is incomplete: a backup we
  // cannot see may need WAL. Partials are another matter: their complete segment holds their bytes.
  const walToDelete = inv.problems.length === 0 ? walKeys(outcome.wal.keepFromLsn) : [];
  const gone = new Set(walToDelete);
  const partials = supersededPartials(loc.wal).filter((k) => !gone.has(k));
  outcome.partials.superseded = partials.length;
  if (!opts.dryRun) {
    for (let i = 0; i < walToDelete.length; i += WAL_BATCH) {
      const r = await deleteWalObjects({ keys: walToDelete.slice(i, i + WAL_BATCH), location: loc.location });
      outcome.wal.deleted += r.deleted;
      outcome.wal.locked.push(...r.locked);
    }
    for (let i = 0; i < partials.length; i += WAL_BATCH) {
      const r = await deleteWalObjects({ keys: partials.slice(i, i + WAL_BATCH), location: loc.location });
      outcome.partials.deleted += r.deleted;
      outcome.partials.locked.push(...r.locked);
    }
  }

  // Snapshot indexes went with their backups; now the objects no remaining index names. A dry
  // run sweeps as if the expired backups' indexes were gone.
  const wouldGo = expiredHere.flatMap((id) => (here.get(id)?.snapshot ? [here.get(id)!.snapshot!] : []));
  for (const cluster of inv.clusters ?? []) {
    const sweep = await sweepKubernetesObjects({
      location: loc.location,
      cluster,
      graceMs: opts.graceMs,
      dryRun: opts.dryRun,
      ...(opts.dryRun ? { deleting: wouldGo } : {}),
    });
    if (!opts.dryRun)
      sweep.snapshotsDeleted = snapshotsDeleted.filter((k) =>
        k.startsWith(repository.clusterSnapshotsPrefix('', cluster)),
      ).length;
    outcome.kubernetes.push(sweep);
  }
  return outcome;
}
