// The region health monitor: its input, its state and the one rule that decides when a failover
// starts. Pure, shared by the workflow (which decides) and the CLI (which shows the state).
import { z } from 'zod';
import type { FailoverOutcome } from './failover.ts';
import { parseDuration } from './duration.ts';

const duration = z.string().refine((s) => parseDuration(s) !== undefined, 'expected a duration such as 10s');

export const monitorInputSchema = z.strictObject({
  database: z.string().min(1),
  requestedBy: z.string().trim().min(1).max(200).optional(),
  /** Override the policy's detection (`checks` consecutive failures, `interval` apart). */
  checks: z.number().int().min(1).max(100).optional(),
  interval: duration.optional(),
  /** Checks per run before continue-as-new keeps the history small (each check is ~6 events). */
  continueAsNewAfter: z.number().int().min(1).max(5_000).default(500),
  /** The state carried over continue-as-new; not for operators. */
  carried: z.custom<MonitorStatus>((v) => typeof v === 'object' && v !== null).optional(),
});
export type MonitorInput = z.input<typeof monitorInputSchema>;
export type ParsedMonitorInput = z.output<typeof monitorInputSchema>;

/**
 * Where the monitor is:
 * - `watching`: checking the primary region every interval.
 * - `paused`: an operator paused it; no check runs, the failure count is kept at zero.
 * - `failing-over`: N consecutive checks failed; the failover (a child workflow) runs.
 * - `stopped`: an operator stopped it (`lifeboat monitor stop`).
 */
export type MonitorPhase = 'watching' | 'paused' | 'failing-over' | 'stopped';

export interface MonitorEvent {
  at: string;
  text: string;
}

export interface MonitorStatus {
  database: string;
  phase: MonitorPhase;
  /** The region holding the primary, as far as the monitor knows; moves after a failover. */
  watchedRegion: string;
  /** Where a failover would go, and the region the checks run from. */
  targetRegion: string;
  checks: number;
  intervalMs: number;
  consecutiveFailures: number;
  checksRun: number;
  failuresSeen: number;
  lastCheck?: { at: string; healthy: boolean; detail: string };
  /** Who paused, when and why, while paused. */
  pausedBy?: { by: string; at: string; reason?: string };
  /** The failover the monitor started last, and how it ended. */
  lastFailover?: {
    workflowId: string;
    runId?: string;
    startedAt: string;
    outcome?: string;
    message?: string;
  };
  failoversStarted: number;
  /** Runs of this monitor so far (continue-as-new generations). */
  generations: number;
  startedAt: string;
  events: MonitorEvent[];
}

export interface PauseInput {
  by?: string;
  reason?: string;
}

/**
 * Counts a check into the status and says whether a failover must start: only `checks`
 * consecutive failures do; any passing check in between starts the count again, so a flapping
 * check (fail, pass, fail, …) never triggers.
 */
export function recordCheck(
  status: MonitorStatus,
  check: { healthy: boolean; detail: string },
  at: string,
): boolean {
  status.checksRun++;
  status.lastCheck = { at, ...check };
  if (check.healthy) {
    if (status.consecutiveFailures > 0)
      addEvent(
        status,
        at,
        `${status.watchedRegion} healthy again after ${status.consecutiveFailures} failed check(s)`,
      );
    status.consecutiveFailures = 0;
    return false;
  }
  status.failuresSeen++;
  status.consecutiveFailures++;
  return status.consecutiveFailures >= status.checks;
}

/** After a failover: the target holds the primary and the old primary is where a next one would go. */
export function afterFailover(
  status: MonitorStatus,
  outcome: FailoverOutcome | 'failed',
  message: string,
  at: string,
): void {
  if (status.lastFailover) {
    status.lastFailover.outcome = outcome;
    status.lastFailover.message = message;
  }
  if (outcome === 'failed-over' || outcome === 'switched-over' || outcome === 'failed-after-promotion') {
    const old = status.watchedRegion;
    status.watchedRegion = status.targetRegion;
    status.targetRegion = old;
  }
  status.consecutiveFailures = 0;
  addEvent(status, at, `failover ended: ${outcome}: ${message}`);
}

const MAX_EVENTS = 20;

export function addEvent(status: MonitorStatus, at: string, text: string): void {
  status.events.push({ at, text });
  if (status.events.length > MAX_EVENTS) status.events.splice(0, status.events.length - MAX_EVENTS);
}

/** One line for the Web UI's current details and `lifeboat monitor status`. */
export function monitorSummary(s: MonitorStatus): string {
  const every = `${s.checks} × ${Math.round(s.intervalMs / 100) / 10}s`;
  const last = s.lastCheck
    ? `last check ${s.lastCheck.healthy ? 'ok' : `FAILED (${s.lastCheck.detail})`} at ${s.lastCheck.at}`
    : 'no check yet';
  if (s.phase === 'paused')
    return `paused by ${s.pausedBy?.by ?? '?'}${s.pausedBy?.reason ? ` (${s.pausedBy.reason})` : ''}: ${s.database}@${s.watchedRegion} is not checked`;
  if (s.phase === 'failing-over')
    return `failing over ${s.database} from ${s.watchedRegion} to ${s.targetRegion}: ${s.lastFailover?.workflowId ?? ''}`;
  return `${s.phase}: ${s.database}@${s.watchedRegion} from ${s.targetRegion}, ${every}; ${s.consecutiveFailures} consecutive failure(s); ${s.checksRun} checks, ${s.failoversStarted} failover(s) started; ${last}`;
}
