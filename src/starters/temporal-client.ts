// The CLI's Temporal client, connected the same way as the workers.
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { dataConverterFromEnv } from '../codec/aes-gcm-codec.ts';
import { temporalTarget, type TemporalTarget } from '../workers/temporal-connection.ts';

export async function connectClient(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ client: Client; target: TemporalTarget; close: () => Promise<void> }> {
  const target = temporalTarget(env);
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...target.connectionOptions, connectTimeout: '5s' });
  } catch (err) {
    throw new Error(
      `cannot reach Temporal at ${target.address} (${(err as Error).message}); is the stack up (lifeboat stack up) or TEMPORAL_ADDRESS set?`,
      { cause: err },
    );
  }
  return {
    client: new Client({ connection, namespace: target.namespace, dataConverter: dataConverterFromEnv(env) }),
    target,
    close: () => connection.close(),
  };
}

/**
 * How long a query may wait for a worker. A query is answered by a worker (it replays the
 * workflow, even a closed one): with none running the server holds it about a minute, and
 * `lifeboat status` would hang that long in the middle of an incident.
 */
export const QUERY_WAIT_MS = 5_000;

/** A query's answer, or why there is none: no worker answered in time, or the query failed. */
export type QueryAnswer<T> = { ok: true; value: T } | { ok: false; noWorker: boolean };

export async function queryWithin<T>(
  client: Client,
  handle: WorkflowHandle,
  name: string,
  ms = QUERY_WAIT_MS,
): Promise<QueryAnswer<T>> {
  const deadline = Date.now() + ms;
  try {
    return { ok: true, value: await client.connection.withDeadline(deadline, () => handle.query<T>(name)) };
  } catch (err) {
    // No worker: the deadline passed (DEADLINE_EXCEEDED, or CANCELLED when grpc-js's own timer
    // ends the call first), or the server said so before it (FAILED_PRECONDITION "no poller seen
    // for task queue recently"). A worker's own refusal comes back well within the wait.
    const cause = (err as { cause?: { code?: number; details?: string } }).cause;
    const timedOut = cause?.code === 4 || Date.now() >= deadline - 100;
    return { ok: false, noWorker: timedOut || /no poller seen/.test(cause?.details ?? '') };
  }
}

/** The answer's value, or undefined. */
export const answered = <T>(a: QueryAnswer<T>): T | undefined => (a.ok ? a.value : undefined);
