// The rules `lifeboat compliance` checks, as an auditor (SOC 2, ISO 27001 A.17, PCI DSS) would
// state them, evaluated over what the plan says and what the repository holds. Pure: the starter
// reads the repository and hands the evidence in, so each rule is tested table-driven. A rule
// that cannot be proven fails: an unreadable manifest is not an encrypted one, and a plan that
// names a second location proves nothing until that location holds the backups.
import { databaseObjectives } from './drill.ts';
import { judge, type DrillReport } from './drill-report.ts';
import { formatDuration } from './duration.ts';
import type { BackupManifest } from './manifest.ts';
import type { Plan } from './plan.ts';
import type { WalListing } from './restore.ts';
import { continuity, segmentNumber, segmentOfLsn } from './wal.ts';

export const MAX_TIER1_BACKUP_AGE_MS = 4 * 3_600_000;
export const MAX_DRILL_AGE_MS = 90 * 86_400_000;

export const RULES = {
  'backup-fresh': 'Every tier-1 database has a verified backup younger than 4 h',
  'backups-encrypted': 'Every backup and archived WAL segment is encrypted (age)',
  'second-location': 'Tier-1 and tier-2 backups are copied to a second location',
  'drill-recent': 'A drill within the last 90 days met its RTO and RPO targets',
  'retention-years': "Retention keeps backups for at least the plan's required years",
  'wal-continuous': 'The WAL archive has no gap since the oldest verified full backup',
} as const;
export type RuleId = keyof typeof RULES;

export type RuleStatus = 'pass' | 'fail' | 'not-applicable';

export interface RuleResult {
  rule: RuleId;
  title: string;
  /** The database or backup policy the result is about. */
  subject: string;
  status: RuleStatus;
  /** Sentences an auditor can check against the repository: ids, keys, times. */
  evidence: string[];
}

/** What the repository holds for one database, read by the starter. */
export interface DatabaseEvidence {
  /** Readable manifests, oldest first, and those that are not. */
  manifests: BackupManifest[];
  unreadableManifests: { key: string; problems: string[] }[];
  /** Keys of the archived WAL objects (relative to the location). */
  walKeys: string[];
  wal: WalListing;
  drills: DrillReport[];
  unreadableDrills: { key: string; reason: string }[];
  /**
   * The second location's manifests of this database: ids found there, or why it could not be
   * read; null when the plan names no second location.
   */
  secondary: { url: string; backupIds: string[] } | { url: string; error: string } | null;
}

export interface ComplianceInput {
  plan: Plan;
  /** ISO-8601. */
  now: string;
  databases: Record<string, DatabaseEvidence>;
}

export interface ComplianceReport {
  plan: string;
  environment: Plan['environment'];
  evaluatedAt: string;
  passed: boolean;
  counts: Record<RuleStatus, number>;
  results: RuleResult[];
}

function result(rule: RuleId, subject: string, status: RuleStatus, evidence: string[]): RuleResult {
  return { rule, title: RULES[rule], subject, status, evidence };
}

const ago = (now: string, time: string) => formatDuration(Math.max(0, Date.parse(now) - Date.parse(time)));

/**
 * The verified backup that reaches furthest, by its consistent time: manifests list in key order,
 * where every full backup sorts before every incremental one, so list order is not time order.
 */
function newestVerified(manifests: BackupManifest[]): BackupManifest | undefined {
  return manifests
    .filter((m) => m.verification.verified)
    .reduce<BackupManifest | undefined>(
      (best, m) => (!best || Date.parse(m.stop.time) > Date.parse(best.stop.time) ? m : best),
      undefined,
    );
}

export function backupFresh(database: string, tier: number, ev: DatabaseEvidence, now: string): RuleResult {
  if (tier !== 1)
    return result('backup-fresh', database, 'not-applicable', [`tier ${tier}: the rule is for tier 1`]);
  const newest = newestVerified(ev.manifests);
  if (!newest)
    return result('backup-fresh', database, 'fail', [
      `no verified backup of ${database} (${ev.manifests.length} manifest(s), none verified)`,
    ]);
  const age = Date.parse(now) - Date.parse(newest.stop.time);
  const line = `newest verified backup ${newest.id} (${newest.kind}) consistent at ${newest.stop.time}, ${ago(
    now,
    newest.stop.time,
  )} ago; verified ${newest.verification.at} by ${newest.verification.method}`;
  return age < MAX_TIER1_BACKUP_AGE_MS
    ? result('backup-fresh', database, 'pass', [line])
    : result('backup-fresh', database, 'fail', [
        `${line}: older than ${formatDuration(MAX_TIER1_BACKUP_AGE_MS)}`,
      ]);
}

export function backupsEncrypted(database: string, ev: DatabaseEvidence): RuleResult {
  const problems: string[] = [];
  for (const u of ev.unreadableManifests)
    problems.push(`${u.key}: unreadable manifest, encryption cannot be shown (${u.problems.join('; ')})`);
  for (const m of ev.manifests) {
    if (m.encryption.format !== 'age' || m.encryption.recipients.length === 0)
      problems.push(`${m.id}: manifest does not record age encryption`);
    for (const o of m.objects)
      if (!o.format.endsWith('age')) problems.push(`${m.id}: object ${o.key} is stored as ${o.format}`);
  }
  const clearWal = ev.walKeys.filter((k) => !k.endsWith('.age'));
  for (const k of clearWal) problems.push(`${k}: archived WAL object is not age-encrypted`);
  if (ev.manifests.length === 0 && ev.unreadableManifests.length === 0 && ev.walKeys.length === 0)
    return result('backups-encrypted', database, 'fail', [
      `no backup of ${database}: nothing to show encrypted`,
    ]);
  if (problems.length) return result('backups-encrypted', database, 'fail', problems);
  const recipients = new Set(ev.manifests.flatMap((m) => m.encryption.recipients));
  return result('backups-encrypted', database, 'pass', [
    `${ev.manifests.length} backup manifest(s), every object age-encrypted to ${recipients.size} recipient(s): ${[
      ...recipients,
    ]
      .map((r) => `${r.slice(0, 12)}…`)
      .join(', ')}`,
    `${ev.walKeys.length} archived WAL object(s), all .age`,
  ]);
}

export function secondLocation(database: string, tier: number, ev: DatabaseEvidence): RuleResult {
  if (tier > 2)
    return result('second-location', database, 'not-applicable', [
      `tier ${tier}: the rule is for tiers 1 and 2`,
    ]);
  if (!ev.secondary)
    return result('second-location', database, 'fail', ['the plan declares no storage.secondary location']);
  if ('error' in ev.secondary)
    return result('second-location', database, 'fail', [
      `plan names ${ev.secondary.url}, which cannot be read: ${ev.secondary.error}`,
    ]);
  const copied = new Set(ev.secondary.backupIds);
  const verified = ev.manifests.filter((m) => m.verification.verified);
  const newest = newestVerified(ev.manifests);
  if (!newest)
    return result('second-location', database, 'fail', [`no verified backup of ${database} to have copied`]);
  const missing = verified.filter((m) => !copied.has(m.id)).map((m) => m.id);
  if (copied.has(newest.id))
    return result('second-location', database, 'pass', [
      `${ev.secondary.url} holds ${copied.size} backup manifest(s) of ${database}, the newest verified (${newest.id}) among them`,
      ...(missing.length ? [`not (yet) copied: ${missing.join(', ')}`] : []),
    ]);
  return result('second-location', database, 'fail', [
    `plan names ${ev.secondary.url}, but it does not hold the newest verified backup ${newest.id} ` +
      `(${copied.size} manifest(s) of ${database} there; Lifeboat does not copy backups to the second location yet)`,
  ]);
}

/**
 * The objectives a drill is judged against today: the drill workflow's own rule (databaseObjectives),
 * with where the targets came from, for the evidence.
 */
export function objectivesOf(
  database: string,
  db: Plan['databases'][string],
): {
  rtoMs: number;
  rpoMs: number;
  source: string;
} {
  const { rtoMs, rpoMs, fromPlan } = databaseObjectives(db);
  return {
    rtoMs,
    rpoMs,
    source: fromPlan ? `the plan's objectives for ${database}` : `tier ${db.tier}'s targets`,
  };
}

/**
 * A drill passes the rule when it passed and its measurements meet the database's objectives as
 * the plan states them now (a tier raised since the drill is judged by the new targets).
 */
export function drillRecent(
  database: string,
  targets: { rtoMs: number; rpoMs: number; source: string },
  ev: DatabaseEvidence,
  now: string,
): RuleResult {
  const since = Date.parse(now) - MAX_DRILL_AGE_MS;
  const recent = ev.drills
    .filter((d) => d.database === database && Date.parse(d.startedAt) >= since)
    .sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt));
  const describe = (d: DrillReport) =>
    `drill ${d.drillId} (${d.mode}) at ${d.startedAt}: ${d.outcome}, RTO ${
      d.measured.rtoMs === null ? 'not measured' : formatDuration(d.measured.rtoMs)
    } (target ${formatDuration(targets.rtoMs)}), RPO ${
      d.measured.rpoMs === null ? 'not measured' : formatDuration(d.measured.rpoMs)
    } (target ${formatDuration(targets.rpoMs)})`;
  const meets = (d: DrillReport) =>
    d.outcome === 'passed' &&
    judge(d.measured.rtoMs, targets.rtoMs) === 'met' &&
    judge(d.measured.rpoMs, targets.rpoMs) === 'met';
  const unreadable = ev.unreadableDrills.map((u) => `${u.key}: unreadable drill report (${u.reason})`);
  const good = recent.find(meets);
  if (good) return result('drill-recent', database, 'pass', [describe(good), ...unreadable]);
  const older = ev.drills.filter((d) => d.database === database && Date.parse(d.startedAt) < since);
  return result('drill-recent', database, 'fail', [
    recent.length
      ? `no drill since ${new Date(since).toISOString()} met ${targets.source}; the last ${Math.min(
          recent.length,
          3,
        )}:`
      : `no drill of ${database} since ${new Date(since).toISOString()} (${older.length} older report(s))`,
    ...recent.slice(0, 3).map(describe),
    ...unreadable,
  ]);
}

/** About how many years a backup policy's retention keeps its oldest backup. */
export function retentionYears(r: {
  daily: number;
  weekly: number;
  monthly: number;
  yearly: number;
}): number {
  return Math.max(r.daily / 365, (r.weekly * 7) / 365, r.monthly / 12, r.yearly);
}

export function retentionRule(policy: Plan['backup']['policies'][number]): RuleResult {
  const r = policy.retention;
  const kept = retentionYears(r);
  const line = `${policy.name} keeps ${r.daily} daily, ${r.weekly} weekly, ${r.monthly} monthly, ${r.yearly} yearly: about ${
    Math.round(kept * 10) / 10
  } year(s)`;
  if (r.requiredYears === undefined)
    return result('retention-years', policy.name, 'not-applicable', [
      `${line}; the policy states no retention.requiredYears`,
    ]);
  return kept >= r.requiredYears
    ? result('retention-years', policy.name, 'pass', [`${line}; required ${r.requiredYears}`])
    : result('retention-years', policy.name, 'fail', [
        `${line}; required ${r.requiredYears} (set retention.yearly to at least ${r.requiredYears})`,
      ]);
}

/**
 * From the oldest verified full backup's first segment, every archived segment must follow the
 * one before (the same continuity rule the archiver applies; a promotion's timeline switch
 * continues the archive, and a superseded timeline's later segments are skipped).
 */
export function walContinuous(database: string, ev: DatabaseEvidence): RuleResult {
  const size = ev.wal.walSegmentSize;
  const oldest = ev.manifests.find((m) => m.kind === 'full' && m.verification.verified);
  if (!oldest)
    return result('wal-continuous', database, 'fail', [
      `no verified full backup of ${database} anchors the archive`,
    ]);
  const first = segmentOfLsn(oldest.postgres.timeline, oldest.start.lsn, size);
  const firstNo = segmentNumber(first, size);
  const names = [...new Set([...ev.wal.segments, ...ev.wal.partials.map((p) => p.segment)])]
    .filter((s) => segmentNumber(s, size) >= firstNo)
    .sort((a, b) => segmentNumber(a, size) - segmentNumber(b, size) || a.localeCompare(b));
  if (names.length === 0)
    return result('wal-continuous', database, 'fail', [
      `no WAL archived since ${oldest.id} (from ${first}): nothing after that backup can be recovered`,
    ]);
  const gaps: string[] = [];
  if (segmentNumber(names[0]!, size) > firstNo)
    gaps.push(`${first} (the start of ${oldest.id}) is not archived`);
  let prev = names[0]!;
  let count = 1;
  for (const next of names.slice(1)) {
    const c = continuity(prev, next, size);
    if (c.kind === 'behind') continue;
    if (c.kind === 'gap') gaps.push(`${c.missing} segment(s) missing from ${c.expected} before ${next}`);
    prev = next;
    count++;
  }
  const span = `${count} segment(s) archived from ${names[0]} to ${prev} since ${oldest.id}`;
  return gaps.length
    ? result('wal-continuous', database, 'fail', [span, ...gaps])
    : result('wal-continuous', database, 'pass', [`${span}, no gap`]);
}

export function evaluateCompliance(input: ComplianceInput): ComplianceReport {
  const results: RuleResult[] = [];
  for (const [name, db] of Object.entries(input.plan.databases)) {
    const ev = input.databases[name];
    if (!ev) throw new Error(`no evidence gathered for database ${name}`);
    results.push(
      backupFresh(name, db.tier, ev, input.now),
      backupsEncrypted(name, ev),
      secondLocation(name, db.tier, ev),
      drillRecent(name, objectivesOf(name, db), ev, input.now),
      walContinuous(name, ev),
    );
  }
  for (const policy of input.plan.backup.policies) results.push(retentionRule(policy));
  const counts = { pass: 0, fail: 0, 'not-applicable': 0 };
  for (const r of results) counts[r.status]++;
  return {
    plan: input.plan.name,
    environment: input.plan.environment,
    evaluatedAt: input.now,
    passed: counts.fail === 0,
    counts,
    results,
  };
}
