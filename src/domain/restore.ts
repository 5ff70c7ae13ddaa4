// Point-in-time restore as data: the target an operator types, the input of the workflow, the
// chain (a full backup and the WAL after it) that reaches a target, and the recoverable window
// that a target outside of is refused before any disk is touched. Pure: the workflow resolves the
// chain itself from what the listing activity returns, so the decision is in history.
import { z } from 'zod';
import type { ApprovalOutcome, ApprovalRecord, ApprovalState } from './approval.ts';
import { parseDuration } from './duration.ts';
import { parseLsn } from './lsn.ts';
import type { Plan } from './plan.ts';
import type { CatalogEntry } from './manifest.ts';
import { nextSegment, segmentEndLsn, segmentNumber, segmentOfLsn, timelineOf } from './wal.ts';

/** Where recovery stops. */
export type RestoreTarget =
  | { kind: 'time'; time: string }
  | { kind: 'lsn'; lsn: string }
  | { kind: 'name'; name: string }
  | { kind: 'latest' };

/** `2026-11-22T16:00:00Z`, `lsn:0/3000028`, `name:before-migration` or `latest`. */
export function parseRestoreTarget(
  text: string,
): { ok: true; target: RestoreTarget } | { ok: false; problem: string } {
  const t = text.trim();
  if (t === 'latest') return { ok: true, target: { kind: 'latest' } };
  if (t.startsWith('lsn:')) {
    const lsn = t.slice(4).toUpperCase();
    try {
      parseLsn(lsn);
    } catch {
      return { ok: false, problem: `"${t.slice(4)}" is not an LSN (expected e.g. lsn:0/3000028)` };
    }
    return { ok: true, target: { kind: 'lsn', lsn } };
  }
  if (t.startsWith('name:')) {
    const name = t.slice(5);
    // pg_create_restore_point takes at most 63 bytes (MAXFNAMELEN - 1).
    if (!name || name.length > 63 || name.includes("'"))
      return { ok: false, problem: 'a restore point name is 1 to 63 characters, without quotes' };
    return { ok: true, target: { kind: 'name', name } };
  }
  // An ISO-8601 time with an explicit offset: a restore target must never depend on a timezone.
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,6})?)?(Z|[+-]\d\d:?\d\d)$/.test(t))
    return {
      ok: false,
      problem: `"${t}" is not a target: expected an ISO-8601 time with offset (2026-11-22T16:00:00Z), lsn:<LSN>, name:<restore point> or latest`,
    };
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) return { ok: false, problem: `"${t}" is not a valid time` };
  // Kept as written: PostgreSQL compares commit times in microseconds, a JS Date only holds ms.
  return { ok: true, target: { kind: 'time', time: t } };
}

export function describeTarget(target: RestoreTarget): string {
  switch (target.kind) {
    case 'time':
      return target.time;
    case 'lsn':
      return `lsn:${target.lsn}`;
    case 'name':
      return `name:${target.name}`;
    case 'latest':
      return 'latest';
  }
}

export const restoreInputSchema = z.strictObject({
  /** A database of the plan. */
  database: z.string().min(1),
  /** As `lifeboat restore --to` takes it. */
  target: z.string().min(1),
  /** The region whose worker restores (its task queue). */
  region: z.string().min(1),
  /** Port of the restored server; a free one is picked when absent. */
  port: z.number().int().min(1024).max(65535).optional(),
  /** Where the data directory goes; default `<LIFEBOAT_RESTORE_ROOT>/<workflow id>/data`. */
  dataDir: z.string().min(1).optional(),
  /** After the target: `promote` (accept writes) or `pause` (read-only, for inspection). */
  action: z.enum(['promote', 'pause']).default('promote'),
  /** With a time or LSN target: stop just before it instead of just after. */
  inclusive: z.boolean().default(true),
  requestedBy: z.string().min(1).max(200).optional(),
  /**
   * After validation, wait for an approval (the failover policy's approvers, never the requester)
   * and then point the plan's DNS records of the database at the restore's region.
   */
  cutover: z.boolean().optional(),
  /** With cutover: wait at most this long (capped by the policy's timeout), e.g. `15m`. */
  approvalTimeout: z
    .string()
    .refine((d) => parseDuration(d) !== undefined, 'expected a duration such as 30s, 15m or 1h')
    .optional(),
});
export type RestoreInput = z.input<typeof restoreInputSchema>;

/** A restore's id (its workflow id): it names a folder, so never a path. */
export const RESTORE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** `discardRestoreWorkflow`: remove a restored instance (its server, data directory and sidecar). */
export const discardRestoreInputSchema = z.strictObject({
  /** The restore's id (its workflow id), which names its folder and its directory's marker. */
  restoreId: z
    .string()
    .max(200)
    .regex(RESTORE_ID, 'expected a restore id such as restore-orders-20261122T172300Z'),
  /** The region whose worker holds the instance. */
  region: z.string().min(1),
  /** The restore's data directory when it was not the default one. */
  dataDir: z.string().min(1).optional(),
  requestedBy: z.string().min(1).max(200).optional(),
});
export type DiscardRestoreInput = z.input<typeof discardRestoreInputSchema>;
export interface DiscardRestoreResult {
  restoreId: string;
  region: string;
  done: boolean;
  detail: string;
}
export type RestoreOptions = z.output<typeof restoreInputSchema>;

/** What the archive holds for a database: WAL file names as stored (no keys). */
export interface WalListing {
  /** Completed segments, e.g. 000000010000000000000003. */
  segments: string[];
  /** Partial segments: the segment and how far its newest upload reaches. */
  partials: { segment: string; upToLsn: string }[];
  walSegmentSize: number;
}

export interface RestoreWindow {
  /** The earliest reachable point: the oldest verified full backup's end. */
  from?: { lsn: string; time: string; backupId: string };
  /** The end of contiguous WAL after the newest backup: no restore can go further. */
  to?: { lsn: string; segment: string };
}

export interface RestoreChain {
  backup: CatalogEntry;
  /** First and last WAL segment replayed (the last may be a partial). */
  firstSegment: string;
  lastSegment: string;
  segments: number;
  /** Whether the last segment is only a partial upload. */
  endsInPartial: boolean;
  /** Where the archive's contiguous WAL ends after the backup. */
  archiveEndLsn: string;
  window: RestoreWindow;
}

export type ChainResolution =
  { ok: true; chain: RestoreChain } | { ok: false; problem: string; window: RestoreWindow };

/** The window in words, for errors and summaries. */
export function describeWindow(w: RestoreWindow): string {
  if (!w.from) return 'nothing is recoverable: no verified full backup';
  return `recoverable from ${w.from.time} (lsn ${w.from.lsn}, backup ${w.from.backupId}) to ${w.to ? `lsn ${w.to.lsn} (end of archived WAL)` : 'the end of that backup'}`;
}

/**
 * Where contiguous WAL starting at `first` ends: the last segment present without a hole, and the
 * LSN it reaches (a partial reaches its upload's LSN).
 */
export function contiguousEnd(
  first: string,
  wal: WalListing,
): { lastSegment: string; endLsn: string; count: number; endsInPartial: boolean } | undefined {
  const size = wal.walSegmentSize;
  const complete = new Set(wal.segments);
  const partial = new Map<string, string>();
  for (const p of wal.partials) {
    const known = partial.get(p.segment);
    if (!known || parseLsn(p.upToLsn) > parseLsn(known)) partial.set(p.segment, p.upToLsn);
  }
  let seg = first;
  let last: string | undefined;
  let count = 0;
  while (complete.has(seg)) {
    last = seg;
    count++;
    seg = nextSegment(seg, size);
  }
  const tail = partial.get(seg);
  if (tail) return { lastSegment: seg, endLsn: tail, count: count + 1, endsInPartial: true };
  if (!last) return undefined;
  return { lastSegment: last, endLsn: segmentEndLsn(last, size), count, endsInPartial: false };
}

/**
 * The chain for a target: the newest verified full backup that ends at or before it (for a named
 * restore point, whose position only the WAL knows, the oldest one: it reaches every point after
 * it), and the contiguous WAL after it. A target outside the window is refused with the window.
 */
export function resolveRestoreChain(input: {
  target: RestoreTarget;
  backups: CatalogEntry[];
  wal: WalListing;
  /** Workflow time, ISO-8601: a time target after it is in the future. */
  now: string;
}): ChainResolution {
  const size = input.wal.walSegmentSize;
  const full = input.backups
    .filter((b) => b.kind === 'full' && b.verified)
    .sort((a, b) => (parseLsn(a.stopLsn) < parseLsn(b.stopLsn) ? -1 : 1));
  const windowOf = (): RestoreWindow => {
    const oldest = full[0];
    if (!oldest) return {};
    const newest = full.at(-1)!;
    const end = contiguousEnd(segmentOfLsn(newest.timeline, newest.startLsn, size), input.wal);
    return {
      from: { lsn: oldest.stopLsn, time: oldest.time, backupId: oldest.id },
      ...(end ? { to: { lsn: end.endLsn, segment: end.lastSegment } } : {}),
    };
  };
  const window = windowOf();
  const fail = (problem: string): ChainResolution => ({
    ok: false,
    problem: `${problem}; ${describeWindow(window)}`,
    window,
  });
  if (full.length === 0) return fail('no verified full backup of this database');

  const t = input.target;
  let candidates: CatalogEntry[];
  switch (t.kind) {
    case 'time':
      if (Date.parse(t.time) > Date.parse(input.now))
        return fail(`target ${t.time} is in the future (now ${input.now})`);
      candidates = full.filter((b) => Date.parse(b.time) <= Date.parse(t.time));
      if (candidates.length === 0) return fail(`target ${t.time} is before the first full backup ended`);
      break;
    case 'lsn':
      candidates = full.filter((b) => parseLsn(b.stopLsn) <= parseLsn(t.lsn));
      if (candidates.length === 0) return fail(`target lsn ${t.lsn} is before the first full backup ended`);
      break;
    case 'name':
      candidates = full.slice(0, 1);
      break;
    case 'latest':
      candidates = full;
      break;
  }
  // Newest first, but only one whose WAL reaches past its own end (a backup's WAL is inside its
  // tar, so a backup with no archived WAL after it still restores to its own end).
  const ordered = t.kind === 'name' ? candidates : [...candidates].reverse();
  for (const backup of ordered) {
    const first = segmentOfLsn(backup.timeline, backup.startLsn, size);
    const end = contiguousEnd(first, input.wal);
    const archiveEndLsn = end?.endLsn ?? backup.stopLsn;
    if (t.kind === 'lsn' && parseLsn(t.lsn) > parseLsn(archiveEndLsn)) {
      if (backup === ordered[0])
        return fail(`target lsn ${t.lsn} is after the end of the archived WAL (${archiveEndLsn})`);
      continue;
    }
    return {
      ok: true,
      chain: {
        backup,
        firstSegment: first,
        lastSegment: end?.lastSegment ?? segmentOfLsn(backup.timeline, backup.stopLsn, size),
        segments: end?.count ?? 0,
        endsInPartial: end?.endsInPartial ?? false,
        archiveEndLsn,
        window,
      },
    };
  }
  return fail(`no backup reaches ${describeTarget(t)}`);
}

/** postgresql.auto.conf lines for the recovery target: exactly one target, and the action. */
export function recoverySettings(opts: {
  target: RestoreTarget;
  action: 'promote' | 'pause';
  inclusive: boolean;
  restoreCommand: string;
}): Record<string, string> {
  const settings: Record<string, string> = { restore_command: opts.restoreCommand };
  const t = opts.target;
  if (t.kind === 'time') settings.recovery_target_time = postgresTime(t.time);
  else if (t.kind === 'lsn') settings.recovery_target_lsn = t.lsn;
  else if (t.kind === 'name') settings.recovery_target_name = t.name;
  if (t.kind === 'time' || t.kind === 'lsn')
    settings.recovery_target_inclusive = opts.inclusive ? 'on' : 'off';
  // With no target PostgreSQL replays to the end of the archive and promotes by itself.
  if (t.kind !== 'latest') settings.recovery_target_action = opts.action;
  // Replay the timeline the backup was taken on and any newer one the archive holds.
  settings.recovery_target_timeline = 'latest';
  return settings;
}

/**
 * An ISO-8601 time as recovery_target_time accepts it: PostgreSQL's check refuses the `T`
 * separator and the `Z` zone of ISO-8601, so `2026-11-22 17:00:35.505511+00:00`.
 */
export function postgresTime(iso: string): string {
  return iso.replace('T', ' ').replace(/Z$/, '+00:00');
}

/** A setting value quoted for postgresql.conf. */
export function quoteSetting(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/**
 * Phases of a point-in-time restore, in order.
 * - `resolving`: the catalog and the WAL listing read, the chain chosen (or the target refused).
 * - `downloading`: base backup streamed storage → age → bsdtar into the fresh data directory.
 * - `replaying`: the restored server started; it fetches WAL through `lifeboat wal-fetch`.
 * - `validating`: the plan's validation queries, writes if promoted, every database connects.
 * - `awaiting-approval` (cutover only): the validated instance runs; approvers decide.
 * - `cutting-over` (cutover only, approved): the plan's DNS records move to the restore's region.
 * - `completed` / `failed`: final.
 */
export type RestorePhase =
  | 'resolving'
  | 'downloading'
  | 'replaying'
  | 'validating'
  | 'awaiting-approval'
  | 'cutting-over'
  | 'completed'
  | 'failed';

export interface RestoreProgress {
  restoreId: string;
  database: string;
  region: string;
  target: string;
  phase: RestorePhase;
  phaseSince: string;
  startedAt: string;
  chain?: { backupId: string; firstSegment: string; lastSegment: string; archiveEndLsn: string };
  dataDir?: string;
  port?: number;
  error?: string;
  /** With cutover: the approval gate (who decided, who is needed, until when). */
  approval?: ApprovalState;
}

/** Heartbeat of the download. */
export interface DownloadProgress {
  storedBytes: number;
  totalBytes: number;
  rawBytes: number;
}

/** The point recovery actually reached, read from the server. */
export interface AchievedPoint {
  lsn: string;
  /** pg_last_xact_replay_timestamp(): the last replayed transaction's commit time. */
  lastTransactionTime: string | null;
  timeline: number;
  /** Whether the server is out of recovery (promoted) or paused at the target. */
  state: 'promoted' | 'paused';
  /** `latest`, or a time past the archive's end: recovery stopped at the end of the archive. */
  reachedEndOfArchive: boolean;
}

export interface RestoreResult {
  restoreId: string;
  database: string;
  region: string;
  target: string;
  achieved: AchievedPoint;
  chain: {
    backupId: string;
    backupTime: string;
    firstSegment: string;
    lastSegment: string;
    archiveEndLsn: string;
  };
  /** How far the archive was behind the requested point, in words, when it could not go further. */
  note?: string;
  rto: {
    totalMs: number;
    resolveMs: number;
    downloadMs: number;
    startMs: number;
    replayMs: number;
    validateMs: number;
  };
  bytes: { stored: number; raw: number; walSegmentsFetched?: number };
  instance: { host: string; port: number; dataDir: string; url: string };
  validation: { name: string; ok: boolean; detail: string }[];
  /** Present when the request asked for a cutover. */
  cutover?: RestoreCutover;
}

/**
 * What a requested cutover did. Only `approved` changes DNS; the instance runs in every case.
 * `records` are the plan's records as the zone holds them after the change (approved) or as
 * they were left (otherwise).
 */
export interface RestoreCutover {
  outcome: Exclude<ApprovalOutcome, 'automatic'>;
  detail: string;
  decisions: ApprovalRecord[];
  records: { name: string; type: string; values: string[] }[];
  waitedMs: number;
  dnsMs?: number;
}

/**
 * Why a cutover of `database` to `region` cannot be asked for with this plan: it needs the
 * failover policy's approvers (a cutover is never automatic) and DNS records with values for
 * that region. Checked before any disk is touched.
 */
export function cutoverProblems(plan: Plan, database: string, region: string): string[] {
  const problems: string[] = [];
  const policy = plan.failover.policies.find((p) => p.database === database);
  if (!policy)
    problems.push(`the plan has no failover policy for ${database}: its approvers decide a cutover`);
  else if (policy.approval.approvers.length < policy.approval.minApprovals)
    problems.push(
      `the failover policy of ${database} lists ${policy.approval.approvers.length} approver(s) for ${policy.approval.minApprovals} approval(s): a cutover always needs human approval`,
    );
  const records = plan.dns?.records.filter((r) => r.database === database) ?? [];
  if (records.length === 0) problems.push(`the plan has no DNS records for ${database} to cut over`);
  for (const r of records)
    if (!r.values[region]) problems.push(`dns record ${r.name} has no values for region ${region}`);
  return problems;
}

/** Validations as data: a failing one fails the restore, with every result in the message. */
export function validationProblems(results: RestoreResult['validation']): string[] {
  return results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.detail}`);
}

/** Segment distance, for summaries ("12 segments of WAL"). */
export function segmentsBetween(first: string, last: string, segmentSize: number): number {
  if (timelineOf(first) !== timelineOf(last)) return 0;
  return segmentNumber(last, segmentSize) - segmentNumber(first, segmentSize) + 1;
}

/** The Web UI's summary of a finished restore (also what `lifeboat restore` prints). */
export function summarizeRestore(r: RestoreResult): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  return [
    `restored ${r.database} to ${r.target} in ${r.region}: reached lsn ${r.achieved.lsn}, last transaction ${r.achieved.lastTransactionTime ?? 'none replayed'}, timeline ${r.achieved.timeline}, ${r.achieved.state}`,
    ...(r.note ? [r.note] : []),
    `RTO ${s(r.rto.totalMs)}: download ${s(r.rto.downloadMs)}, start ${s(r.rto.startMs)}, replay ${s(r.rto.replayMs)}, validate ${s(r.rto.validateMs)}`,
    `chain: ${r.chain.backupId} + WAL ${r.chain.firstSegment}…${r.chain.lastSegment}; ${r.bytes.stored} bytes downloaded, ${r.bytes.raw} restored`,
    `connect: ${r.instance.url} (data directory ${r.instance.dataDir})`,
    ...(r.cutover
      ? [
          `cutover ${r.cutover.outcome}: ${r.cutover.detail}; DNS ${r.cutover.records.map((d) => `${d.name} → ${d.values.join(',') || '(none)'}`).join('; ')}`,
        ]
      : []),
  ].join('\n');
}
