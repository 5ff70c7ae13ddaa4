// PostgreSQL activities: run on the task queue of the region whose server they touch.
import type { PostgresFacts } from '../domain/doctor.ts';
import { LifeboatError } from '../domain/errors.ts';
import { dbnameOf, type Plan } from '../domain/plan.ts';
import type { Environment } from './ports/environment.ts';
import { connectPostgres } from './ports/postgres.ts';

export function createPostgresActivities(deps: { plan: Plan; env: Environment }) {
  return {
    /** Role, version and replication position of a database's server in one region. */
    async inspectPostgres(input: { region: string; database: string }): Promise<PostgresFacts> {
      const region = deps.plan.regions[input.region];
      if (!region) throw new LifeboatError('UnknownReference', `region "${input.region}" is not in the plan`);
      let client;
      try {
        client = await connectPostgres(region.postgres, dbnameOf(deps.plan, input.database), deps.env);
      } catch (err) {
        if (err instanceof LifeboatError) throw err;
        return {
          reachable: false,
          error: `${region.postgres.host}:${region.postgres.port}: ${(err as Error).message}`,
        };
      }
      try {
        const base = await client.query<{ version: string; in_recovery: boolean }>(
          `select current_setting('server_version') as version, pg_is_in_recovery() as in_recovery`,
        );
        const { version, in_recovery } = base.rows[0]!;
        if (!in_recovery) {
          // One connection runs one query at a time.
          const lsn = await client.query<{ lsn: string }>(`select pg_current_wal_lsn()::text as lsn`);
          const standbys = await client.query<{ name: string; state: string; replay_lsn: string | null }>(
            `select application_name as name, state, replay_lsn::text from pg_stat_replication`,
          );
          const slots = await client.query<{ name: string; active: boolean }>(
            `select slot_name as name, active from pg_replication_slots where slot_type = 'physical'`,
          );
          return {
            reachable: true,
            serverVersion: version,
            inRecovery: false,
            lsn: lsn.rows[0]!.lsn,
            standbys: standbys.rows.map((r) => ({ name: r.name, state: r.state, replayLsn: r.replay_lsn })),
            slots: slots.rows,
          };
        }
        const replica = await client.query<{
          replay: string | null;
          receive: string | null;
          delay: number | null;
          status: string | null;
        }>(
          `select pg_last_wal_replay_lsn()::text as replay, pg_last_wal_receive_lsn()::text as receive,
                  extract(epoch from now() - pg_last_xact_replay_timestamp())::float8 as delay,
                  (select status from pg_stat_wal_receiver) as status`,
        );
        const r = replica.rows[0]!;
        return {
          reachable: true,
          serverVersion: version,
          inRecovery: true,
          lsn: r.replay ?? undefined,
          receiveLsn: r.receive ?? undefined,
          replayDelaySeconds: r.delay,
          walReceiverStatus: r.status ?? undefined,
        };
      } finally {
        await client.end().catch(() => undefined);
      }
    },
  };
}
