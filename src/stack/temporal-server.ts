// The Temporal dev server of the local stack: `temporal server start-dev` on a SQLite file under
// the state folder (workflows, schedules and histories survive restarts), the Web UI beside it,
// and Lifeboat's search attributes registered so the UI can filter runs.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../domain/search-attributes.ts';
import type { StackLayout } from './layout.ts';
import { requireTool } from './prerequisites.ts';
import {
  type PartProcess,
  isAlive,
  portOpen,
  runningPid,
  startDetached,
  stopPart,
  tailLog,
  waitUntil,
} from './processes.ts';

/** `temporal.api.enums.v1.IndexedValueType` values by the names SEARCH_ATTRIBUTES uses. */
const INDEXED_VALUE_TYPE = {
  Text: 1,
  Keyword: 2,
  Int: 3,
  Double: 4,
  Bool: 5,
  Datetime: 6,
  KeywordList: 7,
} as const;

export const temporalPart = (layout: StackLayout): PartProcess => ({
  name: 'temporal',
  runDir: layout.runDir,
  logDir: layout.logDir,
});

export interface TemporalUpResult {
  /** `started` by this call, `reused` (the stack's own, already running) or `external` (someone else's on the port). */
  action: 'started' | 'reused' | 'external';
  pid?: number;
}

/** True when the stack started the dev server and it still runs. */
export function temporalServerRunning(layout: StackLayout): boolean {
  return runningPid(temporalPart(layout)) !== undefined;
}

async function connect(layout: StackLayout, timeoutMs: number): Promise<Connection> {
  const { Connection } = await import('@temporalio/client');
  return Connection.connect({ address: layout.temporal.address, connectTimeout: timeoutMs });
}

/** True when a Temporal frontend answers on the stack's address (getSystemInfo and the namespace exists). */
export async function temporalAnswers(layout: StackLayout, timeoutMs = 2000): Promise<boolean> {
  if (!(await portOpen(layout.temporal.host, layout.temporal.port, timeoutMs))) return false;
  let connection: Connection | undefined;
  try {
    connection = await connect(layout, timeoutMs);
    const conn = connection;
    await conn.withDeadline(Date.now() + timeoutMs, async () => {
      await conn.workflowService.getSystemInfo({});
      await conn.workflowService.describeNamespace({ namespace: layout.temporal.namespace });
    });
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

/** Lifeboat's search attributes that the namespace does not list yet. */
export async function missingSearchAttributes(layout: StackLayout): Promise<string[]> {
  const connection = await connect(layout, 5000);
  try {
    return await listMissing(connection, layout);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

async function listMissing(connection: Connection, layout: StackLayout): Promise<string[]> {
  const listed = await connection.withDeadline(Date.now() + 5000, () =>
    connection.operatorService.listSearchAttributes({ namespace: layout.temporal.namespace }),
  );
  const custom = listed.customAttributes ?? {};
  return Object.keys(SEARCH_ATTRIBUTES).filter((name) => !(name in custom));
}

/** Registers the search attributes the namespace lacks and waits until all are listed. */
export async function ensureSearchAttributes(layout: StackLayout, timeoutMs = 30_000): Promise<void> {
  const connection = await connect(layout, 5000);
  try {
    const deadline = Date.now() + timeoutMs;
    let added = false;
    for (;;) {
      const missing = await listMissing(connection, layout).catch(() => Object.keys(SEARCH_ATTRIBUTES));
      if (missing.length === 0) return;
      if (!added) {
        const searchAttributes = Object.fromEntries(
          missing.map((name) => [
            name,
            INDEXED_VALUE_TYPE[SEARCH_ATTRIBUTES[name as keyof typeof SEARCH_ATTRIBUTES]],
          ]),
        );
        try {
          await connection.withDeadline(Date.now() + 10_000, () =>
            connection.operatorService.addSearchAttributes({
              namespace: layout.temporal.namespace,
              searchAttributes,
            }),
          );
          added = true;
        } catch (err) {
          // AlreadyExists when start-dev registers them concurrently: list again.
          if (!/already exists/i.test(String((err as Error).message))) throw err;
        }
      }
      if (Date.now() > deadline)
        throw new Error(
          `temporal: search attributes ${missing.join(', ')} not registered after ${timeoutMs / 1000}s`,
        );
      await sleep(250);
    }
  } finally {
    await connection.close().catch(() => undefined);
  }
}

function startDevArgs(layout: StackLayout): string[] {
  const t = layout.temporal;
  return [
    'server',
    'start-dev',
    '--db-filename',
    t.dbFile,
    '--ip',
    t.host,
    '--port',
    String(t.port),
    '--ui-port',
    String(t.uiPort),
    '--namespace',
    t.namespace,
    '--log-level',
    'warn',
    ...Object.entries(SEARCH_ATTRIBUTES).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]),
  ];
}

/**
 * Makes sure a Temporal server answers on the stack's address with Lifeboat's search attributes:
 * reuses the stack's own server, or one already on the port that answers as Temporal; otherwise
 * starts `temporal server start-dev` and waits for it.
 */
export async function startTemporalServer(
  layout: StackLayout,
  timeoutMs = 90_000,
): Promise<TemporalUpResult> {
  const part = temporalPart(layout);
  const own = runningPid(part);
  if (own !== undefined) {
    await waitUntil(part, 'frontend', () => temporalAnswers(layout), timeoutMs);
    await ensureSearchAttributes(layout);
    return { action: 'reused', pid: own };
  }
  if (await portOpen(layout.temporal.host, layout.temporal.port)) {
    if (!(await temporalAnswers(layout, 5000)))
      throw new Error(
        `temporal: port ${layout.temporal.port} on ${layout.temporal.host} is in use by a process the stack did not start, ` +
          'and it does not answer as Temporal; stop it or free the port',
      );
    await ensureSearchAttributes(layout);
    return { action: 'external' };
  }
  if (await portOpen(layout.temporal.host, layout.temporal.uiPort))
    throw new Error(
      `temporal: the Web UI port ${layout.temporal.uiPort} on ${layout.temporal.host} is in use by another process; free it`,
    );

  fs.mkdirSync(path.dirname(layout.temporal.dbFile), { recursive: true });
  const pid = startDetached(part, { command: requireTool(layout, 'temporal'), args: startDevArgs(layout) });
  let died = false;
  await waitUntil(
    part,
    'frontend',
    async () => {
      if (!isAlive(pid)) return (died = true);
      return temporalAnswers(layout);
    },
    timeoutMs,
  );
  if (died) throw new Error(`temporal: the dev server exited while starting\n${tailLog(part)}`);
  await ensureSearchAttributes(layout);
  return { action: 'started', pid };
}

/** Stops the dev server if the stack started it; false when there was nothing of ours to stop. */
export async function stopTemporalServer(layout: StackLayout): Promise<boolean> {
  return stopPart(temporalPart(layout), 20_000);
}
