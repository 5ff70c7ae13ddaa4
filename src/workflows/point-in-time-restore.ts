// Point-in-time restore: resolve the chain (newest verified full backup at or before the target
// and the WAL after it) and refuse a target outside the recoverable window before any disk is
// touched; then, on the target region's worker, stream the base backup into a fresh data
// directory, start it with a restore_command that fetches WAL through Lifeboat, wait for the
// server to reach the target, validate, and report the point reached and the RTO.
// Crash safety comes from the activities: a download redoes itself into the same directory (its
// marker says it is ours), a running server is adopted rather than started twice, and the server
// keeps replaying while no worker watches it.
import {
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { NON_RETRYABLE_ERROR_TYPES } from '../domain/errors.ts';
import { regionTaskQueue, type Plan } from '../domain/plan.ts';
import {
  cutoverProblems,
  parseRestoreTarget,
  resolveRestoreChain,
  summarizeRestore,
  restoreInputSchema,
  validationProblems,
  type RestoreInput,
  type RestorePhase,
  type RestoreProgress,
  type RestoreResult,
} from '../domain/restore.ts';
import { lsnDistance } from '../domain/lsn.ts';
import { searchAttributeKeys } from '../domain/search-attributes.ts';
import { parseWorkflowInput } from './input.ts';
import { cutOverRestore, cutoverGate } from './restore-cutover.ts';
import type { Activities } from '../activities/index.ts';

/** Storage listings and short server calls (also the options of discarding a restore). */
export const apiCall = {
  startToCloseTimeout: '2m',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 6,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
} as const;

/**
 * The download and the replay: as long as the data takes, heartbeats every second, so a lost
 * worker is noticed within 15 s and the step runs again on another (or the restarted) worker.
 */
const dataCopy = {
  startToCloseTimeout: '24h',
  heartbeatTimeout: '15s',
  retry: {
    initialInterval: '2s',
    backoffCoefficient: 2,
    maximumInterval: '1m',
    maximumAttempts: 10,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
} as const;

/** Waiting this long for a worker of the target region fails the restore, saying so. */
const NO_WORKER_AFTER = '10m';

const { describePlan, listRestoreSources } = proxyActivities<Activities>(apiCall);

function regionActivities(plan: Plan, region: string) {
  const taskQueue = regionTaskQueue(plan, region);
  return {
    copy: proxyActivities<Activities>({ ...dataCopy, taskQueue, scheduleToStartTimeout: NO_WORKER_AFTER }),
    call: proxyActivities<Activities>({
      ...apiCall,
      startToCloseTimeout: '10m',
      taskQueue,
      scheduleToStartTimeout: NO_WORKER_AFTER,
    }),
  };
}

/** The phase, the chain and where the instance runs, for `lifeboat status` and the Web UI. */
export const restoreProgressQuery = defineQuery<RestoreProgress>('progress');

export async function pointInTimeRestoreWorkflow(rawInput: RestoreInput): Promise<RestoreResult> {
  const input = parseWorkflowInput(restoreInputSchema, rawInput ?? {}, 'pointInTimeRestoreWorkflow');
  const info = workflowInfo();
  const startedAt = new Date(info.startTime.getTime());
  const restoreId = info.workflowId;
  const state: RestoreProgress = {
    restoreId,
    database: input.database,
    region: input.region,
    target: input.target,
    phase: 'resolving',
    phaseSince: startedAt.toISOString(),
    startedAt: startedAt.toISOString(),
  };
  setHandler(restoreProgressQuery, () => state);
  const enter = (phase: RestorePhase, details: string) => {
    state.phase = phase;
    state.phaseSince = new Date().toISOString();
    setCurrentDetails(`**${phase}** — ${details}`);
  };
  const refuse = (type: string, message: string): never => {
    state.phase = 'failed';
    state.error = message;
    setCurrentDetails(`**failed** — ${message}`);
    upsertSearchAttributes([{ key: searchAttributeKeys.outcome, value: 'failed' }]);
    throw ApplicationFailure.create({ type, nonRetryable: true, message });
  };
  upsertSearchAttributes([
    { key: searchAttributeKeys.kind, value: 'restore' },
    { key: searchAttributeKeys.database, value: input.database },
    { key: searchAttributeKeys.region, value: input.region },
    ...(input.requestedBy ? [{ key: searchAttributeKeys.requestedBy, value: input.requestedBy }] : []),
  ]);

  enter('resolving', `${input.target}: reading the catalog and the WAL archive`);
  const parsedTarget = parseRestoreTarget(input.target);
  if (!parsedTarget.ok) return refuse('InvalidInput', `target: ${parsedTarget.problem}`);
  const target = parsedTarget.target;
  const plan = await describePlan();
  if (!plan.databases[input.database])
    return refuse(
      'UnknownReference',
      `database "${input.database}" is not in the plan; declared: ${Object.keys(plan.databases).join(', ')}`,
    );
  if (!plan.regions[input.region])
    return refuse(
      'UnknownReference',
      `region "${input.region}" is not in the plan; declared: ${Object.keys(plan.regions).join(', ')}`,
    );
  // A cutover that could never be approved or applied is refused before any disk is touched.
  const cutover = [
    ...cutoverProblems(plan, input.database, input.region),
    ...(input.requestedBy
      ? []
      : ['input.requestedBy: a cutover names its requester, who may not approve it']),
  ];
  if (input.cutover && cutover.length)
    return refuse(
      'InvalidInput',
      `cannot cut over ${input.database} to ${input.region}: ${cutover.join('; ')}`,
    );
  const gate = input.cutover ? cutoverGate(plan, input) : undefined;
  if (gate) state.approval = gate.state;
  const sources = await listRestoreSources({ database: input.database });
  const resolved = resolveRestoreChain({
    target,
    backups: sources.backups,
    wal: sources.wal,
    now: new Date().toISOString(),
  });
  if (!resolved.ok)
    return refuse('InvalidInput', `cannot restore ${input.database} to ${input.target}: ${resolved.problem}`);
  const { chain } = resolved;
  state.chain = {
    backupId: chain.backup.id,
    firstSegment: chain.firstSegment,
    lastSegment: chain.lastSegment,
    archiveEndLsn: chain.archiveEndLsn,
  };
  const resolveMs = Date.now() - startedAt.getTime();
  const versionNum = sources.versionNums[chain.backup.id] ?? 150000;
  const { copy, call } = regionActivities(plan, input.region);

  let dataDir: string | undefined;
  // Once validated, the instance is the operator's: a cutover that fails or is cancelled keeps it.
  let validated = false;
  try {
    enter('downloading', `backup ${chain.backup.id} into a fresh data directory in ${input.region}`);
    const download = await copy.restoreBaseBackup({
      restoreId,
      database: input.database,
      backupId: chain.backup.id,
      dataDir: input.dataDir,
      target,
    });
    dataDir = download.dataDir;
    state.dataDir = dataDir;

    enter('replaying', `WAL ${chain.firstSegment}…${chain.lastSegment} towards ${input.target}`);
    const started = await copy.startRestoredServer({
      restoreId,
      database: input.database,
      dataDir,
      port: input.port,
      target,
      action: input.action,
      inclusive: input.inclusive,
      versionNum,
      walSegmentSize: sources.wal.walSegmentSize,
    });
    state.port = started.port;
    const { achieved, replayMs } = await copy.awaitRecovery({
      restoreId,
      database: input.database,
      dataDir,
      port: started.port,
      target,
      action: input.action,
      inclusive: input.inclusive,
      versionNum,
    });

    enter('validating', `lsn ${achieved.lsn}, ${achieved.state}`);
    const validateStarted = Date.now();
    const validation = await call.validateRestored({
      database: input.database,
      port: started.port,
      promoted: achieved.state === 'promoted',
    });
    const problems = validationProblems(validation);
    if (problems.length)
      return refuse('ValidationFailed', `the restored instance fails validation: ${problems.join('; ')}`);
    const validateMs = Date.now() - validateStarted;

    const conn = Object.values(plan.regions)[0]!.postgres;
    const dbname = plan.databases[input.database]!.dbname ?? input.database;
    const host = '127.0.0.1';
    const note = achieved.reachedEndOfArchive
      ? `stopped at the end of the archive: lsn ${achieved.lsn}, ${lsnDistance(chain.archiveEndLsn, achieved.lsn)} bytes before the end of the newest archived WAL (${chain.archiveEndLsn})` +
        (target.kind === 'time'
          ? `; the archive holds nothing after ${achieved.lastTransactionTime ?? 'the backup'}, before the target ${target.time}`
          : '')
      : undefined;
    const result: RestoreResult = {
      restoreId,
      database: input.database,
      region: input.region,
      target: input.target,
      achieved,
      chain: {
        backupId: chain.backup.id,
        backupTime: chain.backup.time,
        firstSegment: chain.firstSegment,
        lastSegment: chain.lastSegment,
        archiveEndLsn: chain.archiveEndLsn,
      },
      ...(note ? { note } : {}),
      rto: {
        totalMs: Date.now() - startedAt.getTime(),
        resolveMs,
        downloadMs: download.downloadMs,
        startMs: started.startMs,
        replayMs,
        validateMs,
      },
      bytes: { stored: download.storedBytes, raw: download.rawBytes },
      instance: {
        host,
        port: started.port,
        dataDir,
        url: `postgres://${conn.user}@${host}:${started.port}/${dbname}`,
      },
      validation,
    };
    // Histories recorded before cutover existed never take this path (no cutover in their input).
    if (gate && patched('restore-cutover')) {
      validated = true;
      result.cutover = await cutOverRestore({
        plan,
        input,
        gate,
        restoreId,
        request: `Point ${input.database}'s DNS at the restore in ${input.region} (${result.instance.url}), which reached lsn ${achieved.lsn}, last transaction ${achieved.lastTransactionTime ?? 'none'} (target ${input.target}), requested by ${input.requestedBy ?? 'unknown'}.`,
        enter,
      });
    }
    enter('completed', summarizeRestore(result));
    upsertSearchAttributes([
      {
        key: searchAttributeKeys.outcome,
        value:
          !result.cutover || result.cutover.outcome === 'approved' ? 'completed' : result.cutover.outcome,
      },
    ]);
    return result;
  } catch (err) {
    // Never leave a half-restored server running as if it were done.
    if (dataDir && state.phase !== 'completed' && !validated) {
      const dir = dataDir;
      await CancellationScope.nonCancellable(() => call.stopRestoredServer({ dataDir: dir })).catch(
        () => undefined,
      );
    }
    if (state.phase !== 'failed') {
      state.phase = 'failed';
      state.error = (err as Error).message;
      upsertSearchAttributes([{ key: searchAttributeKeys.outcome, value: 'failed' }]);
    }
    throw err;
  }
}
