// An incremental backup: seals everything written since the newest backup of the database. It
// forces a WAL switch on the primary, waits until the WAL archiver has stored the segment that
// switch completed, checks that every segment since the parent is in storage (read back, sha256,
// opened when the worker holds the key), and writes a manifest naming them, last. It shares the
// workflow id backup-<db> with full backups, so two backups of a database never run at once.
import {
  ApplicationFailure,
  defineQuery,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { parseDuration } from '../domain/duration.ts';
import { NON_RETRYABLE_ERROR_TYPES } from '../domain/errors.ts';
import {
  incrementalBackupInputSchema,
  incrementalBackupManifest,
  incrementalSegmentNumbers,
  incrementalStopLsn,
  newestBackup,
  unchangedSince,
  type IncrementalBackupInput,
  type IncrementalBackupPhase,
  type IncrementalBackupProgress,
  type IncrementalBackupResult,
} from '../domain/incremental.ts';
import { regionTaskQueue } from '../domain/plan.ts';
import { backupId as makeBackupId } from '../domain/repository.ts';
import { searchAttributeKeys } from '../domain/search-attributes.ts';
import { parseWorkflowInput } from './input.ts';
import { exportKubernetes } from './kubernetes-export.ts';
import { copyToSecondary } from './second-copy.ts';
import type { SecondCopyReport } from '../domain/second-copy.ts';
import type { Activities } from '../activities/index.ts';

/** Short calls: the plan, the catalog, the manifest, the WAL switch. */
const apiCall = {
  startToCloseTimeout: '1m',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 6,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
} as const;

/** Waiting and reading back: heartbeats every second; a lost worker is noticed within 15 s. */
const dataCopy = {
  startToCloseTimeout: '2h',
  heartbeatTimeout: '15s',
  retry: apiCall.retry,
} as const;

const { describePlan, listBackups, writeBackupManifest } = proxyActivities<Activities>(apiCall);
const { waitForWalSegment, verifyWalRange } = proxyActivities<Activities>(dataCopy);

/** The workflow's phase and what it knows so far. */
export const progressQuery = defineQuery<IncrementalBackupProgress>('progress');

export async function incrementalBackupWorkflow(
  rawInput: IncrementalBackupInput,
): Promise<IncrementalBackupResult & { secondCopy?: SecondCopyReport }> {
  const input = parseWorkflowInput(incrementalBackupInputSchema, rawInput ?? {}, 'incrementalBackupWorkflow');
  const info = workflowInfo();
  const startedAt = new Date(info.startTime.getTime());
  const backupId = makeBackupId(input.database, 'incremental', startedAt);
  const state: IncrementalBackupProgress = {
    backupId,
    database: input.database,
    kind: 'incremental',
    phase: 'starting',
    phaseSince: startedAt.toISOString(),
    startedAt: startedAt.toISOString(),
  };
  setHandler(progressQuery, () => state);
  const enter = (phase: IncrementalBackupPhase, details: string) => {
    state.phase = phase;
    state.phaseSince = new Date().toISOString();
    setCurrentDetails(`**${phase}** — ${details}`);
  };
  const fail = (type: string, message: string): never => {
    state.phase = 'failed';
    state.error = message;
    upsertSearchAttributes([{ key: searchAttributeKeys.outcome, value: 'failed' }]);
    throw ApplicationFailure.create({ type, nonRetryable: true, message });
  };
  upsertSearchAttributes([
    { key: searchAttributeKeys.kind, value: 'backup-incremental' },
    { key: searchAttributeKeys.database, value: input.database },
    ...(input.requestedBy ? [{ key: searchAttributeKeys.requestedBy, value: input.requestedBy }] : []),
  ]);

  enter('starting', `backup ${backupId}: reading the plan`);
  const plan = await describePlan();
  const db = plan.databases[input.database];
  if (!db)
    return fail(
      'UnknownReference',
      `database "${input.database}" is not in the plan "${plan.name}"; declared: ${Object.keys(plan.databases).join(', ')}`,
    );
  upsertSearchAttributes([{ key: searchAttributeKeys.region, value: db.primaryRegion }]);

  enter('finding-parent', 'the newest backup of the database, from its manifests');
  const catalog = await listBackups({ database: input.database });
  const parent = newestBackup(catalog.manifests);
  if (!parent)
    return fail(
      'NoParentBackup',
      `no backup of ${input.database} to build on: take a full backup first (lifeboat backup full --database ${input.database})`,
    );
  state.parent = parent.id;

  enter('sealing', `pg_switch_wal() on the ${db.primaryRegion} primary`);
  const { switchWal } = proxyActivities<Activities>({
    ...apiCall,
    taskQueue: regionTaskQueue(plan, db.primaryRegion),
  });
  const sealed = await switchWal({ database: input.database, region: db.primaryRegion });
  state.sealedSegment = sealed.segment;
  if (sealed.systemIdentifier !== parent.postgres.systemIdentifier)
    return fail(
      'IntegrityError',
      `the primary of ${input.database} is system ${sealed.systemIdentifier}, but ${parent.id} is of ${parent.postgres.systemIdentifier}: take a full backup of this cluster`,
    );
  const size = sealed.walSegmentSize;
  const base = {
    backupId,
    database: input.database,
    parent: parent.id,
    startLsn: parent.stop.lsn,
    timeline: sealed.timeline,
  };
  if (unchangedSince(parent.stop.lsn, sealed.segment, size)) {
    enter('unchanged', `nothing written since ${parent.id} (stop ${parent.stop.lsn}): no manifest`);
    upsertSearchAttributes([{ key: searchAttributeKeys.outcome, value: 'unchanged' }]);
    return {
      ...base,
      outcome: 'unchanged',
      stopLsn: parent.stop.lsn,
      segments: 0,
      rawBytes: 0,
      storedBytes: 0,
      durationMs: Date.now() - startedAt.getTime(),
      archiveWaitMs: 0,
    };
  }

  enter('waiting-for-archive', `until the WAL archiver has stored ${sealed.segment}`);
  const wait = await waitForWalSegment({
    database: input.database,
    segment: sealed.segment,
    timeoutMs: parseDuration(input.archiveTimeout)!,
  });
  if (!wait.stored)
    return fail(
      'WalNotArchived',
      `${sealed.segment} was not archived within ${input.archiveTimeout}: is the WAL archiver of ${input.database} running (lifeboat archiver status --database ${input.database})?`,
    );

  const numbers = incrementalSegmentNumbers(parent.stop.lsn, sealed.segment, size);
  enter('verifying', `${numbers.length} WAL segment(s) since ${parent.id}: read back and checked`);
  const verifyStarted = Date.now();
  const range = await verifyWalRange({
    database: input.database,
    firstSegno: numbers[0]!,
    lastSegno: numbers.at(-1)!,
    timeline: sealed.timeline,
    walSegmentSize: size,
    systemIdentifier: sealed.systemIdentifier,
  });
  if (range.missing.length)
    return fail(
      'WalGap',
      `${range.missing.length} WAL segment(s) since ${parent.id} are not in storage (${range.missing.slice(0, 5).join(', ')}${range.missing.length > 5 ? ', …' : ''}): the archive has a gap; take a full backup`,
    );
  const verifiedAt = new Date();
  // Compared with the parent's snapshot when it has one: new hashes only, deletions recorded.
  const kubernetes = await exportKubernetes(
    plan,
    input.database,
    backupId,
    parent.kubernetes ? { backupId: parent.id, snapshot: parent.kubernetes.snapshot } : undefined,
  );
  state.segments = range.objects.length;
  state.rawBytes = range.rawBytes;
  state.storedBytes = range.objects.reduce((n, o) => n + o.bytes, 0);

  enter('writing-manifest', 'the manifest is written last');
  const manifest = incrementalBackupManifest({
    id: backupId,
    database: input.database,
    plan: plan.name,
    workflowId: info.workflowId,
    runId: info.runId,
    requestedBy: input.requestedBy,
    parent,
    sealed,
    range,
    startedAt,
    verifiedAt,
    finishedAt: verifiedAt,
    verifyMs: verifiedAt.getTime() - verifyStarted,
    archiveWaitMs: wait.waitedMs,
  });
  if (kubernetes) manifest.kubernetes = kubernetes;
  const { key } = await writeBackupManifest({ manifest });
  if (plan.storage.secondary) enter('writing-manifest', `second copy to ${plan.storage.secondary.url}`);
  const secondCopy = await copyToSecondary(plan, input.database, backupId);
  enter(
    'completed',
    `${backupId}: ${range.objects.length} WAL segment(s) since ${parent.id}, ${state.storedBytes} bytes, LSN ${parent.stop.lsn}–${manifest.stop.lsn}`,
  );
  upsertSearchAttributes([{ key: searchAttributeKeys.outcome, value: 'completed' }]);
  return {
    ...base,
    outcome: 'completed',
    stopLsn: incrementalStopLsn(sealed.segment, size),
    segments: range.objects.length,
    firstSegment: range.objects[0]?.segment,
    lastSegment: range.objects.at(-1)?.segment,
    rawBytes: range.rawBytes,
    storedBytes: state.storedBytes,
    manifestKey: key,
    durationMs: verifiedAt.getTime() - startedAt.getTime(),
    archiveWaitMs: wait.waitedMs,
    ...(kubernetes ? { kubernetes } : {}),
    ...(secondCopy ? { secondCopy } : {}),
  };
}
