// Continuous WAL archiving as data: WAL file names, segment arithmetic, the continuity rule, the
// archiver's input and the status it answers to queries. Pure, so the workflow and the activity
// agree on every rule (and the workflow stays deterministic).
import { z } from 'zod';
import { parseDuration } from './duration.ts';
import { formatLsn, parseLsn } from './lsn.ts';

/** A WAL file name as PostgreSQL (and pg_receivewal) writes them. */
export type WalFile =
  | { kind: 'segment'; name: string; timeline: number; segment: string }
  | { kind: 'partial'; name: string; timeline: number; segment: string }
  | { kind: 'history'; name: string; timeline: number };

const SEGMENT = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;

/** What a file in a WAL directory is, or undefined for anything else. */
export function parseWalFileName(name: string): WalFile | undefined {
  const history = /^([0-9A-F]{8})\.history$/.exec(name);
  if (history) {
    const timeline = parseInt(history[1]!, 16);
    return timeline > 0 ? { kind: 'history', name, timeline } : undefined;
  }
  const partial = /^([0-9A-F]{24})\.partial$/.exec(name);
  const segment = partial ? partial[1]! : SEGMENT.test(name) ? name : undefined;
  if (!segment) return undefined;
  const timeline = parseInt(segment.slice(0, 8), 16);
  if (timeline === 0) return undefined;
  return { kind: partial ? 'partial' : 'segment', name, timeline, segment };
}

/** Segments per 4 GiB "log id": the middle 8 hex digits of a name count these. */
function segmentsPerId(segmentSize: number): number {
  return 0x1_0000_0000 / segmentSize;
}

/** The segment number (position in the WAL, whatever the timeline) of a segment name. */
export function segmentNumber(segment: string, segmentSize: number): number {
  const m = SEGMENT.exec(segment);
  if (!m) throw new Error(`not a WAL segment name: ${segment}`);
  return parseInt(m[2]!, 16) * segmentsPerId(segmentSize) + parseInt(m[3]!, 16);
}

export function timelineOf(segment: string): number {
  return parseInt(segment.slice(0, 8), 16);
}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

export function segmentName(timeline: number, segno: number, segmentSize: number): string {
  const per = segmentsPerId(segmentSize);
  return `${hex8(timeline)}${hex8(Math.floor(segno / per))}${hex8(segno % per)}`;
}

/** The segment after `segment` on the same timeline. */
export function nextSegment(segment: string, segmentSize: number): string {
  return segmentName(timelineOf(segment), segmentNumber(segment, segmentSize) + 1, segmentSize);
}

/** The segment holding `lsn` on `timeline`. */
export function segmentOfLsn(timeline: number, lsn: string, segmentSize: number): string {
  return segmentName(timeline, Number(parseLsn(lsn) / BigInt(segmentSize)), segmentSize);
}

/** The LSN where a segment begins. */
export function segmentStartLsn(segment: string, segmentSize: number): string {
  return formatLsn(BigInt(segmentNumber(segment, segmentSize)) * BigInt(segmentSize));
}

/** The LSN where a segment ends (= where the next one begins). */
export function segmentEndLsn(segment: string, segmentSize: number): string {
  return formatLsn(BigInt(segmentNumber(segment, segmentSize) + 1) * BigInt(segmentSize));
}

/** The LSN `bytes` into a segment: how far a partial segment's valid data reaches. */
export function lsnInSegment(segment: string, bytes: number, segmentSize: number): string {
  return formatLsn(BigInt(segmentNumber(segment, segmentSize)) * BigInt(segmentSize) + BigInt(bytes));
}

/**
 * How a completed segment follows the last archived one:
 * - `next`: the successor on the same timeline;
 * - `timeline-switch`: a higher timeline, starting at or before the successor's position (after a
 *   promotion the new timeline's first segment repeats the position where the old one forked);
 * - `gap`: segments are missing in between (`missing` of them); the archive cannot replay across;
 * - `behind`: not newer than what is archived (a re-streamed segment after a restart).
 */
export type Continuity =
  | { kind: 'next' }
  | { kind: 'timeline-switch'; from: number; to: number }
  | { kind: 'gap'; missing: number; expected: string }
  | { kind: 'behind' };

export function continuity(previous: string, next: string, segmentSize: number): Continuity {
  const prevNo = segmentNumber(previous, segmentSize);
  const nextNo = segmentNumber(next, segmentSize);
  const [prevTli, nextTli] = [timelineOf(previous), timelineOf(next)];
  if (nextTli < prevTli) return { kind: 'behind' };
  if (nextTli > prevTli) {
    if (nextNo <= prevNo + 1) return { kind: 'timeline-switch', from: prevTli, to: nextTli };
    return {
      kind: 'gap',
      missing: nextNo - prevNo - 1,
      expected: segmentName(nextTli, prevNo + 1, segmentSize),
    };
  }
  if (nextNo === prevNo + 1) return { kind: 'next' };
  if (nextNo <= prevNo) return { kind: 'behind' };
  return { kind: 'gap', missing: nextNo - prevNo - 1, expected: nextSegment(previous, segmentSize) };
}

/** The physical replication slot that holds the primary's WAL until it is archived. */
export function archiverSlotName(database: string): string {
  return `lifeboat_wal_${database.replace(/[^a-z0-9_]/g, '_')}`;
}

// ---------------------------------------------------------------------------------------------
// The workflow's input and status

const duration = z
  .string()
  .refine((s) => parseDuration(s) !== undefined, 'expected a duration such as 30s, 5m or 2h');

/**
 * Phases of the archiver, as the status query reports them.
 * - `starting`: the plan is read; no streaming run has returned yet.
 * - `archiving`: WAL streams from the primary and every completed segment is stored.
 * - `storage-unreachable`: storage refuses or does not answer; segments wait in the worker's
 *   spool (and the slot holds them on the primary) until it comes back.
 * - `receiver-down`: the primary cannot be streamed from (down, or refusing); what is spooled is
 *   still uploaded.
 * - `failing`: the streaming activity itself failed after its retries; retried after a pause.
 * - `stopped`: cancelled by an operator (`lifeboat archiver stop`); the receiver was stopped.
 */
export type WalArchiverPhase =
  'starting' | 'archiving' | 'storage-unreachable' | 'receiver-down' | 'failing' | 'stopped';

export type WalAlertKind =
  | 'storage-unreachable'
  | 'storage-restored'
  | 'gap'
  | 'slot-lost'
  | 'timeline-switch'
  /** The spool's WAL was on no timeline of the primary's history: stored, then left (logged, kept). */
  | 'spool-off-history'
  | 'receiver-down'
  | 'receiver-restored'
  | 'archiver-failing';

export interface WalAlert {
  at: string;
  kind: WalAlertKind;
  text: string;
}

export interface WalGap {
  at: string;
  /** The last segment archived before the gap, and the first after it. */
  after: string;
  next: string;
  missing: number;
}

/** What the archiver answers to `walArchiverStatusQuery`; carried across continue-as-new. */
export interface WalArchiverStatus {
  database: string;
  phase: WalArchiverPhase;
  phaseSince: string;
  /** When this archiver (the first run of the chain) started. */
  startedAt: string;
  region?: string;
  slot: string;
  walSegmentSize?: number;
  timeline?: number;
  lastArchived?: { segment: string; at: string };
  lastPartial?: { segment: string; upToLsn: string; at: string };
  segmentsArchived: number;
  partialsUploaded: number;
  historyFilesUploaded: number;
  rawBytes: number;
  storedBytes: number;
  storage: { reachable: boolean; since: string; error?: string; outages: number };
  receiver: { running: boolean; error?: string };
  /** Spool backlog as of the last streaming run's end. */
  spool: { segments: number; bytes: number };
  slotState?: { restartLsn?: string; walStatus?: string; safeWalSizeBytes?: number };
  /** Activity runs in the whole chain, and how many continue-as-new happened. */
  runs: number;
  generations: number;
  gaps: WalGap[];
  /** The latest alerts, newest last (bounded). */
  alerts: WalAlert[];
  lastError?: string;
}

export const walArchiverInputSchema = z.strictObject({
  /** A database of the plan. */
  database: z.string().min(1),
  requestedBy: z.string().min(1).max(200).optional(),
  /** How long one streaming activity runs before it returns and the workflow loops. */
  runFor: duration.default('5m'),
  /** Overrides the plan's backup policy `walPartialUpload` (the RPO bound). */
  partialUploadEvery: duration.optional(),
  /** Continue-as-new after this many streaming runs (and whenever Temporal suggests it). */
  continueAsNewAfter: z.number().int().min(1).max(10_000).default(100),
  /** The status carried over continue-as-new; not for operators. */
  carried: z.custom<WalArchiverStatus>((v) => typeof v === 'object' && v !== null).optional(),
});
export type WalArchiverInput = z.input<typeof walArchiverInputSchema>;

/** Input and output of the streaming activity, one bounded run. */
export interface ArchiveWalInput {
  database: string;
  region: string;
  runForMs: number;
  partialEveryMs: number;
  /** The last segment the archive holds, so a run checks continuity from there. */
  lastArchived?: string;
  /** The workflow's view, so that a run reports transitions only. */
  storageReachable: boolean;
  receiverRunning: boolean;
  /**
   * The archiver has just started: return as soon as WAL streams and storage answers, so the
   * status says `archiving` (or what is wrong) within seconds rather than after a whole run.
   */
  announceStart?: boolean;
}

export type ArchiveWalEndReason =
  | 'started'
  | 'time-budget'
  | 'storage-unreachable'
  | 'storage-restored'
  | 'gap'
  | 'slot-lost'
  | 'receiver-down'
  | 'receiver-restored'
  /** The worker is shutting down (Ctrl-C, SIGTERM): the next run goes on elsewhere or later. */
  | 'worker-shutdown';

export interface ArchiveWalResult {
  reason: ArchiveWalEndReason;
  walSegmentSize?: number;
  timeline?: number;
  lastArchived?: { segment: string; at: string };
  segmentsArchived: number;
  /** Segments found already stored (re-streamed after a restart): not written again. */
  segmentsAlreadyStored: number;
  rawBytes: number;
  storedBytes: number;
  partialsUploaded: number;
  lastPartial?: { segment: string; upToLsn: string; at: string };
  historyFilesUploaded: number[];
  /**
   * Times the spool's WAL was on no timeline of the primary's history (it outlived a failover or
   * a rebuilt primary): stored, then streaming went on on the primary's timeline from the slot.
   */
  spoolTimelineLeft?: number;
  gaps: WalGap[];
  storage: { reachable: boolean; error?: string };
  receiver: { running: boolean; error?: string };
  spool: { segments: number; bytes: number };
  slot: { name: string; restartLsn?: string; walStatus?: string; safeWalSizeBytes?: number; lost?: boolean };
}

/** Heartbeat details of the streaming activity: live progress for `lifeboat archiver status`. */
export interface ArchiveWalProgress {
  lastArchived?: string;
  lastArchivedAt?: string;
  segmentsArchived: number;
  partialsUploaded: number;
  lastPartialLsn?: string;
  /** As in ArchiveWalResult: the spool's WAL was on no timeline of the primary's history. */
  spoolTimelineLeft?: number;
  spoolSegments: number;
  storageReachable: boolean;
  receiverRunning: boolean;
}

export const MAX_KEPT_ALERTS = 20;

/** Alerts that reach the plan's webhooks (event `failure`); the rest are logged and kept. */
export const NOTIFIED_ALERTS: readonly WalAlertKind[] = [
  'storage-unreachable',
  'storage-restored',
  'gap',
  'slot-lost',
  'receiver-down',
  'receiver-restored',
  'archiver-failing',
];

export function initialArchiverStatus(database: string, now: string): WalArchiverStatus {
  return {
    database,
    phase: 'starting',
    phaseSince: now,
    startedAt: now,
    slot: archiverSlotName(database),
    segmentsArchived: 0,
    partialsUploaded: 0,
    historyFilesUploaded: 0,
    rawBytes: 0,
    storedBytes: 0,
    // Assumed healthy until a run says otherwise, so that the first run reports what is wrong.
    storage: { reachable: true, since: now, outages: 0 },
    receiver: { running: true },
    spool: { segments: 0, bytes: 0 },
    runs: 0,
    generations: 0,
    gaps: [],
    alerts: [],
  };
}

export function setArchiverPhase(status: WalArchiverStatus, phase: WalArchiverPhase, now: string): void {
  if (status.phase !== phase) {
    status.phase = phase;
    status.phaseSince = now;
  }
}

function keepLast<T>(list: T[], max = MAX_KEPT_ALERTS): T[] {
  return list.length > max ? list.slice(list.length - max) : list;
}

/** Adds an alert to the status; returns it. */
export function addAlert(status: WalArchiverStatus, kind: WalAlertKind, text: string, now: string): WalAlert {
  const alert = { at: now, kind, text };
  status.alerts = keepLast([...status.alerts, alert]);
  return alert;
}

/**
 * Folds one streaming run into the status and returns the alerts it raises: transitions of
 * storage and receiver, gaps, a lost slot, a timeline switch.
 */
export function applyArchiveRun(status: WalArchiverStatus, run: ArchiveWalResult, now: string): WalAlert[] {
  const alerts: WalAlert[] = [];
  const raise = (kind: WalAlertKind, text: string) => alerts.push(addAlert(status, kind, text, now));
  const db = status.database;
  status.runs++;
  status.lastError = undefined;
  if (run.walSegmentSize) status.walSegmentSize = run.walSegmentSize;
  if (run.timeline) {
    if (status.timeline && run.timeline > status.timeline)
      raise('timeline-switch', `WAL of ${db} moved from timeline ${status.timeline} to ${run.timeline}`);
    status.timeline = run.timeline;
  }
  if (run.spoolTimelineLeft)
    raise(
      'spool-off-history',
      `the WAL spool of ${db} was on no timeline of the primary's history (a failover or a rebuilt primary since it last streamed): what it held was stored, and streaming went on on timeline ${run.timeline ?? '?'} from slot ${run.slot.name}`,
    );
  if (run.lastArchived) status.lastArchived = run.lastArchived;
  if (run.lastPartial) status.lastPartial = run.lastPartial;
  status.segmentsArchived += run.segmentsArchived;
  status.partialsUploaded += run.partialsUploaded;
  status.historyFilesUploaded += run.historyFilesUploaded.length;
  status.rawBytes += run.rawBytes;
  status.storedBytes += run.storedBytes;
  status.spool = run.spool;
  status.slotState = {
    restartLsn: run.slot.restartLsn ?? status.slotState?.restartLsn,
    walStatus: run.slot.walStatus ?? status.slotState?.walStatus,
    safeWalSizeBytes: run.slot.safeWalSizeBytes ?? status.slotState?.safeWalSizeBytes,
  };
  for (const gap of run.gaps) {
    status.gaps = keepLast([...status.gaps, gap]);
    raise(
      'gap',
      `WAL archive of ${db} has a gap: ${gap.missing} segment(s) missing between ${gap.after} and ${gap.next}; point-in-time restore cannot cross it — take a full backup`,
    );
  }
  if (run.slot.lost)
    raise(
      'slot-lost',
      `slot ${run.slot.name} of ${db} was invalidated (max_slot_wal_keep_size reached): WAL not yet archived may be gone from the primary (nothing is lost if the worker's spool still holds it; a gap alert says otherwise); the slot was recreated`,
    );

  if (status.storage.reachable && !run.storage.reachable) {
    status.storage = {
      reachable: false,
      since: now,
      error: run.storage.error,
      outages: status.storage.outages + 1,
    };
    raise(
      'storage-unreachable',
      `storage unreachable for the WAL archive of ${db}: ${run.storage.error ?? 'no answer'}; segments wait in the worker's spool (${run.spool.segments} now) and the primary keeps them through slot ${run.slot.name}`,
    );
  } else if (!status.storage.reachable && run.storage.reachable) {
    const downMs = Date.parse(now) - Date.parse(status.storage.since);
    status.storage = { reachable: true, since: now, outages: status.storage.outages };
    raise(
      'storage-restored',
      `storage reachable again for the WAL archive of ${db} after ${Math.round(downMs / 1000)}s; the spooled segments are being uploaded`,
    );
  } else if (!run.storage.reachable) status.storage.error = run.storage.error;

  if (status.receiver.running && !run.receiver.running) {
    status.receiver = { running: false, error: run.receiver.error };
    raise(
      'receiver-down',
      `WAL of ${db} is not being streamed from the primary: ${run.receiver.error ?? 'unknown'}`,
    );
  } else if (!status.receiver.running && run.receiver.running) {
    status.receiver = { running: true };
    raise('receiver-restored', `WAL of ${db} streams from the primary again`);
  } else status.receiver = run.receiver;

  setArchiverPhase(
    status,
    !status.storage.reachable
      ? 'storage-unreachable'
      : !status.receiver.running
        ? 'receiver-down'
        : 'archiving',
    now,
  );
  return alerts;
}

/** The value of the LifeboatOutcome search attribute for a status. */
export function archiverOutcome(status: WalArchiverStatus): string {
  return status.phase === 'archiving' ? 'healthy' : status.phase;
}

const MiB = 1024 * 1024;

/** One paragraph for current details and `lifeboat archiver status`. */
export function archiverSummary(status: WalArchiverStatus): string {
  const parts = [
    `WAL archiver of ${status.database}${status.region ? ` (primary ${status.region})` : ''}: ${status.phase} since ${status.phaseSince}`,
    status.lastArchived
      ? `last segment ${status.lastArchived.segment} at ${status.lastArchived.at}`
      : 'no segment archived yet',
    `${status.segmentsArchived} segment(s), ${(status.storedBytes / MiB).toFixed(1)} MiB stored`,
    status.lastPartial
      ? `partial up to ${status.lastPartial.upToLsn} at ${status.lastPartial.at}`
      : 'no partial uploaded yet',
  ];
  if (!status.storage.reachable)
    parts.push(`STORAGE UNREACHABLE since ${status.storage.since}: ${status.storage.error ?? ''}`.trim());
  if (!status.receiver.running) parts.push(`NOT STREAMING: ${status.receiver.error ?? ''}`.trim());
  if (status.spool.segments) parts.push(`${status.spool.segments} segment(s) waiting in the spool`);
  if (status.gaps.length) parts.push(`${status.gaps.length} gap(s), last after ${status.gaps.at(-1)!.after}`);
  return parts.join('; ');
}
