// The DNS port: the Route53 calls Lifeboat makes on the plan's hosted zone.
import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  ListHostedZonesByNameCommand,
  ListResourceRecordSetsCommand,
  Route53Client,
} from '@aws-sdk/client-route-53';
import type { DnsPlan } from '../../domain/plan.ts';
import { requireEnv, type Environment } from './environment.ts';

export interface DnsRecordSet {
  name: string;
  type: string;
  ttl?: number;
  values: string[];
}

export interface DnsZone {
  /** The hosted zone's id, or undefined when no zone by the plan's name exists. */
  findZoneId(): Promise<string | undefined>;
  /** Every record set in the zone. */
  listRecords(zoneId: string): Promise<DnsRecordSet[]>;
  /** UPSERTs record sets in one atomic change batch; returns the change's id. */
  upsertRecords(zoneId: string, records: DnsRecordSet[], comment: string): Promise<string>;
  /** A change's status: PENDING until every Route53 name server has it, then INSYNC. */
  changeStatus(changeId: string): Promise<'PENDING' | 'INSYNC'>;
}

export function createRoute53Client(dns: DnsPlan, env: Environment): Route53Client {
  return new Route53Client({
    endpoint: dns.endpoint,
    region: 'us-east-1',
    credentials:
      dns.accessKeyIdEnv && dns.secretAccessKeyEnv
        ? {
            accessKeyId: requireEnv(env, dns.accessKeyIdEnv, 'the Route53 access key id'),
            secretAccessKey: requireEnv(env, dns.secretAccessKeyEnv, 'the Route53 secret access key'),
          }
        : undefined,
    maxAttempts: 2,
  });
}

export function createDnsZone(dns: DnsPlan, env: Environment): DnsZone {
  let client: Route53Client | undefined;
  const r53 = () => (client ??= createRoute53Client(dns, env));
  return {
    async findZoneId() {
      const out = await r53().send(new ListHostedZonesByNameCommand({ DNSName: dns.zone, MaxItems: 1 }));
      const zone = out.HostedZones?.find((z) => z.Name?.toLowerCase() === dns.zone);
      return zone?.Id?.replace(/^\/hostedzone\//, '');
    },
    async listRecords(zoneId) {
      const records: DnsRecordSet[] = [];
      let start: { name?: string; type?: string } = {};
      for (;;) {
        const out = await r53().send(
          new ListResourceRecordSetsCommand({
            HostedZoneId: zoneId,
            StartRecordName: start.name,
            StartRecordType: start.type as never,
          }),
        );
        for (const r of out.ResourceRecordSets ?? [])
          records.push({
            name: (r.Name ?? '').toLowerCase(),
            type: r.Type ?? '',
            ttl: r.TTL,
            values: (r.ResourceRecords ?? []).map((v) => v.Value ?? ''),
          });
        if (!out.IsTruncated) return records;
        start = { name: out.NextRecordName, type: out.NextRecordType };
      }
    },
    async upsertRecords(zoneId, records, comment) {
      const out = await r53().send(
        new ChangeResourceRecordSetsCommand({
          HostedZoneId: zoneId,
          ChangeBatch: {
            Comment: comment,
            Changes: records.map((r) => ({
              Action: 'UPSERT',
              ResourceRecordSet: {
                Name: r.name,
                Type: r.type as never,
                TTL: r.ttl,
                ResourceRecords: r.values.map((Value) => ({ Value })),
              },
            })),
          },
        }),
      );
      return (out.ChangeInfo?.Id ?? '').replace(/^\/change\//, '');
    },
    async changeStatus(changeId) {
      const out = await r53().send(new GetChangeCommand({ Id: changeId }));
      return out.ChangeInfo?.Status === 'INSYNC' ? 'INSYNC' : 'PENDING';
    },
  };
}
