// `lifeboat archiver start|stop|status --database <db>`: the long-running WAL archiver of a
// database (workflow id wal-archiver-<db>). `start` is idempotent: one already running is kept.
// `stop` cancels it and waits until its receiver has stopped. `status` shows the workflow's own
// status (query) and the live figures of the streaming run in flight (its last heartbeat).
import os from 'node:os';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, type Payload } from '@temporalio/common';
import { workflowIds } from '../domain/naming.ts';
import { archiverSummary, type ArchiveWalProgress, type WalArchiverStatus } from '../domain/wal.ts';
import { SHARED_TASK_QUEUE } from '../domain/plan.ts';
import { webUiLink } from '../workers/temporal-connection.ts';
import type { walArchiverWorkflow } from '../workflows/wal-archiver.ts';
import { parseCommandArgs } from './args.ts';
import { loadPlanInto, databaseInto } from './plan-args.ts';
import { EXIT, printError, printJson } from './output.ts';
import { connectClient } from './temporal-client.ts';

const ACTIONS = ['start', 'stop', 'status'] as const;
type Action = (typeof ACTIONS)[number];

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs(
    'archiver',
    argv,
    {
      file: { type: 'string', short: 'f' },
      json: { type: 'boolean' },
      database: { type: 'string' },
    },
    true,
  );
  if (!args) return EXIT.badInput;
  const problems: string[] = [];
  const [action, ...extra] = args._;
  if (!ACTIONS.includes(action as Action))
    problems.push(`expected: lifeboat archiver ${ACTIONS.join('|')} --database <db>`);
  if (extra.length) problems.push(`unexpected arguments: ${extra.join(' ')}`);
  const plan = loadPlanInto(problems, args.file as string | undefined);
  const database = databaseInto(problems, plan, args.database as string | undefined);
  if (problems.length || !database) {
    for (const p of problems) printError(p);
    return EXIT.badInput;
  }

  const { client, target, close } = await connectClient();
  try {
    const workflowId = workflowIds.walArchiver(database);
    const link = webUiLink(target, workflowId);
    const json = Boolean(args.json);
    if (action === 'start') return await start(client, workflowId, database, link, json);
    if (action === 'stop') return await stop(client, workflowId, link, json);
    return await status(client, workflowId, link, json);
  } finally {
    await close();
  }
}

async function start(
  client: Client,
  workflowId: string,
  database: string,
  link: string,
  json: boolean,
): Promise<number> {
  const { started } = await startArchiver(
    client,
    database,
    process.env.LIFEBOAT_USER ?? os.userInfo().username,
  );
  if (json) printJson({ workflowId, started, alreadyRunning: !started, webUi: link });
  else
    process.stdout.write(
      started
        ? `WAL archiver of ${database} started: ${workflowId}\n  ${link}\n`
        : `WAL archiver of ${database} already runs: ${workflowId}\n  ${link}\n`,
    );
  return EXIT.ok;
}

/** Starts the WAL archiver of a database unless one runs; used by `archiver start` and `apply`. */
export async function startArchiver(
  client: Client,
  database: string,
  requestedBy: string,
): Promise<{ workflowId: string; started: boolean }> {
  const workflowId = workflowIds.walArchiver(database);
  try {
    await client.workflow.start<typeof walArchiverWorkflow>('walArchiverWorkflow', {
      taskQueue: SHARED_TASK_QUEUE,
      workflowId,
      args: [{ database, requestedBy }],
      staticSummary: `WAL archiver: ${database}`,
    });
    return { workflowId, started: true };
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    return { workflowId, started: false };
  }
}

async function stop(client: Client, workflowId: string, link: string, json: boolean): Promise<number> {
  const handle = client.workflow.getHandle<typeof walArchiverWorkflow>(workflowId);
  try {
    const described = await handle.describe();
    if (described.status.name !== 'RUNNING') {
      if (json) printJson({ workflowId, stopped: false, status: described.status.name, webUi: link });
      else process.stdout.write(`no WAL archiver runs (${workflowId} is ${described.status.name})\n`);
      return EXIT.ok;
    }
    await handle.cancel();
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    if (json) printJson({ workflowId, stopped: false, status: 'NOT_FOUND' });
    else process.stdout.write(`no WAL archiver runs (${workflowId} was never started)\n`);
    return EXIT.ok;
  }
  // Cancellation waits for the streaming activity to stop pg_receivewal; the workflow then
  // completes with its final status. A continue-as-new in between hands over to a new run.
  const final = await handle.result();
  if (json) printJson({ workflowId, stopped: true, status: final, webUi: link });
  else process.stdout.write(`stopped. ${archiverSummary(final)}\n`);
  return EXIT.ok;
}

async function status(client: Client, workflowId: string, link: string, json: boolean): Promise<number> {
  const handle = client.workflow.getHandle<typeof walArchiverWorkflow>(workflowId);
  let described;
  try {
    described = await handle.describe();
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    printError(`no WAL archiver: ${workflowId} was never started (lifeboat archiver start --database …)`);
    return EXIT.failed;
  }
  const running = described.status.name === 'RUNNING';
  const state: WalArchiverStatus | undefined = running
    ? await handle.query<WalArchiverStatus>('walArchiverStatus')
    : await handle.result().catch(() => undefined);
  const pending = described.raw.pendingActivities?.find((a) => a.activityType?.name === 'archiveWal');
  const live = await heartbeatOf(client, pending?.heartbeatDetails?.payloads?.[0]);
  const healthy = running && state?.phase === 'archiving';
  if (json)
    printJson({ workflowId, workflowStatus: described.status.name, status: state, live, webUi: link });
  else {
    process.stdout.write(`${workflowId}: ${described.status.name}\n  ${link}\n`);
    if (state) process.stdout.write(`${archiverSummary(state)}\n`);
    if (live)
      process.stdout.write(
        `live: ${live.segmentsArchived} segment(s) stored in this run, last ${live.lastArchived ?? 'none'}; ` +
          `partial up to ${live.lastPartialLsn ?? '-'}; ${live.spoolSegments} waiting in the spool; ` +
          `storage ${live.storageReachable ? 'reachable' : 'UNREACHABLE'}; receiver ${live.receiverRunning ? 'streaming' : 'DOWN'}\n`,
      );
    for (const a of state?.alerts.slice(-5) ?? [])
      process.stdout.write(`alert ${a.at} ${a.kind}: ${a.text}\n`);
  }
  return healthy ? EXIT.ok : EXIT.failed;
}

/** The last heartbeat of the run in flight, through the client's codecs (history may be encrypted). */
async function heartbeatOf(
  client: Client,
  payload: Payload | undefined,
): Promise<ArchiveWalProgress | undefined> {
  if (!payload) return undefined;
  try {
    const converter = client.options.loadedDataConverter;
    let payloads = [payload];
    for (const codec of [...converter.payloadCodecs].reverse()) payloads = await codec.decode(payloads);
    return converter.payloadConverter.fromPayload(payloads[0]!);
  } catch {
    return undefined; // a key this CLI does not hold: the query's status is still shown
  }
}
