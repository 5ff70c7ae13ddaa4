// What `lifeboat doctor` checks and how its findings read. Each external system answers with
// facts; the workflow compares them with the plan. Findings are data, never exceptions, so one
// unreachable system does not hide what the others said.
import { formatDuration } from './duration.ts';
import { lsnDistance } from './lsn.ts';
import type { Plan } from './plan.ts';

export type CheckSystem = 'postgres' | 'storage' | 'dns' | 'kubernetes' | 'worker';

export interface Finding {
  system: CheckSystem;
  /** What was checked: `orders@us-east-1`, `s3://lifeboat-backups/lifeboat`, a zone, a cluster, a region's worker. */
  target: string;
  region?: string;
  ok: boolean;
  /** One line an operator can act on: what is off and where, or what was seen. */
  detail: string;
}

export interface DoctorInput {
  /** Who asked; recorded in history and search attributes. */
  requestedBy?: string;
  /** Restrict to these plan databases; default all. */
  databases?: string[];
}

export interface DoctorReport {
  plan: string;
  ok: boolean;
  findings: Finding[];
  /** How long the whole check took, from the workflow's clock. */
  durationMs: number;
}

/** What an activity learns from one PostgreSQL server. */
export interface PostgresFacts {
  reachable: boolean;
  error?: string;
  serverVersion?: string;
  inRecovery?: boolean;
  /** pg_current_wal_lsn() on a primary; pg_last_wal_replay_lsn() on a replica. */
  lsn?: string;
  receiveLsn?: string;
  walReceiverStatus?: string;
  /** Seconds since the last replayed transaction (replicas). */
  replayDelaySeconds?: number | null;
  /** Standbys connected to a primary, by application name / slot. */
  standbys?: { name: string; state: string; replayLsn: string | null }[];
  slots?: { name: string; active: boolean }[];
}

export function postgresFindings(
  plan: Plan,
  database: string,
  facts: Record<string, PostgresFacts>,
): Finding[] {
  const db = plan.databases[database]!;
  const findings: Finding[] = [];
  const primary = facts[db.primaryRegion];
  const target = (region: string) => `${database}@${region}`;
  if (primary) {
    findings.push(
      !primary.reachable
        ? {
            system: 'postgres',
            target: target(db.primaryRegion),
            region: db.primaryRegion,
            ok: false,
            detail: `unreachable: ${primary.error}`,
          }
        : primary.inRecovery
          ? {
              system: 'postgres',
              target: target(db.primaryRegion),
              region: db.primaryRegion,
              ok: false,
              detail: `PostgreSQL ${primary.serverVersion} is in recovery, but the plan says this region holds the primary`,
            }
          : {
              system: 'postgres',
              target: target(db.primaryRegion),
              region: db.primaryRegion,
              ok: true,
              detail: `primary, PostgreSQL ${primary.serverVersion}, WAL at ${primary.lsn}`,
            },
    );
  }
  for (const replica of db.replicas) {
    const f = facts[replica.region];
    if (!f) continue;
    const base = { system: 'postgres' as const, target: target(replica.region), region: replica.region };
    if (!f.reachable) {
      findings.push({ ...base, ok: false, detail: `replica unreachable: ${f.error}` });
      continue;
    }
    if (!f.inRecovery) {
      findings.push({
        ...base,
        ok: false,
        detail: `PostgreSQL ${f.serverVersion} accepts writes (not in recovery), but the plan says it is a replica`,
      });
      continue;
    }
    const problems: string[] = [];
    if (f.walReceiverStatus !== 'streaming')
      problems.push(`WAL receiver is ${f.walReceiverStatus ?? 'not running'}`);
    const slot =
      replica.slot && primary?.reachable ? primary.slots?.find((s) => s.name === replica.slot) : undefined;
    if (replica.slot && primary?.reachable && !slot)
      problems.push(`slot ${replica.slot} missing on the primary`);
    else if (slot && !slot.active) problems.push(`slot ${replica.slot} is inactive`);
    const lag = primary?.reachable && primary.lsn && f.lsn ? lsnDistance(primary.lsn, f.lsn) : undefined;
    const delay = f.replayDelaySeconds;
    const lagText = [
      lag !== undefined ? `${lag} bytes behind` : 'lag unknown (primary unreachable)',
      delay !== null && delay !== undefined
        ? `last replayed transaction ${formatDuration(delay * 1000)} ago`
        : undefined,
    ]
      .filter(Boolean)
      .join(', ');
    findings.push({
      ...base,
      ok: problems.length === 0,
      detail: problems.length
        ? `replica: ${problems.join('; ')} (${lagText})`
        : `replica streaming, ${lagText}`,
    });
  }
  return findings;
}

/** One line for the Web UI and notifications. */
export function summarizeReport(report: DoctorReport): string {
  const off = report.findings.filter((f) => !f.ok);
  return off.length === 0
    ? `doctor: all ${report.findings.length} checks passed for plan ${report.plan}`
    : `doctor: ${off.length} of ${report.findings.length} checks failed for plan ${report.plan}: ${off
        .map((f) => `${f.system} ${f.target}`)
        .join(', ')}`;
}
