// Health probes of a region: the plan's health checks (postgres, tcp, http), each bounded by its
// own timeout. Run on another region's task queue, they tell whether this region is reachable
// from there. A failed check is an answer, never an error, so detection counts real checks.
import net from 'node:net';
import { parseDuration } from '../domain/duration.ts';
import { LifeboatError } from '../domain/errors.ts';
import { dbnameOf, type Plan } from '../domain/plan.ts';
import type { Environment } from './ports/environment.ts';
import { connectPostgres } from './ports/postgres.ts';

export interface HealthCheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

export interface RegionHealth {
  region: string;
  healthy: boolean;
  checks: HealthCheckResult[];
}

export function createHealthActivities(deps: { plan: Plan; env: Environment; fetch?: typeof fetch }) {
  const doFetch = deps.fetch ?? fetch;
  return {
    /** Runs the region's health checks (a PostgreSQL check when the plan lists none). */
    async probeRegion(input: { region: string; database: string }): Promise<RegionHealth> {
      const region = deps.plan.regions[input.region];
      if (!region) throw new LifeboatError('UnknownReference', `region "${input.region}" is not in the plan`);
      const checks = region.healthChecks.length
        ? region.healthChecks
        : [{ name: 'postgres', kind: 'postgres' as const, target: undefined, timeout: '5s' }];
      const results = await Promise.all(
        checks.map(async (check): Promise<HealthCheckResult> => {
          const timeoutMs = parseDuration(check.timeout) ?? 5000;
          const started = Date.now();
          try {
            if (check.kind === 'postgres') {
              const c = await connectPostgres(
                region.postgres,
                dbnameOf(deps.plan, input.database),
                deps.env,
                timeoutMs,
              );
              try {
                await c.query('select 1');
              } finally {
                await c.end().catch(() => undefined);
              }
            } else if (check.kind === 'tcp') {
              await tcpConnect(check.target ?? '', timeoutMs);
            } else {
              const res = await doFetch(check.target ?? '', { signal: AbortSignal.timeout(timeoutMs) });
              await res.body?.cancel();
              if (!res.ok) throw new Error(`HTTP ${res.status}`);
            }
            return { name: check.name, ok: true, detail: `ok in ${Date.now() - started}ms` };
          } catch (err) {
            if (err instanceof LifeboatError && err.code === 'MissingSecret') throw err;
            return { name: check.name, ok: false, detail: (err as Error).message.split('\n')[0]! };
          }
        }),
      );
      return { region: input.region, healthy: results.every((r) => r.ok), checks: results };
    },
  };
}

function tcpConnect(target: string, timeoutMs: number): Promise<void> {
  const m = /^(.+):(\d+)$/.exec(target);
  if (!m) return Promise.reject(new Error(`expected host:port, got "${target}"`));
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: m[1]!, port: Number(m[2]) });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer within ${timeoutMs}ms`)));
    socket.once('connect', () => {
      socket.end();
      resolve();
    });
    socket.once('error', reject);
  });
}
