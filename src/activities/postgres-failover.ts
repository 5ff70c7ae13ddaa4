// PostgreSQL activities of a regional failover: fencing the old primary, waiting for the replica
// to replay, promoting it, and a write-and-read probe. They are called on the target region's task
// queue (the source region may be dead, with its worker), over the plan's connections.
//
// The fencing epoch lives in the database itself, in `lifeboat.failover_epochs`: a row written on
// the old primary just before it is made read-only replicates to the target, and a row written on
// the target once promoted, so the new primary carries the whole fencing history and a later run
// (or an operator) can tell which primary is current and how many promotions happened.
import { heartbeat, sleep } from '@temporalio/activity';
import type { FencingRecord } from '../domain/failover.ts';
import { LifeboatError } from '../domain/errors.ts';
import { dbnameOf, type Plan } from '../domain/plan.ts';
import type { Environment } from './ports/environment.ts';
import { connectPostgres, type SqlClient } from './ports/postgres.ts';

const EPOCH_TABLE = `create schema if not exists lifeboat;
create table if not exists lifeboat.failover_epochs (
  epoch bigint primary key,
  event text not null check (event in ('fenced', 'promoted')),
  region text not null,
  workflow_id text not null,
  run_id text not null,
  at timestamptz not null default now(),
  unique (run_id, event)
)`;

export interface PromoteResult {
  /** True when the server was already out of recovery: a retried activity never promotes twice. */
  alreadyPromoted: boolean;
  epoch: number;
  /** The timeline the new primary writes on (promotion starts a new one). */
  timeline: number;
  lsn: string;
}

export function createPostgresFailoverActivities(deps: { plan: Plan; env: Environment }) {
  const connect = async (region: string, database: string, timeoutMs = 5000): Promise<SqlClient> => {
    const r = deps.plan.regions[region];
    if (!r) throw new LifeboatError('UnknownReference', `region "${region}" is not in the plan`);
    return connectPostgres(r.postgres, dbnameOf(deps.plan, database), deps.env, timeoutMs);
  };
  const recordEpoch = async (
    c: SqlClient,
    event: 'fenced' | 'promoted',
    region: string,
    ids: { workflowId: string; runId: string },
  ): Promise<number> => {
    await c.query(EPOCH_TABLE);
    // The (run, event) key makes a retried activity find its own row instead of adding one.
    await c.query(
      `insert into lifeboat.failover_epochs (epoch, event, region, workflow_id, run_id)
         select coalesce(max(epoch), 0) + 1, $1, $2, $3, $4 from lifeboat.failover_epochs
       on conflict (run_id, event) do nothing`,
      [event, region, ids.workflowId, ids.runId],
    );
    const r = await c.query<{ epoch: string }>(
      `select epoch::text from lifeboat.failover_epochs where run_id = $1 and event = $2`,
      [ids.runId, event],
    );
    return Number(r.rows[0]!.epoch);
  };

  return {
    /**
     * Makes the old primary refuse writes, if it can be reached: records the fencing epoch, sets
     * default_transaction_read_only (ALTER SYSTEM + reload) and ends every client session so none
     * keeps writing in a transaction begun before. Unreachable is an answer, not an error.
     */
    async fencePostgres(input: {
      database: string;
      region: string;
      workflowId: string;
      runId: string;
    }): Promise<FencingRecord> {
      let c: SqlClient;
      try {
        c = await connect(input.region, input.database, 3000);
      } catch (err) {
        if (err instanceof LifeboatError) throw err;
        return { fenced: false, detail: `unreachable, not fenced: ${(err as Error).message}` };
      }
      try {
        const rec = await c.query<{ rec: boolean }>('select pg_is_in_recovery() as rec');
        if (rec.rows[0]!.rec)
          return { fenced: false, detail: 'in recovery (not a primary): nothing to fence' };
        // A retry after the fence took effect finds the session read-only; this session may write.
        await c.query('set default_transaction_read_only = off');
        const epoch = await recordEpoch(c, 'fenced', input.region, input);
        await c.query('alter system set default_transaction_read_only = on');
        await c.query('select pg_reload_conf()');
        // pg_reload_conf() only signals the postmaster: until it has re-read its configuration,
        // new sessions still start writable, and one of them could commit after the final LSN
        // (a planned switchover's test lost such a row). Wait until a new session is read-only.
        let fencedAt: string | undefined;
        for (let i = 0; !fencedAt; i++) {
          const probe = await connect(input.region, input.database, 3000);
          try {
            const ro = await probe.query<{ v: string; t: string }>(
              `select current_setting('default_transaction_read_only') as v, clock_timestamp()::text as t`,
            );
            if (ro.rows[0]!.v === 'on') fencedAt = ro.rows[0]!.t;
          } finally {
            await probe.end().catch(() => undefined);
          }
          if (fencedAt) break;
          if (i >= 100) throw new LifeboatError('Unreachable', 'the fence did not take effect within 10 s');
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        // Sessions from before the fence are ended, and waited for (5 s each). pg_signal_backend
        // cannot end a superuser's session (asking is an error), so those are not asked.
        await c.query(
          `select pg_terminate_backend(a.pid, 5000) from pg_stat_activity a join pg_roles r on r.oid = a.usesysid
            where a.pid <> pg_backend_pid() and a.backend_type = 'client backend' and not r.rolsuper`,
        );
        // Every transaction begun since the fence took effect is read-only; one begun before may
        // still commit (a superuser's, or one that outlived its termination). The final LSN is
        // taken only when none is left, so no committed write can follow it.
        for (let i = 0; ; i++) {
          const open = await c.query<{ pid: number; usename: string | null; xact_start: string }>(
            `select pid, usename, xact_start::text from pg_stat_activity
              where pid <> pg_backend_pid() and backend_type = 'client backend' and xact_start < $1::timestamptz`,
            [fencedAt],
          );
          if (open.rows.length === 0) break;
          if (i >= 50)
            throw new LifeboatError(
              'Unreachable',
              `sessions hold transactions begun before the fence and may still commit: ${open.rows
                .map((r) => `pid ${r.pid} (${r.usename ?? 'unknown user'}, since ${r.xact_start})`)
                .join(', ')}; end them (pg_terminate_backend as a superuser) and the fence is retried`,
            );
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        const lsn = await c.query<{ lsn: string; t: string }>(
          'select pg_current_wal_lsn()::text as lsn, clock_timestamp()::text as t',
        );
        return {
          fenced: true,
          epoch,
          finalLsn: lsn.rows[0]!.lsn,
          detail: `read-only (default_transaction_read_only = on) from ${fencedAt}, client sessions ended, final LSN read at ${lsn.rows[0]!.t}, epoch ${epoch}`,
        };
      } finally {
        await c.end().catch(() => undefined);
      }
    },

    /** Lets a fenced primary take writes again: the compensation of fencePostgres before promotion. */
    async unfencePostgres(input: { database: string; region: string }): Promise<{ detail: string }> {
      const c = await connect(input.region, input.database);
      try {
        await c.query('set default_transaction_read_only = off');
        await c.query('alter system reset default_transaction_read_only');
        await c.query('select pg_reload_conf()');
        return { detail: 'default_transaction_read_only reset; writes accepted again' };
      } finally {
        await c.end().catch(() => undefined);
      }
    },

    /** Waits (heartbeating) until the replica has replayed `lsn`, or `timeoutMs` passed. */
    async waitForReplay(input: {
      database: string;
      region: string;
      lsn: string;
      timeoutMs: number;
    }): Promise<{ caughtUp: boolean; replayLsn: string | null }> {
      const c = await connect(input.region, input.database);
      try {
        const deadline = Date.now() + input.timeoutMs;
        for (;;) {
          const r = await c.query<{ replay: string | null; done: boolean }>(
            `select pg_last_wal_replay_lsn()::text as replay,
                    coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) as done`,
            [input.lsn],
          );
          const { replay, done } = r.rows[0]!;
          if (done || Date.now() > deadline) return { caughtUp: done, replayLsn: replay };
          heartbeat({ replay });
          await sleep(100);
        }
      } finally {
        await c.end().catch(() => undefined);
      }
    },

    /**
     * Promotes the replica with pg_promote(), idempotently: a server already out of recovery is a
     * success (a retry after a crash). Heartbeats while recovery ends, so a lost worker is noticed
     * in seconds. Records the promotion in the epoch table on the new primary.
     */
    async promotePostgres(input: {
      database: string;
      region: string;
      workflowId: string;
      runId: string;
    }): Promise<PromoteResult> {
      const c = await connect(input.region, input.database);
      try {
        const inRecovery = async () =>
          (await c.query<{ rec: boolean }>('select pg_is_in_recovery() as rec')).rows[0]!.rec;
        const alreadyPromoted = !(await inRecovery());
        if (!alreadyPromoted) {
          await c.query('select pg_promote(false)');
          const deadline = Date.now() + 60_000;
          while (await inRecovery()) {
            if (Date.now() > deadline)
              throw new LifeboatError(
                'Unreachable',
                `${input.region} is still in recovery 60s after pg_promote()`,
              );
            heartbeat('promoting');
            await sleep(100);
          }
        }
        await c.query('set default_transaction_read_only = off');
        const epoch = await recordEpoch(c, 'promoted', input.region, input);
        const r = await c.query<{ lsn: string; wal: string }>(
          'select pg_current_wal_lsn()::text as lsn, pg_walfile_name(pg_current_wal_lsn()) as wal',
        );
        return {
          alreadyPromoted,
          epoch,
          timeline: parseInt(r.rows[0]!.wal.slice(0, 8), 16),
          lsn: r.rows[0]!.lsn,
        };
      } finally {
        await c.end().catch(() => undefined);
      }
    },

    /** Writes a row on the (new) primary and reads it back: the proof that it takes writes. */
    async probeWrite(input: {
      database: string;
      region: string;
      workflowId: string;
    }): Promise<{ ok: boolean; detail: string }> {
      let c: SqlClient;
      try {
        c = await connect(input.region, input.database);
      } catch (err) {
        if (err instanceof LifeboatError) throw err;
        return { ok: false, detail: `unreachable: ${(err as Error).message}` };
      }
      try {
        await c.query(`create schema if not exists lifeboat;
          create table if not exists lifeboat.write_probes (
            id bigserial primary key, workflow_id text not null, at timestamptz not null default now())`);
        const w = await c.query<{ id: string }>(
          'insert into lifeboat.write_probes (workflow_id) values ($1) returning id::text',
          [input.workflowId],
        );
        const id = w.rows[0]!.id;
        const r = await c.query('select 1 from lifeboat.write_probes where id = $1', [id]);
        return r.rowCount === 1
          ? { ok: true, detail: `wrote and read back lifeboat.write_probes row ${id}` }
          : { ok: false, detail: `row ${id} written but not read back` };
      } catch (err) {
        return { ok: false, detail: `write refused: ${(err as Error).message}` };
      } finally {
        await c.end().catch(() => undefined);
      }
    },
  };
}
