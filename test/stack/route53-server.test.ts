// The stack's Route53-compatible API (moto) against the real process: the plan's zone and
// records are there after start, changes read back, and a restart (moto forgets everything)
// seeds them again. The shared server on the layout's port is left running; the restart checks
// use a private instance on another port.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  ListHostedZonesByNameCommand,
  ListHostedZonesCommand,
  ListResourceRecordSetsCommand,
  type ResourceRecordSet,
  type RRType,
  type Route53Client,
} from '@aws-sdk/client-route-53';
import { parse } from 'yaml';
import { validatePlan } from '../../src/domain/plan-validation.ts';
import type { Plan } from '../../src/domain/plan.ts';
import { stackRoute53Client } from '../../src/stack/aws-clients.ts';
import { STACK_SECRET_ENV, type StackLayout, layoutFromEnv, stackLayout } from '../../src/stack/layout.ts';
import {
  findHostedZoneId,
  route53ServerRunning,
  startRoute53Server,
  stopRoute53Server,
} from '../../src/stack/route53-server.ts';
import { ensureSecrets } from '../../src/stack/secrets.ts';

const layout = layoutFromEnv();

function examplePlan(): Plan {
  const result = validatePlan(parse(fs.readFileSync(path.resolve('examples/lifeboat.yaml'), 'utf8')));
  if (!result.ok) throw new Error(result.problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
  return result.plan;
}

async function recordSet(client: Route53Client, zoneId: string, name: string, type: RRType) {
  const out = await client.send(
    new ListResourceRecordSetsCommand({
      HostedZoneId: zoneId,
      StartRecordName: name,
      StartRecordType: type,
      MaxItems: 1,
    }),
  );
  const rr = out.ResourceRecordSets?.[0];
  return rr?.Name === name && rr.Type === type ? rr : undefined;
}

async function upsert(client: Route53Client, zoneId: string, set: ResourceRecordSet) {
  return client.send(
    new ChangeResourceRecordSetsCommand({
      HostedZoneId: zoneId,
      ChangeBatch: { Changes: [{ Action: 'UPSERT', ResourceRecordSet: set }] },
    }),
  );
}

describe('stack Route53 server (moto)', () => {
  const plan = examplePlan();
  const dns = plan.dns!;
  const record = dns.records[0]!;
  const probeName = `probe-${process.pid}.${dns.zone}`;
  let secrets: Record<string, string>;
  let client: Route53Client;
  let zoneId: string;

  before(async () => {
    secrets = ensureSecrets(layout).secrets;
    const started = Date.now();
    await startRoute53Server(layout, secrets, plan);
    console.log(`startRoute53Server: ${Date.now() - started} ms`);
    client = stackRoute53Client(layout, secrets);
    zoneId = (await findHostedZoneId(client, dns.zone))!;
  });

  after(async () => {
    if (!client) return;
    const probe = await recordSet(client, zoneId, probeName, 'A');
    if (probe) {
      await client.send(
        new ChangeResourceRecordSetsCommand({
          HostedZoneId: zoneId,
          ChangeBatch: { Changes: [{ Action: 'DELETE', ResourceRecordSet: probe }] },
        }),
      );
    }
    client.destroy();
  });

  test("the plan's hosted zone exists exactly once", async () => {
    assert.ok(zoneId, `zone ${dns.zone} not found`);
    const byName = await client.send(new ListHostedZonesByNameCommand({ DNSName: dns.zone }));
    assert.equal(byName.HostedZones?.[0]?.Name, dns.zone);
    const all = await client.send(new ListHostedZonesCommand({}));
    assert.equal(all.HostedZones?.filter((z) => z.Name === dns.zone).length, 1);
  });

  test("every plan record exists with the values of its database's primary region", async () => {
    for (const r of dns.records) {
      const rr = await recordSet(client, zoneId, r.name, r.type);
      assert.ok(rr, `${r.name} ${r.type} missing`);
      assert.equal(rr.TTL, r.ttl);
      const primary = plan.databases[r.database]!.primaryRegion;
      assert.deepEqual(
        rr.ResourceRecords?.map((v) => v.Value),
        r.values[primary],
      );
    }
    assert.equal(record.name, 'orders-db.lifeboat.internal.');
  });

  test('start is idempotent: no second zone, same process, records kept as they are', async () => {
    const pidFile = path.join(layout.runDir, 'route53.pid');
    const pid = fs.readFileSync(pidFile, 'utf8');
    // A failover moved the record; running `stack up` again must not move it back.
    const original = (await recordSet(client, zoneId, record.name, record.type))!;
    const failedOver = {
      ...original,
      ResourceRecords: record.values['us-west-2']!.map((Value) => ({ Value })),
    };
    await upsert(client, zoneId, failedOver);
    try {
      await Promise.all([
        startRoute53Server(layout, secrets, plan),
        startRoute53Server(layout, secrets, plan),
      ]);
      assert.equal(fs.readFileSync(pidFile, 'utf8'), pid);
      assert.equal(route53ServerRunning(layout), true);
      assert.equal(await findHostedZoneId(client, dns.zone), zoneId);
      const kept = await recordSet(client, zoneId, record.name, record.type);
      assert.deepEqual(kept?.ResourceRecords, failedOver.ResourceRecords);
      // records: 'all' puts every record back at its primary region's values.
      await startRoute53Server(layout, secrets, plan, { records: 'all' });
      const reset = await recordSet(client, zoneId, record.name, record.type);
      assert.deepEqual(reset?.ResourceRecords, original.ResourceRecords);
    } finally {
      await upsert(client, zoneId, original);
    }
  });

  test('UPSERT is visible on read-back and GetChange reports the change', async () => {
    const first = await upsert(client, zoneId, {
      Name: probeName,
      Type: 'A',
      TTL: 5,
      ResourceRecords: [{ Value: '10.0.0.1' }],
    });
    assert.ok(first.ChangeInfo?.Id);
    // moto applies changes at once and reports them INSYNC (AWS reports PENDING first).
    const change = await client.send(new GetChangeCommand({ Id: first.ChangeInfo.Id }));
    assert.equal(change.ChangeInfo?.Status, 'INSYNC');
    assert.deepEqual((await recordSet(client, zoneId, probeName, 'A'))?.ResourceRecords, [
      { Value: '10.0.0.1' },
    ]);

    await upsert(client, zoneId, {
      Name: probeName,
      Type: 'A',
      TTL: 5,
      ResourceRecords: [{ Value: '10.0.0.2' }],
    });
    const rr = await recordSet(client, zoneId, probeName, 'A');
    assert.deepEqual(rr?.ResourceRecords, [{ Value: '10.0.0.2' }]);
    assert.equal(rr?.TTL, 5);
  });
});

describe('Route53 server lifecycle (a private instance on another port)', () => {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-route53-'));
  const base = stackLayout(state);
  const port = 15100;
  const own: StackLayout = {
    ...base,
    toolsBin: layout.toolsBin,
    route53: { ...base.route53, port, endpoint: `http://127.0.0.1:${port}` },
  };
  const plan = examplePlan();
  const secrets = {
    [STACK_SECRET_ENV.dnsAccessKeyId]: 'LBDNTESTTESTTEST0000',
    [STACK_SECRET_ENV.dnsSecretAccessKey]: 'throwaway-secret',
  };

  after(async () => {
    await stopRoute53Server(own);
    fs.rmSync(state, { recursive: true, force: true });
  });

  test('a restart forgets everything, and start seeds the zone and records again', async () => {
    let started = Date.now();
    await startRoute53Server(own, secrets, plan);
    console.log(`cold startRoute53Server: ${Date.now() - started} ms`);
    const client = stackRoute53Client(own, secrets);
    try {
      const first = await findHostedZoneId(client, plan.dns!.zone);
      assert.ok(first);
      assert.equal(await stopRoute53Server(own), true);
      assert.equal(route53ServerRunning(own), false);
      assert.equal(await stopRoute53Server(own), false);

      started = Date.now();
      await startRoute53Server(own, secrets, plan);
      console.log(`restart of startRoute53Server: ${Date.now() - started} ms`);
      const again = await findHostedZoneId(client, plan.dns!.zone);
      assert.ok(again);
      const record = plan.dns!.records[0]!;
      const rr = await recordSet(client, again, record.name, record.type);
      assert.deepEqual(rr?.ResourceRecords, [{ Value: 'pg.us-east-1.lifeboat.internal.' }]);
    } finally {
      client.destroy();
    }
  });

  test('a port taken by someone else is reported, not silently reused', async () => {
    const taken: StackLayout = { ...own, runDir: path.join(state, 'other-run') };
    await assert.rejects(startRoute53Server(taken, secrets, plan), /port 127\.0\.0\.1:15100 is taken/);
  });
});
