// How a backup's progress reads in a terminal. The workflow answers `progressQuery` with its
// phase; the live byte counts are the running activity's heartbeat details, read from describe().
import type { Client, WorkflowExecutionDescription, WorkflowHandle } from '@temporalio/client';
import type { LoadedDataConverter } from '@temporalio/common';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow/index.js';
import type {
  FullBackupProgress,
  FullBackupResult,
  StreamProgress,
  VerifyProgress,
} from '../domain/backup.ts';
import { formatDuration } from '../domain/duration.ts';
import { answered, queryWithin } from './temporal-client.ts';

/** temporal.api.enums.v1.PendingActivityState.SCHEDULED (the proto package is a dev dependency). */
const PENDING_ACTIVITY_STATE_SCHEDULED = 1;

export interface BackupStatus {
  progress?: FullBackupProgress;
  /** No worker answered the progress query in time. */
  noWorker: boolean;
  /** The streaming or verifying activity now running, with its latest heartbeat. */
  activity?: {
    type: string;
    /** Scheduled but not picked up: no worker polls its task queue. */
    waiting: boolean;
    attempt: number;
    lastFailure?: string;
    stream?: StreamProgress;
    verify?: VerifyProgress;
  };
}

/** The workflow's phase and the running activity's latest heartbeat; undefined parts when unknown. */
export async function readBackupStatus(
  client: Client,
  handle: WorkflowHandle,
  described?: WorkflowExecutionDescription,
): Promise<BackupStatus> {
  const d = described ?? (await handle.describe());
  const answer = await queryWithin<FullBackupProgress>(client, handle, 'progress');
  const progress = answered(answer);
  const noWorker = !answer.ok && answer.noWorker;
  const converter = (client.options as unknown as { loadedDataConverter: LoadedDataConverter })
    .loadedDataConverter;
  for (const a of d.raw.pendingActivities ?? []) {
    const type = a.activityType?.name ?? '';
    if (type !== 'streamBaseBackup' && type !== 'verifyBackup') continue;
    const details = a.heartbeatDetails?.payloads?.length
      ? await decodeFromPayloadsAtIndex<StreamProgress | VerifyProgress>(
          converter,
          0,
          a.heartbeatDetails.payloads,
        ).catch(() => undefined)
      : undefined;
    return {
      progress,
      noWorker,
      activity: {
        type,
        waiting: Number(a.state) === PENDING_ACTIVITY_STATE_SCHEDULED,
        attempt: a.attempt ?? 1,
        lastFailure: a.lastFailure?.message ?? undefined,
        ...(type === 'streamBaseBackup'
          ? { stream: details as StreamProgress | undefined }
          : { verify: details as VerifyProgress | undefined }),
      },
    };
  }
  return { progress, noWorker };
}

export function renderBackupStatus(s: BackupStatus, now = new Date()): string {
  const p = s.progress;
  if (!p) return '  (no progress yet: is a worker running?)\n';
  const final = p.phase === 'completed' || p.phase === 'failed';
  const lines = [
    `full backup ${p.backupId} of ${p.database}: ${p.phase} ${final ? `at ${p.phaseSince}` : `for ${formatDuration(now.getTime() - Date.parse(p.phaseSince))}`}`,
  ];
  const a = s.activity;
  if (a?.waiting && p.phase === 'streaming') {
    const region = p.region ?? '<primary region>';
    lines.push(`  waiting for a worker of ${region}: is one running? (lifeboat worker --region ${region})`);
  } else if (a?.stream && p.phase === 'streaming') {
    const st = a.stream;
    const total = st.estimatedRawBytes;
    const fraction = total ? Math.min(st.rawBytes / total, 1) : undefined;
    lines.push(
      `  ${bar(fraction)} ${fraction !== undefined ? `${(fraction * 100).toFixed(0).padStart(3)}%` : '   ?'}  ${mib(st.rawBytes)}${total ? ` / ${mib(total)}` : ''} read → ${mib(st.storedBytes)} stored in ${st.partsUploaded} part(s)`,
    );
  } else if (a?.verify && p.phase === 'verifying') {
    const v = a.verify;
    const fraction = v.totalBytes ? Math.min(v.verifiedBytes / v.totalBytes, 1) : 1;
    lines.push(
      `  ${bar(fraction)} ${(fraction * 100).toFixed(0).padStart(3)}%  ${mib(v.verifiedBytes)} / ${mib(v.totalBytes)} read back`,
    );
  } else if (p.rawBytes !== undefined) {
    lines.push(`  ${mib(p.rawBytes)} read → ${mib(p.storedBytes ?? 0)} stored`);
  }
  if (a && a.attempt > 1)
    lines.push(`  attempt ${a.attempt}${a.lastFailure ? ` (the last one: ${a.lastFailure})` : ''}`);
  if (p.error) lines.push(`  error: ${p.error}`);
  return `${lines.join('\n')}\n`;
}

export function renderBackupResult(r: FullBackupResult): string {
  return (
    [
      `backup ${r.backupId} of ${r.database} completed in ${formatDuration(r.durationMs)}${r.attempts > 1 ? ` (${r.attempts} attempts)` : ''}`,
      `  LSN ${r.startLsn} – ${r.stopLsn} on timeline ${r.timeline}`,
      `  ${mib(r.rawBytes)} read, ${mib(r.storedBytes)} stored (${((r.storedBytes / Math.max(r.rawBytes, 1)) * 100).toFixed(1)}%), streamed in ${formatDuration(r.streamMs)}${r.streamMs > 0 ? ` (${(r.rawBytes / 1e6 / (r.streamMs / 1000)).toFixed(0)} MB/s)` : ''}`,
      `  verified (${r.verification.method}): ${r.verification.detail}`,
      `  manifest: ${r.manifestKey}`,
    ].join('\n') + '\n'
  );
}

function bar(fraction: number | undefined, width = 30): string {
  if (fraction === undefined) return `[${'·'.repeat(width)}]`;
  const full = Math.round(fraction * width);
  return `[${'#'.repeat(full)}${'·'.repeat(width - full)}]`;
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
