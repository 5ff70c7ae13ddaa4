import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validatePlan } from '../../src/domain/plan-validation.ts';
import { editedPlan, rawExamplePlan } from '../support/plans.ts';

describe('plan validation', () => {
  it('accepts the example plan and fills in defaults', () => {
    const result = validatePlan(rawExamplePlan());
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
    assert.equal(result.plan.regions['us-east-1']!.postgres.sslMode, 'disable');
    assert.equal(result.plan.dns!.records[0]!.ttl, 30);
    assert.equal(result.plan.failover.policies[0]!.approval.minApprovals, 2);
    assert.equal(result.plan.backup.policies[0]!.retention.daily, 7);
  });

  const cases: { name: string; edit: (p: any) => void; problems: [string, RegExp][] }[] = [
    {
      name: 'inline password is rejected as a secret, with the reference to use instead',
      edit: (p) => (p.regions['us-east-1'].postgres.password = 'hunter2'),
      problems: [['regions.us-east-1.postgres.password', /secrets must not be written.*passwordEnv/]],
    },
    {
      name: 'inline S3 secret key is rejected',
      edit: (p) => (p.storage.primary.secretAccessKey = 'abc'),
      problems: [['storage.primary.secretAccessKey', /secretAccessKeyEnv/]],
    },
    {
      name: 'unknown field is named',
      edit: (p) => (p.databases.orders.primary = 'us-east-1'),
      problems: [['databases.orders.primary', /unknown field/]],
    },
    {
      name: 'missing required field',
      edit: (p) => delete p.regions['us-west-2'].postgres.host,
      problems: [['regions.us-west-2.postgres.host', /required/]],
    },
    {
      name: 'port out of range',
      edit: (p) => (p.regions['us-east-1'].postgres.port = 70000),
      problems: [['regions.us-east-1.postgres.port', /65535/]],
    },
    {
      name: 'primary region not declared',
      edit: (p) => (p.databases.orders.primaryRegion = 'eu-west-1'),
      problems: [
        ['databases.orders.primaryRegion', /unknown region "eu-west-1"; declared: us-east-1, us-west-2/],
      ],
    },
    {
      name: 'replica in the primary region',
      edit: (p) => (p.databases.orders.replicas[0].region = 'us-east-1'),
      problems: [['databases.orders.replicas[0].region', /cannot be in the primary region/]],
    },
    {
      name: 'DNS record for an unknown database and region',
      edit: (p) => {
        p.dns.records[0].database = 'inventory';
        p.dns.records[0].values['ap-south-1'] = ['x.example.com.'];
      },
      problems: [
        ['dns.records[0].database', /unknown database "inventory"/],
        ['dns.records[0].values.ap-south-1', /unknown region/],
      ],
    },
    {
      name: 'bad duration',
      edit: (p) => (p.failover.policies[0].detection.interval = 'ten seconds'),
      problems: [['failover.policies[0].detection.interval', /duration/]],
    },
    {
      name: 'webhook URL carrying a credential',
      edit: (p) =>
        (p.notifications.webhooks = [{ name: 'ops', url: 'https://hooks.slack.com/services/T/B/X' }]),
      problems: [['notifications.webhooks[0].url', /urlEnv/]],
    },
    {
      name: 'approval policy with fewer approvers than required',
      edit: (p) => (p.failover.policies[0].approval.approvers = ['alice']),
      problems: [['failover.policies[0].approval.approvers', /minApprovals/]],
    },
    {
      name: 'schedule with both cron and every',
      edit: (p) => (p.backup.policies[0].full = { cron: '0 2 * * *', every: '1h' }),
      problems: [['backup.policies[0].full', /exactly one of cron or every/]],
    },
    {
      name: 'storage class that cannot be read back at once, and one S3 does not know',
      edit: (p) => {
        p.storage.primary.storageClass = 'DEEP_ARCHIVE';
        p.storage.secondary = { url: 's3://copy', storageClass: 'STANDARD_IAA' };
        p.backup.policies[0].storageClass = 'GLACIER';
      },
      problems: [
        ['backup.policies[0].storageClass', /GLACIER objects must be restored.*lifecycle rule/],
        ['storage.primary.storageClass', /DEEP_ARCHIVE objects must be restored.*lifecycle rule/],
        [
          'storage.secondary.storageClass',
          /unknown S3 storage class "STANDARD_IAA": expected one of STANDARD,/,
        ],
      ],
    },
    {
      name: 'Object Lock with an unknown mode and a retention that is not a duration',
      edit: (p) => (p.storage.primary.objectLock = { mode: 'LEGAL', retain: 'a month' }),
      problems: [
        ['storage.primary.objectLock.mode', /GOVERNANCE.*COMPLIANCE/],
        ['storage.primary.objectLock.retain', /duration/],
      ],
    },
    {
      name: 'several mistakes are all reported at once',
      edit: (p) => {
        p.name = 'Not Valid';
        p.regions['us-east-1'].postgres.port = 'fifteen';
        p.databases.orders.tier = 9;
        p.storage.encryption.identityEnv = 'lower-case';
      },
      problems: [
        ['name', /lowercase/],
        ['regions.us-east-1.postgres.port', /number/],
        ['databases.orders.tier', /5/],
        ['storage.encryption.identityEnv', /environment variable/],
      ],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const result = validatePlan(editedPlan(c.edit));
      assert.equal(result.ok, false);
      if (result.ok) return;
      const paths = result.problems.map((p) => p.path).sort();
      assert.deepEqual(paths, c.problems.map(([path]) => path).sort(), JSON.stringify(result.problems));
      for (const [path, message] of c.problems) {
        const problem = result.problems.find((p) => p.path === path)!;
        assert.match(problem.message, message);
      }
    });
  }

  it('rejects input that is not a mapping', () => {
    const result = validatePlan('just a string');
    assert.equal(result.ok, false);
  });
});
