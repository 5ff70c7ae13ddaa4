// Failover tests change the stack: they promote the replica, move DNS and scale deployments. This
// puts it back in its starting shape — primary us-east-1 (writable, unfenced), streaming replica
// us-west-2 on its slot, DNS at us-east-1, orders-api running in us-east-1 only — so test files
// that run afterwards see the stack `lifeboat stack up` made. Writes made on a promoted us-west-2
// are discarded: the replica is rebuilt from us-east-1 with a fresh base backup.
import fs from 'node:fs';
import path from 'node:path';
import { AppsV1Api, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import pg from 'pg';
import { createDnsZone } from '../../src/activities/ports/dns-zone.ts';
import { SEEDED_BY } from '../../src/stack/kubernetes-clusters.ts';
import { STACK_REGIONS } from '../../src/stack/layout.ts';
import {
  ensurePostgresPrimary,
  ensurePostgresReplica,
  postgresInRecovery,
  socketDir,
  stopPostgres,
} from '../../src/stack/postgres-clusters.ts';
import { route53ServerRunning, startRoute53Server } from '../../src/stack/route53-server.ts';
import type { TestStack } from './stack.ts';

const PRIMARY = 'us-east-1';
const REPLICA = 'us-west-2';

/** SQL as the superuser over the region's unix socket. */
export async function adminQuery<T extends pg.QueryResultRow>(
  stack: TestStack,
  region: (typeof STACK_REGIONS)[number],
  sql: string,
  params: unknown[] = [],
  database = stack.layout.postgres.database,
): Promise<T[]> {
  const c = new pg.Client({
    host: socketDir(stack.layout, region),
    port: stack.layout.postgres[region].port,
    user: stack.layout.postgres.superuser,
    database,
  });
  // A server stopped or fenced under a test kills the socket: the pending query rejects with the
  // error, and pg also emits it as an event, which without a listener is an uncaught exception.
  c.on('error', () => undefined);
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** The timeline a primary writes on (from its current WAL file name). */
export async function primaryTimeline(
  stack: TestStack,
  region: (typeof STACK_REGIONS)[number],
): Promise<number> {
  const [row] = await adminQuery<{ wal: string }>(
    stack,
    region,
    'select pg_walfile_name(pg_current_wal_lsn()) as wal',
  );
  return parseInt(row!.wal.slice(0, 8), 16);
}

/** Whether the region's stack is already in its starting shape (skips the slow rebuild). */
async function postgresInShape(stack: TestStack): Promise<boolean> {
  if ((await postgresInRecovery(stack.layout, PRIMARY)) !== false) return false;
  if ((await postgresInRecovery(stack.layout, REPLICA)) !== true) return false;
  const [ro] = await adminQuery<{ v: string }>(
    stack,
    PRIMARY,
    "select current_setting('default_transaction_read_only') as v",
  );
  const [rep] = await adminQuery<{ n: string }>(
    stack,
    PRIMARY,
    `select count(*)::text as n from pg_stat_replication where state = 'streaming'`,
  );
  return ro!.v === 'off' && rep!.n === '1';
}

export async function restoreStackShape(stack: TestStack): Promise<void> {
  const { layout, secrets, plan } = stack;
  if (!(await postgresInShape(stack).catch(() => false))) {
    await stopPostgres(layout, REPLICA);
    await stopPostgres(layout, PRIMARY);
    // A fence is ALTER SYSTEM default_transaction_read_only: lift it before the start.
    const auto = path.join(layout.postgres[PRIMARY].dataDir, 'postgresql.auto.conf');
    if (fs.existsSync(auto))
      fs.writeFileSync(
        auto,
        fs
          .readFileSync(auto, 'utf8')
          .split('\n')
          .filter((l) => !/^(default_transaction_read_only|primary_conninfo|primary_slot_name)\b/.test(l))
          .join('\n'),
      );
    // A planned switchover re-attaches us-east-1 as a standby: it starts as a primary again.
    fs.rmSync(path.join(layout.postgres[PRIMARY].dataDir, 'standby.signal'), { force: true });
    fs.rmSync(layout.postgres[REPLICA].dataDir, { recursive: true, force: true });
    await ensurePostgresPrimary(layout, secrets, PRIMARY);
    await ensurePostgresReplica(layout, secrets, REPLICA, PRIMARY);
  }
  if (!route53ServerRunning(layout)) await startRoute53Server(layout, secrets, plan);
  const zone = createDnsZone(plan.dns!, stack.env);
  const zoneId = (await zone.findZoneId())!;
  await zone.upsertRecords(
    zoneId,
    plan.dns!.records.map((r) => ({ name: r.name, type: r.type, ttl: r.ttl, values: r.values[PRIMARY]! })),
    'test: back to the starting shape',
  );
  for (const policy of plan.failover.policies) {
    const t = policy.traffic;
    if (!t) continue;
    for (const region of STACK_REGIONS) {
      const kc = new KubeConfig();
      kc.loadFromFile(layout.kubernetes[region].kubeconfig);
      const apps = kc.makeApiClient(AppsV1Api);
      const core = kc.makeApiClient(CoreV1Api);
      for (const d of t.deployments)
        await apps.patchNamespacedDeploymentScale(
          {
            namespace: t.namespace,
            name: d.name,
            body: { spec: { replicas: region === PRIMARY ? d.replicas : 0 } },
          },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      const cm = t.endpointConfigMap;
      if (!cm) continue;
      if (region === PRIMARY)
        await core
          .replaceNamespacedConfigMap({
            namespace: t.namespace,
            name: cm.name,
            body: {
              metadata: { name: cm.name, namespace: t.namespace, labels: { ...SEEDED_BY } },
              data: { [cm.key]: plan.regions[PRIMARY]!.postgres.host },
            },
          })
          .catch(() => undefined);
      else
        await core
          .deleteNamespacedConfigMap({ namespace: t.namespace, name: cm.name })
          .catch(() => undefined);
    }
  }
}
