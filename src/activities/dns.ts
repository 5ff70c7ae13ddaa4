// DNS activities: the plan's hosted zone and the records that follow each database's primary.
import type { Finding } from '../domain/doctor.ts';
import type { Plan } from '../domain/plan.ts';
import type { DnsZone } from './ports/dns-zone.ts';
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
  };
}
