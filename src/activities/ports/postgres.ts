// The PostgreSQL port: a short-lived connection to one server of the plan, password resolved
// from the worker's environment.
import pg from 'pg';
import type { PostgresConnection } from '../../domain/plan.ts';
import { requireEnv, type Environment } from './environment.ts';

export type SqlClient = Pick<pg.Client, 'query' | 'end'>;

/** Connects within `timeoutMs`; the caller ends the client. */
export async function connectPostgres(
  conn: PostgresConnection,
  dbname: string,
  env: Environment,
  timeoutMs = 5000,
): Promise<SqlClient> {
  const client = new pg.Client({
    host: conn.host,
    port: conn.port,
    user: conn.user,
    database: dbname,
    password: conn.passwordEnv
      ? requireEnv(env, conn.passwordEnv, `the password of ${conn.user}@${conn.host}`)
      : undefined,
    ssl: conn.sslMode === 'disable' ? false : { rejectUnauthorized: conn.sslMode === 'verify-full' },
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    application_name: 'lifeboat',
  });
  // When the server goes away mid-query (stopped, fenced, failed over) pg rejects the pending
  // query and also emits 'error'; unheard, that event would be an uncaught exception that takes
  // the whole worker down instead of failing one activity attempt.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  return client;
}
