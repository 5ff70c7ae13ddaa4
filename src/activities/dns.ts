// DNS activities: the plan's hosted zone and the records that follow each database's primary.
import { heartbeat, sleep } from '@temporalio/activity';
import type { Finding } from '../domain/doctor.ts';
import { LifeboatError } from '../domain/errors.ts';
import type { Plan } from '../domain/plan.ts';
import type { DnsRecordSet, DnsZone } from './ports/dns-zone.ts';
import { describeAwsError } from './storage.ts';

export function createDnsActivities(deps: { plan: Plan; zone?: DnsZone }) {
  return {
    /** The zone exists and every planned record points at its database's primary region. */
    async checkDns(): Promise<Finding[]> {
      const dns = deps.plan.dns;
      if (!dns || !deps.zone) return [];
      let zoneId: string | undefined;
      let records;
      try {
        zoneId = await deps.zone.findZoneId();
        if (!zoneId)
          return [
            { system: 'dns', target: dns.zone, ok: false, detail: `hosted zone ${dns.zone} does not exist` },
          ];
        records = await deps.zone.listRecords(zoneId);
      } catch (err) {
        return [
          {
            system: 'dns',
            target: dns.zone,
            ok: false,
            detail: `Route53 unreachable: ${describeAwsError(err)}`,
          },
        ];
      }
      const findings: Finding[] = [
        { system: 'dns', target: dns.zone, ok: true, detail: `hosted zone ${zoneId}` },
      ];
      for (const want of dns.records) {
        const primary = deps.plan.databases[want.database]?.primaryRegion ?? '';
        const expected = [...(want.values[primary] ?? [])].sort();
        const found = records.find((r) => r.name === want.name && r.type === want.type);
        const target = `${want.type} ${want.name}`;
        if (!found)
          findings.push({ system: 'dns', target, ok: false, detail: `record missing in ${dns.zone}` });
        else if (JSON.stringify([...found.values].sort()) !== JSON.stringify(expected))
          findings.push({
            system: 'dns',
            target,
            ok: false,
            detail: `points at ${found.values.join(', ')}; the plan's primary region ${primary} expects ${expected.join(', ')}`,
          });
        else
          findings.push({
            system: 'dns',
            target,
            ok: true,
            detail: `points at ${primary} (${found.values.join(', ')})`,
          });
      }
      return findings;
    },

    /** The plan's records of a database as the zone holds them now (missing ones have no values). */
    async readDatabaseRecords(input: { database: string }): Promise<DnsRecordSet[]> {
      const { zone, zoneId, wanted } = await zoneFor(deps, input.database);
      const records = await callRoute53(() => zone.listRecords(zoneId));
      return wanted.map((w) => {
        const found = records.find((r) => r.name === w.name && r.type === w.type);
        return { name: w.name, type: w.type, ttl: found?.ttl ?? w.ttl, values: found?.values ?? [] };
      });
    },

    /** UPSERTs the database's records to a region's values in one change batch; idempotent. */
    async pointDatabaseRecords(input: {
      database: string;
      region: string;
      comment: string;
    }): Promise<{ changeId: string; records: DnsRecordSet[] }> {
      const { zone, zoneId, wanted } = await zoneFor(deps, input.database);
      const records = wanted.map((w) => {
        const values = w.values[input.region];
        if (!values)
          throw new LifeboatError(
            'InvalidInput',
            `dns record ${w.name} has no values for region ${input.region} in the plan`,
          );
        return { name: w.name, type: w.type, ttl: w.ttl, values };
      });
      if (records.length === 0) return { changeId: '', records };
      const changeId = await callRoute53(() => zone.upsertRecords(zoneId, records, input.comment));
      return { changeId, records };
    },

    /** Waits (heartbeating) until a Route53 change is INSYNC. */
    async waitDnsChangeInSync(input: { changeId: string }): Promise<{ status: 'INSYNC' }> {
      const zone = deps.zone;
      if (!zone || !input.changeId) return { status: 'INSYNC' };
      for (;;) {
        const status = await callRoute53(() => zone.changeStatus(input.changeId));
        if (status === 'INSYNC') return { status };
        heartbeat(status);
        await sleep(1000);
      }
    },
  };
}

async function zoneFor(deps: { plan: Plan; zone?: DnsZone }, database: string) {
  const dns = deps.plan.dns;
  if (!dns || !deps.zone) throw new LifeboatError('InvalidInput', 'the plan has no dns section');
  const zone = deps.zone;
  const zoneId = await callRoute53(() => zone.findZoneId());
  if (!zoneId) throw new LifeboatError('InvalidInput', `hosted zone ${dns.zone} does not exist`);
  return { zone, zoneId, wanted: dns.records.filter((r) => r.database === database) };
}

/** Route53 errors other than ours are worth a retry (throttling, a network blip, a restart). */
async function callRoute53<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    throw new LifeboatError('Unreachable', `Route53: ${describeAwsError(err)}`);
  }
}
