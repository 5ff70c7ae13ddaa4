// Continuous WAL archiving of one database, for months: a loop of bounded streaming runs on the
// primary region's worker, each reporting what it stored and what went wrong; alerts go to the
// log, the status query, current details, the LifeboatOutcome search attribute and the plan's
// webhooks. Continue-as-new every `continueAsNewAfter` runs keeps the history small.
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  continueAsNew,
  defineQuery,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { parseDuration } from '../domain/duration.ts';
import { NON_RETRYABLE_ERROR_TYPES } from '../domain/errors.ts';
import { regionTaskQueue, type Plan } from '../domain/plan.ts';
import { searchAttributeKeys } from '../domain/search-attributes.ts';
import {
  addAlert,
  applyArchiveRun,
  archiverOutcome,
  archiverSummary,
  initialArchiverStatus,
  NOTIFIED_ALERTS,
  setArchiverPhase,
  walArchiverInputSchema,
  type ArchiveWalResult,
  type WalAlert,
  type WalArchiverInput,
  type WalArchiverStatus,
} from '../domain/wal.ts';
import { parseWorkflowInput } from './input.ts';
import type { Activities } from '../activities/index.ts';

/** Short API calls: the plan, webhooks. */
const apiCall = {
  startToCloseTimeout: '20s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumAttempts: 3,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
} as const;

/**
 * The streaming run: bounded by its own `runFor`; a lost worker is noticed within the heartbeat
 * timeout and the run restarts on another worker of the region (the slot kept the WAL). On
 * cancellation the workflow waits until the activity has stopped pg_receivewal.
 */
function streaming(runForMs: number) {
  return {
    startToCloseTimeout: runForMs + 120_000,
    heartbeatTimeout: '20s',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '1s',
      backoffCoefficient: 2,
      maximumInterval: '30s',
      maximumAttempts: 5,
      nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
    },
  };
}

const { describePlan, notify } = proxyActivities<Activities>(apiCall);

/** The archiver's state: phase, last segment, counters, storage and receiver health, alerts. */
export const walArchiverStatusQuery = defineQuery<WalArchiverStatus>('walArchiverStatus');

export async function walArchiverWorkflow(rawInput: WalArchiverInput): Promise<WalArchiverStatus> {
  const input = parseWorkflowInput(walArchiverInputSchema, rawInput, 'walArchiverWorkflow');
  const now = () => new Date().toISOString();
  const status: WalArchiverStatus = input.carried
    ? { ...input.carried, generations: input.carried.generations + 1 }
    : initialArchiverStatus(input.database, now());
  setHandler(walArchiverStatusQuery, () => status);
  upsertSearchAttributes([
    { key: searchAttributeKeys.kind, value: 'wal-archiver' },
    { key: searchAttributeKeys.database, value: input.database },
    ...(input.requestedBy ? [{ key: searchAttributeKeys.requestedBy, value: input.requestedBy }] : []),
  ]);

  const plan = await describePlan();
  const db = plan.databases[input.database];
  if (!db)
    throw ApplicationFailure.create({
      type: 'UnknownReference',
      nonRetryable: true,
      message: `database "${input.database}" is not in the plan; declared: ${Object.keys(plan.databases).join(', ')}`,
    });
  status.region = db.primaryRegion;
  upsertSearchAttributes([{ key: searchAttributeKeys.region, value: db.primaryRegion }]);
  const policy = plan.backup.policies.find((p) => p.database === input.database);
  const partialEveryMs = parseDuration(input.partialUploadEvery ?? policy?.walPartialUpload ?? '60s')!;
  const runForMs = parseDuration(input.runFor)!;
  const { archiveWal } = proxyActivities<Activities>({
    ...streaming(runForMs),
    taskQueue: regionTaskQueue(plan, db.primaryRegion),
  });
  const notifications: Promise<void>[] = [];
  const report = () => {
    setCurrentDetails(archiverSummary(status));
    upsertSearchAttributes([{ key: searchAttributeKeys.outcome, value: archiverOutcome(status) }]);
  };
  const raise = (alerts: WalAlert[]) => {
    for (const a of alerts) {
      if (a.kind === 'storage-restored' || a.kind === 'receiver-restored') log.info(a.text);
      else log.warn(a.text);
    }
    const notified = alerts.filter((a) => NOTIFIED_ALERTS.includes(a.kind));
    // Sent while the next run streams: a slow webhook must not hold up archiving.
    if (notified.length) notifications.push(notifyAll(plan, notified));
    report();
  };
  report();

  try {
    for (let runs = 0; ;) {
      let result: ArchiveWalResult;
      try {
        result = await archiveWal({
          database: input.database,
          region: db.primaryRegion,
          runForMs,
          partialEveryMs,
          lastArchived: status.lastArchived?.segment,
          storageReachable: status.storage.reachable,
          receiverRunning: status.receiver.running,
          announceStart: status.phase === 'starting',
        });
      } catch (err) {
        if (isCancellation(err)) throw err;
        const message = ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message;
        status.lastError = message;
        setArchiverPhase(status, 'failing', now());
        raise([
          addAlert(
            status,
            'archiver-failing',
            `WAL archiver of ${input.database} is failing: ${message}`,
            now(),
          ),
        ]);
        // The spool and the slot hold the WAL meanwhile; try again after a pause.
        await sleep(Math.min(runForMs, 60_000));
        runs++;
        continue;
      }
      raise(applyArchiveRun(status, result, now()));
      runs++;
      if (runs >= input.continueAsNewAfter || workflowInfo().continueAsNewSuggested) {
        await Promise.all(notifications);
        await continueAsNew<typeof walArchiverWorkflow>({ ...input, carried: status });
      }
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // Stopped by an operator: the streaming activity has already stopped pg_receivewal (the
    // activity's cancellation is waited for); record the end and return the final status.
    return await CancellationScope.nonCancellable(async () => {
      setArchiverPhase(status, 'stopped', now());
      report();
      log.info(
        `WAL archiver of ${input.database} stopped; last segment ${status.lastArchived?.segment ?? 'none'}`,
      );
      await Promise.all(notifications);
      return status;
    });
  }
}

async function notifyAll(plan: Plan, alerts: WalAlert[]): Promise<void> {
  const hooks = plan.notifications.webhooks.filter((w) => w.events.includes('failure'));
  const text = alerts.map((a) => a.text).join('\n');
  const title =
    alerts.length === 1
      ? `Lifeboat WAL archiver: ${alerts[0]!.kind}`
      : `Lifeboat WAL archiver: ${alerts.length} alerts`;
  await Promise.all(
    hooks.map((w) =>
      notify({
        webhook: w.name,
        message: {
          event: 'failure',
          title,
          text,
          workflowId: workflowInfo().workflowId,
          fields: { alerts: alerts.map((a) => a.kind).join(', ') },
        },
      }).then(
        () => undefined,
        (err: unknown) => log.warn(`webhook ${w.name} not notified: ${(err as Error).message}`),
      ),
    ),
  );
}
