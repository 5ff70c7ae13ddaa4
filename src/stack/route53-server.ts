// The stack's Route53-compatible API: moto's server (PyPI moto[server]) on loopback. moto keeps
// its state in memory, so every start seeds the plan's hosted zone and records again.
import fs from 'node:fs';
import path from 'node:path';
import {
  ChangeResourceRecordSetsCommand,
  CreateHostedZoneCommand,
  ListHostedZonesByNameCommand,
  ListHostedZonesCommand,
  ListResourceRecordSetsCommand,
  type Change,
  type RRType,
  type Route53Client,
} from '@aws-sdk/client-route-53';
import type { DnsPlan, Plan } from '../domain/plan.ts';
import type { StackLayout } from './layout.ts';
import { stackRoute53Client, type StackSecrets } from './aws-clients.ts';
import {
  logFile,
  portOpen,
  runningPid,
  startDetached,
  stopPart,
  waitUntil,
  type PartProcess,
} from './processes.ts';
import { findBinary, withLockFile } from './tls.ts';

const START_TIMEOUT_MS = 60_000;

const part = (layout: StackLayout): PartProcess => ({
  name: 'route53',
  runDir: layout.runDir,
  logDir: layout.logDir,
});
const startLock = (layout: StackLayout) => path.join(layout.runDir, 'route53.lock');

export function route53ServerRunning(layout: StackLayout): boolean {
  return runningPid(part(layout)) !== undefined;
}

/** The `moto_server` script: the one installed by scripts/bootstrap.sh, else the one on PATH. */
export function motoBinary(layout: StackLayout): string {
  return findBinary(layout, 'moto_server', 'PyPI moto[server]');
}

export function motoArgs(layout: StackLayout): string[] {
  return ['-H', layout.route53.host, '-p', String(layout.route53.port)];
}

export interface SeedOptions {
  /**
   * `missing` (default): create the zone and the records that do not exist yet, with the values of
   * each database's primaryRegion, and leave existing records alone, so that re-running
   * `stack up` does not undo a failover's DNS change. `all`: UPSERT every record to the plan's
   * primary values.
   */
  records?: 'missing' | 'all';
}

/**
 * Starts moto's server unless the one the stack started still runs, waits until it answers
 * Route53 calls, then seeds the plan's hosted zone and records (see SeedOptions). Idempotent, and
 * safe when several processes call it at once.
 */
export async function startRoute53Server(
  layout: StackLayout,
  secrets: StackSecrets,
  plan: Plan,
  options: SeedOptions = {},
): Promise<void> {
  const p = part(layout);
  await withLockFile(startLock(layout), async () => {
    if (runningPid(p) === undefined) {
      if (await portOpen(layout.route53.host, layout.route53.port)) {
        throw new Error(
          `route53: port ${layout.route53.host}:${layout.route53.port} is taken by a process the stack did not start`,
        );
      }
      fs.mkdirSync(layout.logDir, { recursive: true });
      fs.appendFileSync(
        logFile(p),
        `\n--- ${new Date().toISOString()} starting ${motoBinary(layout)} ${motoArgs(layout).join(' ')}\n`,
      );
      // Unbuffered, so the log shows what moto did when a start fails.
      startDetached(p, {
        command: motoBinary(layout),
        args: motoArgs(layout),
        env: { ...process.env, PYTHONUNBUFFERED: '1' },
      });
      try {
        await waitForRoute53(layout, secrets, p);
      } catch (err) {
        await stopPart(p, 5_000);
        throw err;
      }
    } else {
      await waitForRoute53(layout, secrets, p);
    }
    if (plan.dns) await seedDns(layout, secrets, plan, options);
  });
}

export async function stopRoute53Server(layout: StackLayout): Promise<boolean> {
  return stopPart(part(layout));
}

async function waitForRoute53(layout: StackLayout, secrets: StackSecrets, p: PartProcess): Promise<void> {
  const client = stackRoute53Client(layout, secrets, { maxAttempts: 1 });
  try {
    await waitUntil(
      p,
      `ListHostedZones on ${layout.route53.endpoint}`,
      async () => {
        if (runningPid(p) === undefined) throw new Error('exited');
        await client.send(new ListHostedZonesCommand({}));
        return true;
      },
      START_TIMEOUT_MS,
    );
  } finally {
    client.destroy();
  }
}

/** The id (`Z…`, without `/hostedzone/`) of the hosted zone with exactly this name, if any. */
export async function findHostedZoneId(client: Route53Client, zone: string): Promise<string | undefined> {
  const name = zone.endsWith('.') ? zone : `${zone}.`;
  const out = await client.send(new ListHostedZonesByNameCommand({ DNSName: name, MaxItems: 1 }));
  const found = out.HostedZones?.find((z) => z.Name?.toLowerCase() === name.toLowerCase());
  return found?.Id?.replace(/^\/hostedzone\//, '');
}

/** The value a plan record has while its database's primary is in its declared primaryRegion. */
export function primaryValues(plan: Plan, record: DnsPlan['records'][number]): string[] {
  const region = plan.databases[record.database]?.primaryRegion;
  const values = region === undefined ? undefined : record.values[region];
  if (!values)
    throw new Error(
      `dns record ${record.name}: no values for the primary region of database ${record.database}`,
    );
  return values;
}

/** Creates the plan's hosted zone if no zone by that name exists, then its records. */
export async function seedDns(
  layout: StackLayout,
  secrets: StackSecrets,
  plan: Plan,
  options: SeedOptions = {},
): Promise<string> {
  const dns = plan.dns;
  if (!dns) throw new Error('the plan has no dns section');
  const client = stackRoute53Client(layout, secrets);
  try {
    let zoneId = await findHostedZoneId(client, dns.zone);
    if (zoneId === undefined) {
      try {
        const created = await client.send(
          new CreateHostedZoneCommand({
            Name: dns.zone,
            CallerReference: `lifeboat-stack-${dns.zone}-${Date.now()}`,
            HostedZoneConfig: { Comment: 'Lifeboat local stack', PrivateZone: false },
          }),
        );
        zoneId = created.HostedZone?.Id?.replace(/^\/hostedzone\//, '');
      } catch (err) {
        if ((err as { name?: string }).name !== 'HostedZoneAlreadyExists') throw err;
        zoneId = await findHostedZoneId(client, dns.zone);
      }
      if (zoneId === undefined) throw new Error(`route53: hosted zone ${dns.zone} was not created`);
    }
    const existing = options.records === 'all' ? new Set<string>() : await recordKeys(client, zoneId);
    const changes: Change[] = dns.records
      .filter((r) => !existing.has(`${r.name.toLowerCase()} ${r.type}`))
      .map((r) => ({
        Action: 'UPSERT',
        ResourceRecordSet: {
          Name: r.name,
          Type: r.type,
          TTL: r.ttl,
          ResourceRecords: primaryValues(plan, r).map((Value) => ({ Value })),
        },
      }));
    if (changes.length > 0) {
      await client.send(
        new ChangeResourceRecordSetsCommand({
          HostedZoneId: zoneId,
          ChangeBatch: { Comment: 'Lifeboat local stack: records at their primary region', Changes: changes },
        }),
      );
    }
    return zoneId;
  } finally {
    client.destroy();
  }
}

/** `name type` of every record set in a zone (names lower-case with the trailing dot). */
async function recordKeys(client: Route53Client, zoneId: string): Promise<Set<string>> {
  const keys = new Set<string>();
  let start: { name?: string; type?: RRType; id?: string } = {};
  for (;;) {
    const out = await client.send(
      new ListResourceRecordSetsCommand({
        HostedZoneId: zoneId,
        StartRecordName: start.name,
        StartRecordType: start.type,
        StartRecordIdentifier: start.id,
      }),
    );
    for (const rr of out.ResourceRecordSets ?? []) {
      const name = (rr.Name ?? '').toLowerCase();
      keys.add(`${name.endsWith('.') ? name : `${name}.`} ${rr.Type}`);
    }
    if (!out.IsTruncated) return keys;
    start = { name: out.NextRecordName, type: out.NextRecordType, id: out.NextRecordIdentifier };
  }
}
