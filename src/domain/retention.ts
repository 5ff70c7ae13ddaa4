// GFS retention as a pure function: which backups a policy keeps, which it deletes and why, and
// from which LSN the WAL archive must stay. Pure so that a dry run and the real run agree on every
// decision, and so that the workflow computing it stays deterministic.
//
// Safety rules, in the order they are applied (a later rule only ever adds to the kept set):
//   1. GFS: the newest verified backup of each of the N most recent days / ISO weeks / months /
//      years that have one (UTC calendar periods).
//   2. The newest verified full backup is always kept: a policy of zeros never empties the catalog.
//   3. PITR window: the newest verified full that stopped at or before `now - window` is kept, so
//      every point inside the window stays recoverable (base backup + WAL from its start).
//   4. Nothing younger than minAge, nothing under legal hold.
//   5. Chains: every kept incremental keeps its parent, transitively, back to its full.
// WAL is kept from the oldest kept full's start LSN onwards (a restore from it replays all of it).
import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { parseLsn } from './lsn.ts';
import type { LocationInventory, LocationName, LocationOutcome } from './retention-repository.ts';
import { segmentEndLsn } from './wal.ts';

export interface RetentionBackup {
  id: string;
  kind: 'full' | 'incremental';
  parent: string | null;
  /** When the backup became consistent (its stop time): the point it restores to. */
  time: string;
  startLsn: string;
  stopLsn: string;
  verified: boolean;
}

export interface RetentionPolicy {
  daily: number;
  weekly: number;
  monthly: number;
  yearly: number;
  minAgeMs: number;
}

export interface LegalHold {
  backupId: string;
  reason: string;
}

export interface RetentionInput {
  backups: RetentionBackup[];
  policy: RetentionPolicy;
  now: string;
  holds: LegalHold[];
  /** Every point in [now - window, now] must stay recoverable; 0 = only the newest backups. */
  pitrWindowMs: number;
}

export type KeepRule =
  | 'daily'
  | 'weekly'
  | 'monthly'
  | 'yearly'
  | 'newest-verified-full'
  | 'pitr-window'
  | 'min-age'
  | 'legal-hold'
  | 'chain';

export interface KeptBackup {
  id: string;
  kind: 'full' | 'incremental';
  time: string;
  /** Every rule that keeps it, with its detail (`daily 2026-11-22`, `chain of orders-incr-…`). */
  rules: { rule: KeepRule; detail: string }[];
}

export interface DeletedBackup {
  id: string;
  kind: 'full' | 'incremental';
  time: string;
  reason: string;
}

export interface RetentionPlan {
  /** Oldest first. */
  kept: KeptBackup[];
  /** Oldest first. */
  deleted: DeletedBackup[];
  /** WAL before this LSN is needed by no kept backup; null = keep all WAL (nothing kept yet). */
  walKeepFromLsn: string | null;
  /** Things an operator should know (a kept incremental whose parent is gone). */
  warnings: string[];
}

const DAY_MS = 86_400_000;

/** UTC calendar period keys of a time. ISO weeks start on Monday. */
export function periodKeys(iso: string): { daily: string; weekly: string; monthly: string; yearly: string } {
  const d = new Date(iso);
  const day = d.toISOString().slice(0, 10);
  // ISO week: the week's Thursday decides the year.
  const dow = (d.getUTCDay() + 6) % 7; // Monday = 0
  const thursday = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - dow + 3));
  const weekYear = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(weekYear, 0, 1)) / (7 * DAY_MS)) + 1;
  return {
    daily: day,
    weekly: `${weekYear}-W${String(week).padStart(2, '0')}`,
    monthly: day.slice(0, 7),
    yearly: day.slice(0, 4),
  };
}

const byTime = (a: RetentionBackup, b: RetentionBackup) =>
  Date.parse(a.time) - Date.parse(b.time) || a.id.localeCompare(b.id);

export function planRetention(input: RetentionInput): RetentionPlan {
  const backups = [...input.backups].sort(byTime);
  const byId = new Map(backups.map((b) => [b.id, b]));
  const rules = new Map<string, { rule: KeepRule; detail: string }[]>();
  const keep = (id: string, rule: KeepRule, detail: string) => {
    const list = rules.get(id) ?? [];
    if (!list.some((r) => r.rule === rule && r.detail === detail)) list.push({ rule, detail });
    rules.set(id, list);
  };
  const nowMs = Date.parse(input.now);
  const verified = backups.filter((b) => b.verified);

  // 1. GFS over verified backups (newest first): the newest of each of the N most recent periods.
  for (const period of ['daily', 'weekly', 'monthly', 'yearly'] as const) {
    const count = input.policy[period];
    const seen = new Set<string>();
    for (const b of [...verified].reverse()) {
      if (seen.size >= count) break;
      const key = periodKeys(b.time)[period];
      if (seen.has(key)) continue;
      seen.add(key);
      keep(b.id, period, `${period} ${key}`);
    }
  }

  // 2. The newest verified full, always.
  const fulls = verified.filter((b) => b.kind === 'full');
  const newestFull = fulls.at(-1);
  if (newestFull) keep(newestFull.id, 'newest-verified-full', 'newest verified full backup');

  // 3. PITR window: the full a restore to the window's oldest point starts from.
  let windowWarning: string | undefined;
  if (input.pitrWindowMs > 0) {
    const windowStart = nowMs - input.pitrWindowMs;
    const anchor = fulls.filter((b) => Date.parse(b.time) <= windowStart).at(-1);
    if (anchor)
      keep(anchor.id, 'pitr-window', `base of the PITR window from ${new Date(windowStart).toISOString()}`);
    else if (fulls.length)
      windowWarning = `no verified full backup at or before ${new Date(windowStart).toISOString()}: the PITR window starts at ${fulls[0]!.time}`;
  }

  // 4. Minimum age and legal holds, verified or not: these are promises, not choices.
  for (const b of backups) {
    if (nowMs - Date.parse(b.time) < input.policy.minAgeMs) keep(b.id, 'min-age', 'younger than minAge');
  }
  for (const h of input.holds) if (byId.has(h.backupId)) keep(h.backupId, 'legal-hold', h.reason);

  // 5. Chains back to the full.
  const warnings: string[] = windowWarning ? [windowWarning] : [];
  for (const id of [...rules.keys()]) {
    let child = byId.get(id)!;
    while (child.kind === 'incremental' && child.parent) {
      const parent = byId.get(child.parent);
      if (!parent) {
        warnings.push(`${child.id}: parent ${child.parent} is not in the catalog; its chain is broken`);
        break;
      }
      keep(parent.id, 'chain', `needed by ${id}`);
      child = parent;
    }
  }

  const kept: KeptBackup[] = [];
  const deleted: DeletedBackup[] = [];
  for (const b of backups) {
    const r = rules.get(b.id);
    if (r) kept.push({ id: b.id, kind: b.kind, time: b.time, rules: r });
    else deleted.push({ id: b.id, kind: b.kind, time: b.time, reason: deletionReason(b, input.policy) });
  }
  const keptFullStarts = kept
    .map((k) => byId.get(k.id)!)
    .filter((b) => b.kind === 'full')
    .map((b) => parseLsn(b.startLsn));
  const minStart = keptFullStarts.reduce<bigint | null>((m, l) => (m === null || l < m ? l : m), null);
  return {
    kept,
    deleted,
    walKeepFromLsn:
      minStart === null ? null : backups.find((b) => parseLsn(b.startLsn) === minStart)!.startLsn,
    warnings: [...new Set(warnings)],
  };
}

function deletionReason(b: RetentionBackup, policy: RetentionPolicy): string {
  if (!b.verified) return 'not verified, older than minAge, not held, needed by no kept backup';
  const counts = `daily ${policy.daily}, weekly ${policy.weekly}, monthly ${policy.monthly}, yearly ${policy.yearly}`;
  return `not the newest backup of a period the policy keeps (${counts}); older than minAge, not held, needed by no kept backup`;
}

/**
 * The archived WAL segments no kept backup needs: those that end at or before `keepFromLsn`.
 * Compared by position, whatever the timeline (a later timeline continues the same LSN space).
 */
export function expiredWalSegments(
  segments: string[],
  keepFromLsn: string | null,
  segmentSize: number,
): string[] {
  if (keepFromLsn === null) return [];
  const keepFrom = parseLsn(keepFromLsn);
  return segments.filter((s) => parseLsn(segmentEndLsn(s, segmentSize)) <= keepFrom);
}

/** The backups a plan deletes, applied to the catalog: what the catalog holds afterwards. */
export function applyRetention(backups: RetentionBackup[], plan: RetentionPlan): RetentionBackup[] {
  const gone = new Set(plan.deleted.map((d) => d.id));
  return backups.filter((b) => !gone.has(b.id));
}

/** One write-once legal-hold marker: a hold, or its release (a later hold holds again). */
export interface LegalHoldEvent {
  backupId: string;
  action: 'hold' | 'release';
  at: string;
  by: string;
  reason: string;
}

/** The holds in force: for each backup, its latest event is a hold. */
export function activeHolds(events: LegalHoldEvent[]): LegalHold[] {
  const latest = new Map<string, LegalHoldEvent>();
  for (const e of [...events].sort((a, b) => Date.parse(a.at) - Date.parse(b.at))) latest.set(e.backupId, e);
  return [...latest.values()]
    .filter((e) => e.action === 'hold')
    .map((e) => ({ backupId: e.backupId, reason: `legal hold by ${e.by} at ${e.at}: ${e.reason}` }));
}

export const retentionInputSchema = z.strictObject({
  database: z.string().min(1),
  /** Print what would go and why; delete nothing. */
  dryRun: z.boolean().default(false),
  /** The window that must stay recoverable; defaults to the policy's minAge. */
  pitrWindow: z
    .string()
    .refine((s) => parseDuration(s) !== undefined, 'expected a duration such as 7d')
    .optional(),
  /** Who asked: deletions are evidence, so the audit record names the person or the schedule. */
  requestedBy: z.string().min(1).max(200).optional(),
  /**
   * Kubernetes objects no snapshot index names are swept only once older than this (default 1d):
   * a backup still running may have uploaded them and not yet written the index naming them.
   */
  kubernetesGrace: z
    .string()
    .refine((s) => parseDuration(s) !== undefined, 'expected a duration such as 1d')
    .optional(),
});
export type RetentionWorkflowInput = z.input<typeof retentionInputSchema>;
export type RetentionRunInput = z.output<typeof retentionInputSchema>;

/** What the workflow reads before deciding: the catalog, the holds, the WAL archive's listing. */
export interface RetentionInventory {
  database: string;
  policy: RetentionPolicy;
  backups: (RetentionBackup & { objectKeys: string[] })[];
  holdEvents: LegalHoldEvent[];
  /** Archived WAL: completed segment names with every object key stored for them. */
  wal: { segment: string; keys: string[] }[];
  walSegmentSize: number | null;
  /** Manifests that could not be read: reported; their backups are never touched. */
  problems: string[];
  /**
   * Each storage location on its own (primary, then secondary when the plan names one); `backups`
   * above is their union. Absent from inventories read before retention covered both.
   */
  locations?: LocationInventory[];
  /** Clusters whose Kubernetes objects this database's backups export (to sweep). */
  clusters?: string[];
}

/** An object that Object Lock (retention or legal hold) protects: skipped, never deleted. */
export interface LockedObject {
  key: string;
  why: string;
  /** Where, when the plan has two storage locations. */
  location?: LocationName;
}

export interface RetentionResult {
  database: string;
  dryRun: boolean;
  now: string;
  pitrWindowMs: number;
  plan: RetentionPlan;
  /** Backups whose manifest and objects were deleted, from every location that held them (empty in a dry run). */
  deletedBackups: string[];
  /** Backups left in place (at one location or both) because an object of theirs is locked. */
  skippedBackups: { id: string; locked: LockedObject[] }[];
  /** WAL objects the plan expires (deleted unless dry run), and those left because locked; summed over locations. */
  wal: { expired: number; deleted: number; locked: LockedObject[]; keepFromLsn: string | null };
  problems: string[];
  /** Per storage location: what went (or would go) there, Kubernetes sweeps and WAL partials. */
  locations?: LocationOutcome[];
}

/**
 * The backup `id` stands on: its parent chain back to the full (oldest last). A backup that must
 * stay (left under Object Lock) keeps these too, or the catalog would list a broken chain.
 */
export function ancestorsOf(backups: RetentionBackup[], id: string): string[] {
  const byId = new Map(backups.map((b) => [b.id, b]));
  const out: string[] = [];
  for (
    let b = byId.get(id);
    b?.parent && byId.has(b.parent) && !out.includes(b.parent);
    b = byId.get(b.parent)
  )
    out.push(b.parent);
  return out;
}

/** The lower of two LSN bounds (null = no bound). */
export function lowerLsn(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return parseLsn(a) <= parseLsn(b) ? a : b;
}
