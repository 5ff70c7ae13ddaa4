// The Temporal Schedules a plan asks for, and how they differ from the ones that exist: the pure half
// of `lifeboat apply` (the CLI lists, creates, updates and deletes; this decides what to do).
// Also the input and result of scheduledBackupWorkflow, the wrapper that schedules start.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { scheduleIds, workflowIds } from './naming.ts';
import type { Plan } from './plan.ts';

/** Workflows and region-agnostic activities: where every scheduled workflow runs. */
export const SCHEDULE_TASK_QUEUE = 'lifeboat';

/**
 * How late a schedule may still fire after Temporal (or its worker) was down. Long on purpose:
 * a late backup is better than none, and a policy that says otherwise sets a start window, which
 * the wrapper enforces and records as "missed" — a firing dropped by Temporal records nothing.
 */
export const CATCHUP_WINDOW = '1d';

/** Retention runs once a day per database; the jitter spreads databases apart. */
export const RETENTION_SPEC = { every: '1d', jitter: '30m' } as const;

/** Set by Temporal on every workflow a schedule starts: the time it was due, not when it began. */
export const scheduledStartTime = defineSearchAttributeKey(
  'TemporalScheduledStartTime',
  SearchAttributeType.DATETIME,
);

/** Memo key on every schedule apply creates: apply only ever updates or prunes these. */
export const MANAGED_MEMO_KEY = 'lifeboat';
export const MANAGED_BY = 'lifeboat apply';

export type ScheduleKind = 'backup-full' | 'backup-incremental' | 'retention' | 'drill';

export interface ScheduleSpecFromPlan {
  cron?: string;
  every?: string;
  jitter?: string;
}

/** One schedule as the plan wants it. */
export interface DesiredSchedule {
  id: string;
  kind: ScheduleKind;
  /** The plan policy it comes from (retention: the backup policy of that database). */
  policy: string;
  database: string;
  spec: ScheduleSpecFromPlan;
  workflowType: string;
  taskQueue: string;
  /** Temporal appends the scheduled time to it for each run. */
  workflowId: string;
  args: unknown[];
  overlap: 'SKIP';
  catchupWindow: string;
  summary: string;
  /** Of everything above but the id: changes when, and only when, the schedule must be updated. */
  fingerprint: string;
}

/** What apply reads back from an existing schedule (its memo and its note, and what it runs). */
export interface ExistingSchedule {
  id: string;
  /** The plan named in the managed memo; undefined for a schedule Lifeboat did not create. */
  managedByPlan?: string;
  fingerprint?: string;
  /** As described by Temporal (for the ids the plan wants): edits by hand show up here. */
  actual?: ActualSchedule;
}

/** The parts of a described schedule that apply compares with the plan (durations in ms). */
export interface ActualSchedule {
  workflowType?: string;
  taskQueue?: string;
  args?: readonly unknown[];
  overlap?: string;
  catchupWindowMs?: number;
  intervalsMs: number[];
  jitterMs?: number;
  calendars: number;
}

export type ScheduleChange =
  | {
      action: 'create' | 'update' | 'unchanged';
      id: string;
      desired: DesiredSchedule;
      /** Why an update: the plan changed, or what was edited by hand. */
      drift?: string[];
    }
  | { action: 'delete'; id: string };

export interface ScheduleDiff {
  changes: ScheduleChange[];
  /** Desired ids held by a schedule apply does not own: never touched, reported as bad input. */
  conflicts: { id: string; message: string }[];
}

export const scheduledBackupKinds = ['full', 'incremental', 'retention'] as const;

const duration = z
  .string()
  .refine((s) => parseDuration(s) !== undefined, 'expected a duration such as 30s, 5m or 2h');

export const scheduledBackupInputSchema = z.strictObject({
  database: z.string().min(1),
  kind: z.enum(scheduledBackupKinds),
  /** The plan policy (for reports and notifications). */
  policy: z.string().min(1),
  /** `schedule:<schedule id>` when a schedule started it. */
  requestedBy: z.string().min(1).max(200).optional(),
  /** From the scheduled time: no start by then is a missed backup; while another backup holds the lock, retried until then. */
  startWindow: duration.optional(),
  /** From the backup's start: still running then, it is cancelled (cleanly) and reported. */
  completionWindow: duration.optional(),
  maxRate: z
    .string()
    .regex(/^[1-9]\d*[kM]?$/)
    .optional(),
});
export type ScheduledBackupInput = z.input<typeof scheduledBackupInputSchema>;

/**
 * How a scheduled run ended.
 * - `completed`: the backup (or retention run) finished; `unchanged` for an incremental with nothing new.
 * - `skipped`: another backup of the database held the lock (backup-<db>) and no start window was set.
 * - `missed`: not started inside the start window (fired late, or the lock was held all along).
 * - `cancelled`: ran past its completion window; cancelled, its clean-up done.
 * - `failed`: the backup itself failed.
 */
export type ScheduledBackupOutcome =
  'completed' | 'unchanged' | 'skipped' | 'missed' | 'cancelled' | 'failed';

export interface ScheduledBackupResult {
  outcome: ScheduledBackupOutcome;
  database: string;
  kind: (typeof scheduledBackupKinds)[number];
  policy: string;
  /** The lock: backup-<db> (retention-<db> for retention). */
  childWorkflowId: string;
  childRunId?: string;
  scheduledAt: string;
  startedAt?: string;
  endedAt: string;
  /** Attempts to take the lock (more than one only with a start window). */
  attempts: number;
  reason?: string;
  /** The backup id when a backup was written. */
  backupId?: string;
}

/** The schedules the plan asks for, sorted by id. */
export function desiredSchedules(plan: Plan): DesiredSchedule[] {
  const out: Omit<DesiredSchedule, 'fingerprint'>[] = [];
  const common = { taskQueue: SCHEDULE_TASK_QUEUE, overlap: 'SKIP' as const, catchupWindow: CATCHUP_WINDOW };
  const retentionOf = new Map<string, string>();
  for (const p of plan.backup.policies) {
    const windows = {
      ...(p.startWindow ? { startWindow: p.startWindow } : {}),
      ...(p.completionWindow ? { completionWindow: p.completionWindow } : {}),
    };
    const fullId = scheduleIds.backupFull(p.name);
    out.push({
      ...common,
      id: fullId,
      kind: 'backup-full',
      policy: p.name,
      database: p.database,
      spec: specOf(p.full),
      workflowType: 'scheduledBackupWorkflow',
      workflowId: fullId,
      args: [
        {
          database: p.database,
          kind: 'full',
          policy: p.name,
          requestedBy: `schedule:${fullId}`,
          ...windows,
          ...(p.maxRate ? { maxRate: p.maxRate } : {}),
        } satisfies ScheduledBackupInput,
      ],
      summary: `full backup of ${p.database} (policy ${p.name})`,
    });
    if (p.incremental) {
      const incId = scheduleIds.backupIncremental(p.name);
      out.push({
        ...common,
        id: incId,
        kind: 'backup-incremental',
        policy: p.name,
        database: p.database,
        spec: specOf(p.incremental),
        workflowType: 'scheduledBackupWorkflow',
        workflowId: incId,
        args: [
          {
            database: p.database,
            kind: 'incremental',
            policy: p.name,
            requestedBy: `schedule:${incId}`,
            ...windows,
          } satisfies ScheduledBackupInput,
        ],
        summary: `incremental backup of ${p.database} (policy ${p.name})`,
      });
    }
    // Retention is per database (retentionWorkflow reads the database's policy from the plan).
    if (!retentionOf.has(p.database)) retentionOf.set(p.database, p.name);
  }
  for (const [database, policy] of retentionOf) {
    const id = scheduleIds.retention(database);
    out.push({
      ...common,
      id,
      kind: 'retention',
      policy,
      database,
      spec: { ...RETENTION_SPEC },
      workflowType: 'scheduledBackupWorkflow',
      workflowId: id,
      args: [
        { database, kind: 'retention', policy, requestedBy: `schedule:${id}` } satisfies ScheduledBackupInput,
      ],
      summary: `retention of ${database}`,
    });
  }
  for (const d of plan.drills.policies) {
    if (!d.schedule) continue;
    const id = scheduleIds.drill(d.name);
    out.push({
      ...common,
      id,
      kind: 'drill',
      policy: d.name,
      database: d.database,
      spec: specOf(d.schedule),
      workflowType: 'drDrillWorkflow',
      workflowId: id,
      args: [{ database: d.database, region: d.region, requestedBy: `schedule:${id}`, policy: d.name }],
      summary: `DR drill of ${d.database} in ${d.region} (policy ${d.name})`,
    });
  }
  return out.map((s) => ({ ...s, fingerprint: fingerprintOf(s) })).sort((a, b) => a.id.localeCompare(b.id));
}

/** Duplicate schedule ids (two policies of one name): every one, as `path: message`. */
export function scheduleProblems(plan: Plan): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  const check = (name: string, path: string) => {
    const first = seen.get(name);
    if (first) problems.push(`${path}: policy name "${name.split(':')[1]}" is already used by ${first}`);
    else seen.set(name, path);
  };
  plan.backup.policies.forEach((p, i) => check(`backup:${p.name}`, `backup.policies[${i}].name`));
  plan.drills.policies.forEach((p, i) => check(`drill:${p.name}`, `drills.policies[${i}].name`));
  return problems;
}

/** What apply must do so that the existing schedules match the desired ones. */
export function diffSchedules(
  desired: DesiredSchedule[],
  existing: ExistingSchedule[],
  planName: string,
): ScheduleDiff {
  const byId = new Map(existing.map((e) => [e.id, e]));
  const wanted = new Set(desired.map((d) => d.id));
  const changes: ScheduleChange[] = [];
  const conflicts: ScheduleDiff['conflicts'] = [];
  for (const d of desired) {
    const e = byId.get(d.id);
    if (!e) changes.push({ action: 'create', id: d.id, desired: d });
    else if (e.managedByPlan !== planName)
      conflicts.push({
        id: d.id,
        message:
          e.managedByPlan === undefined
            ? `schedule ${d.id} exists but was not created by lifeboat apply; delete or rename it (lifeboat leaves it alone)`
            : `schedule ${d.id} belongs to plan "${e.managedByPlan}", not "${planName}"; rename the policy`,
      });
    else {
      const drift = [
        ...(e.fingerprint === d.fingerprint ? [] : ['the plan changed']),
        ...(e.actual ? driftOf(d, e.actual) : []),
      ];
      changes.push(
        drift.length
          ? { action: 'update', id: d.id, desired: d, drift }
          : { action: 'unchanged', id: d.id, desired: d },
      );
    }
  }
  for (const e of existing)
    if (e.managedByPlan === planName && !wanted.has(e.id)) changes.push({ action: 'delete', id: e.id });
  changes.sort((a, b) => a.id.localeCompare(b.id));
  return { changes, conflicts };
}

/**
 * What differs between a schedule as described and as the plan wants it: an edit made by hand
 * (Web UI, `temporal schedule update`) that kept the note. A cron spec comes back as calendars,
 * so only its presence and the jitter are compared; intervals are compared exactly.
 */
export function driftOf(d: DesiredSchedule, a: ActualSchedule): string[] {
  const out: string[] = [];
  const differ = (what: string, actual: unknown, want: unknown) => {
    if (canonicalJson(actual) !== canonicalJson(want))
      out.push(`${what} is ${canonicalJson(actual) ?? 'unset'}, the plan says ${canonicalJson(want)}`);
  };
  differ('workflow type', a.workflowType, d.workflowType);
  differ('task queue', a.taskQueue, d.taskQueue);
  differ('args', a.args, d.args);
  differ('overlap policy', a.overlap, d.overlap);
  differ('catch-up window (ms)', a.catchupWindowMs, parseDuration(d.catchupWindow));
  differ('intervals (ms)', a.intervalsMs, d.spec.every ? [parseDuration(d.spec.every)] : []);
  differ('jitter (ms)', a.jitterMs || 0, d.spec.jitter ? parseDuration(d.spec.jitter) : 0);
  differ('calendars', a.calendars, d.spec.cron ? 1 : 0);
  return out;
}

/** The schedule's note: says who manages it, and carries the fingerprint apply compares. */
export function scheduleNote(planName: string, fingerprint: string): string {
  return `managed by ${MANAGED_BY} (plan ${planName}); fingerprint ${fingerprint}`;
}

export function fingerprintFromNote(note: string | undefined): string | undefined {
  return /fingerprint ([0-9a-f]{8})\b/.exec(note ?? '')?.[1];
}

function specOf(s: { cron?: string | undefined; every?: string | undefined; jitter?: string | undefined }) {
  return {
    ...(s.cron !== undefined ? { cron: s.cron } : {}),
    ...(s.every !== undefined ? { every: s.every } : {}),
    ...(s.jitter !== undefined ? { jitter: s.jitter } : {}),
  };
}

/** FNV-1a (32 bit) of the canonical JSON: short, stable, no Node built-in (workflows import domain). */
export function fingerprintOf(s: Omit<DesiredSchedule, 'fingerprint' | 'id'> & { id?: string }): string {
  const text = canonicalJson({ ...s, id: undefined });
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

/** The lock a scheduled run takes: the same workflow id the CLI uses, so both exclude each other. */
export function lockIdOf(kind: (typeof scheduledBackupKinds)[number], database: string): string {
  return kind === 'retention' ? workflowIds.retention(database) : workflowIds.backup(database);
}
