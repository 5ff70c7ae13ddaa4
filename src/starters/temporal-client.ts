// The CLI's Temporal client, connected the same way as the workers.
import { Client, Connection } from '@temporalio/client';
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
