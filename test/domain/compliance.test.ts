// The compliance rules, table-driven: each case changes one thing in an otherwise compliant
// repository and names the rule that must fail and the evidence it must give.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  evaluateCompliance,
  objectivesOf,
  retentionYears,
  type DatabaseEvidence,
  type RuleId,
  type RuleStatus,
} from '../../src/domain/compliance.ts';
import { drillTargets } from '../../src/domain/drill.ts';
import { fullBackupManifest, type BackupManifest } from '../../src/domain/manifest.ts';
import { planSchema, type Plan } from '../../src/domain/plan.ts';
import { drillReportFixture, failedDrillReportFixture } from '../support/drill-reports.ts';
import { editedPlan } from '../support/plans.ts';

const NOW = '2026-11-22T12:00:00.000Z';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const before = (ms: number) => new Date(Date.parse(NOW) - ms).toISOString();
const RECIPIENT = 'age1659k84s526tad7y85cw5fjeczdqtxpj2y5jkkrj8plq63ajlavhqgxsxev';

/** A verified full backup of orders that became consistent `ageMs` ago, starting in segment `seg`. */
function manifest(ageMs: number, seg: number, verified = true): BackupManifest {
  const stop = before(ageMs);
  const id = `orders-full-${stop.replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z')}`;
  const lsn = `0/${(seg * 0x1000000 + 0x28).toString(16).toUpperCase()}`;
  const m = fullBackupManifest({
    id,
    database: 'orders',
    plan: 'acme',
    workflowId: 'backup-orders',
    runId: 'run-1',
    recipients: [RECIPIENT],
    base: {
      attempt: 1,
      recipients: [RECIPIENT],
      object: {
        key: `databases/orders/backups/${id}/attempt-1/base.tar.zst.age`,
        bytes: 10,
        sha256: 'a'.repeat(64),
      },
      rawBytes: 100,
      postgres: {
        systemIdentifier: '7711',
        version: '15.18',
        versionNum: 150018,
        timeline: 1,
        walSegmentSize: 16 * 1024 * 1024,
      },
      startLsn: lsn,
      stopLsn: lsn.replace(/28$/, '100'),
      startTime: before(ageMs + 1000),
      stopTime: stop,
      label: id,
      postgresManifest: { checksum: 'b'.repeat(64), files: 10 },
      timings: { checkpointMs: 1, streamMs: 1 },
    },
    verification: { method: 'content', verifiedBytes: 10, files: 10, walSegments: 1, detail: 'ok' },
    startedAt: new Date(Date.parse(stop) - 2000),
    verifiedAt: new Date(Date.parse(stop) + 1000),
    finishedAt: new Date(Date.parse(stop) + 1000),
    verifyMs: 1,
  });
  return verified ? m : { ...m, verification: { ...m.verification, verified: false } };
}

const seg = (n: number, tl = 1) =>
  `${tl.toString(16).toUpperCase().padStart(8, '0')}00000000${n.toString(16).toUpperCase().padStart(8, '0')}`;
const walKey = (s: string) => `databases/orders/wal/${s.slice(0, 8)}/${s}.zst.age`;

/** A compliant repository: a 1 h old backup from segment 2, WAL 2…5, a passed drill 10 days ago, copied. */
function evidence(): DatabaseEvidence {
  const backup = manifest(HOUR, 2);
  const segments = [2, 3, 4, 5].map((n) => seg(n));
  return {
    manifests: [backup],
    unreadableManifests: [],
    walKeys: segments.map(walKey),
    wal: {
      segments,
      partials: [{ segment: seg(6), upToLsn: '0/6000200' }],
      walSegmentSize: 16 * 1024 * 1024,
    },
    drills: [drillReportFixture({}, before(10 * DAY))],
    unreadableDrills: [],
    secondary: { url: 's3://lifeboat-dr/acme', backupIds: [backup.id] },
  };
}

function plan(edit: (p: any) => void = () => {}): Plan {
  return planSchema.parse(
    editedPlan((p) => {
      p.storage.secondary = { url: 's3://lifeboat-dr/acme' };
      p.backup.policies[0].retention = { daily: 7, weekly: 4, monthly: 12, yearly: 7, requiredYears: 7 };
      edit(p);
    }),
  );
}

function statusOf(p: Plan, ev: DatabaseEvidence): Record<string, { status: RuleStatus; evidence: string }> {
  const report = evaluateCompliance({ plan: p, now: NOW, databases: { orders: ev } });
  return Object.fromEntries(
    report.results.map((r) => [r.rule, { status: r.status, evidence: r.evidence.join(' | ') }]),
  );
}

describe('compliance rules', () => {
  it('a compliant plan and repository pass every rule, with evidence', () => {
    const report = evaluateCompliance({ plan: plan(), now: NOW, databases: { orders: evidence() } });
    assert.equal(report.passed, true, JSON.stringify(report.results, null, 2));
    assert.deepEqual(report.counts, { pass: 6, fail: 0, 'not-applicable': 0 });
    const s = statusOf(plan(), evidence());
    assert.match(
      s['backup-fresh']!.evidence,
      /orders-full-20261122T110000Z \(full\) consistent at 2026-11-22T11:00:00.000Z, 1h ago/,
    );
    assert.match(
      s['backups-encrypted']!.evidence,
      /1 backup manifest\(s\), every object age-encrypted to 1 recipient.*4 archived WAL object\(s\), all \.age/,
    );
    assert.match(
      s['wal-continuous']!.evidence,
      /5 segment\(s\) archived from 000000010000000000000002 to 000000010000000000000006 .* no gap/,
    );
    assert.match(s['drill-recent']!.evidence, /passed, RTO 4m30s \(target 15m\), RPO 2\.0s \(target 5m\)/);
    assert.match(s['retention-years']!.evidence, /about 7 year\(s\); required 7/);
  });

  const cases: {
    name: string;
    rule: RuleId;
    status: RuleStatus;
    evidence: RegExp;
    plan?: (p: any) => void;
    ev?: (e: DatabaseEvidence) => void;
  }[] = [
    {
      name: 'tier-1 backup older than 4 h',
      rule: 'backup-fresh',
      status: 'fail',
      evidence: /consistent at .*, 5h ago.*older than 4h/,
      ev: (e) => (e.manifests = [manifest(5 * HOUR, 2)]),
    },
    {
      name: 'only an unverified backup is recent',
      rule: 'backup-fresh',
      status: 'fail',
      evidence: /newest verified backup .* 6h ago/,
      ev: (e) => (e.manifests = [manifest(6 * HOUR, 2), manifest(HOUR, 4, false)]),
    },
    {
      name: 'no backup at all',
      rule: 'backup-fresh',
      status: 'fail',
      evidence: /no verified backup of orders \(0 manifest/,
      ev: (e) => (e.manifests = []),
    },
    {
      name: 'a tier-3 database is not held to the 4 h rule',
      rule: 'backup-fresh',
      status: 'not-applicable',
      evidence: /tier 3: the rule is for tier 1/,
      plan: (p) => (p.databases.orders.tier = 3),
      ev: (e) => (e.manifests = [manifest(30 * HOUR, 2)]),
    },
    {
      name: 'an unreadable manifest cannot be shown encrypted',
      rule: 'backups-encrypted',
      status: 'fail',
      evidence:
        /databases\/orders\/manifests\/x\.json: unreadable manifest, encryption cannot be shown \(encryption\.format: bad\)/,
      ev: (e) =>
        e.unreadableManifests.push({
          key: 'databases/orders/manifests/x.json',
          problems: ['encryption.format: bad'],
        }),
    },
    {
      name: 'a WAL object stored in clear',
      rule: 'backups-encrypted',
      status: 'fail',
      evidence:
        /databases\/orders\/wal\/00000001\/000000010000000000000007\.zst: archived WAL object is not age-encrypted/,
      ev: (e) => e.walKeys.push('databases/orders/wal/00000001/000000010000000000000007.zst'),
    },
    {
      name: 'no second location in the plan',
      rule: 'second-location',
      status: 'fail',
      evidence: /the plan declares no storage\.secondary location/,
      plan: (p) => delete p.storage.secondary,
      ev: (e) => (e.secondary = null),
    },
    {
      name: 'second location named but without the newest backup',
      rule: 'second-location',
      status: 'fail',
      evidence:
        /plan names s3:\/\/lifeboat-dr\/acme, but it does not hold the newest verified backup orders-full-20261122T110000Z \(0 manifest/,
      ev: (e) => (e.secondary = { url: 's3://lifeboat-dr/acme', backupIds: [] }),
    },
    {
      name: 'second location holds an older incremental, not the newer full backup listed before it',
      rule: 'second-location',
      status: 'fail',
      evidence: /does not hold the newest verified backup orders-full-20261122T110000Z/,
      ev: (e) => {
        const older = manifest(3 * HOUR, 1);
        const incremental = {
          ...older,
          id: 'orders-incremental-20261122T090000Z',
          kind: 'incremental' as const,
          parent: 'x',
        };
        // Key order, as the catalog lists them: full before incremental whatever their times.
        e.manifests = [e.manifests[0]!, incremental];
        e.secondary = { url: 's3://lifeboat-dr/acme', backupIds: [incremental.id] };
      },
    },
    {
      name: 'second location unreadable',
      rule: 'second-location',
      status: 'fail',
      evidence: /cannot be read: AccessDenied/,
      ev: (e) => (e.secondary = { url: 's3://lifeboat-dr/acme', error: 'AccessDenied: HTTP 403' }),
    },
    {
      name: 'tier 3 needs no second location',
      rule: 'second-location',
      status: 'not-applicable',
      evidence: /tier 3/,
      plan: (p) => (p.databases.orders.tier = 3),
      ev: (e) => (e.secondary = null),
    },
    {
      name: 'the last passed drill is older than 90 days',
      rule: 'drill-recent',
      status: 'fail',
      evidence: /no drill of orders since 2026-08-24T12:00:00.000Z \(1 older report/,
      ev: (e) => (e.drills = [drillReportFixture({}, before(91 * DAY))]),
    },
    {
      name: 'the recent drill failed',
      rule: 'drill-recent',
      status: 'fail',
      evidence: /no drill since .* met tier 1's targets.*: failed, RTO not measured/,
      ev: (e) => (e.drills = [failedDrillReportFixture({}, before(5 * DAY))]),
    },
    {
      name: "a passed drill misses the plan's stricter objective",
      rule: 'drill-recent',
      status: 'fail',
      evidence: /no drill since .* met the plan's objectives for orders.*RTO 4m30s \(target 2m\)/,
      plan: (p) => (p.databases.orders.objectives = { rto: '2m' }),
    },
    {
      name: 'an unreadable drill report is shown, even beside a passing one',
      rule: 'drill-recent',
      status: 'pass',
      evidence: /drills\/orders\/d1\/report\.json: unreadable drill report \(version: expected 1\)/,
      ev: (e) =>
        e.unreadableDrills.push({ key: 'drills/orders/d1/report.json', reason: 'version: expected 1' }),
    },
    {
      name: 'retention keeps fewer years than required',
      rule: 'retention-years',
      status: 'fail',
      evidence:
        /keeps 7 daily, 4 weekly, 12 monthly, 1 yearly: about 1 year\(s\); required 7 \(set retention\.yearly to at least 7\)/,
      plan: (p) => (p.backup.policies[0].retention.yearly = 1),
    },
    {
      name: 'no required years stated',
      rule: 'retention-years',
      status: 'not-applicable',
      evidence: /states no retention\.requiredYears/,
      plan: (p) => delete p.backup.policies[0].retention.requiredYears,
    },
    {
      name: 'a missing segment in the middle of the archive',
      rule: 'wal-continuous',
      status: 'fail',
      evidence: /1 segment\(s\) missing from 000000010000000000000004 before 000000010000000000000005/,
      ev: (e) => (e.wal.segments = e.wal.segments.filter((s) => s !== seg(4))),
    },
    {
      name: "the backup's first segment is not archived",
      rule: 'wal-continuous',
      status: 'fail',
      evidence: /000000010000000000000002 \(the start of orders-full-20261122T110000Z\) is not archived/,
      ev: (e) => (e.wal.segments = e.wal.segments.filter((s) => s !== seg(2))),
    },
    {
      name: 'a promotion switches timeline: the archive continues, the old timeline is skipped',
      rule: 'wal-continuous',
      status: 'pass',
      evidence: /archived from 000000010000000000000002 to 000000020000000000000007 .* no gap/,
      ev: (e) => {
        e.wal.segments.push(seg(5, 2), seg(6, 2), seg(7, 2), seg(6, 1));
        e.wal.partials = [];
      },
    },
    {
      name: 'no WAL after the backup',
      rule: 'wal-continuous',
      status: 'fail',
      evidence: /no WAL archived since orders-full-20261122T110000Z/,
      ev: (e) => {
        e.wal.segments = [];
        e.wal.partials = [];
      },
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const ev = evidence();
      c.ev?.(ev);
      const s = statusOf(plan(c.plan), ev);
      assert.equal(s[c.rule]!.status, c.status, s[c.rule]!.evidence);
      assert.match(s[c.rule]!.evidence, c.evidence);
    });

  it('judges a drill by the same targets the drill workflow writes into its report', () => {
    const cases: { name: string; edit: (p: any) => void; source: RegExp }[] = [
      { name: 'tier only', edit: () => {}, source: /^tier \d's targets$/ },
      {
        name: 'rpo only',
        edit: (p) => (p.databases.orders.objectives = { rpo: '30s' }),
        source: /plan's objectives/,
      },
      {
        name: 'both',
        edit: (p) => (p.databases.orders.objectives = { rto: '2m', rpo: '1m' }),
        source: /plan's/,
      },
    ];
    for (const c of cases) {
      const plan = planSchema.parse(editedPlan(c.edit));
      const drill = drillTargets(plan, 'orders');
      const compliance = objectivesOf('orders', plan.databases.orders!);
      assert.deepEqual(
        { rtoMs: compliance.rtoMs, rpoMs: compliance.rpoMs },
        { rtoMs: drill.rtoMs, rpoMs: drill.rpoMs },
        c.name,
      );
      assert.match(compliance.source, c.source, c.name);
    }
  });

  it('retention years: the longest-reaching period counts', () => {
    assert.equal(retentionYears({ daily: 7, weekly: 4, monthly: 12, yearly: 0 }), 1);
    assert.equal(retentionYears({ daily: 7, weekly: 4, monthly: 24, yearly: 0 }), 2);
    assert.equal(retentionYears({ daily: 7, weekly: 0, monthly: 0, yearly: 7 }), 7);
    assert.ok(retentionYears({ daily: 30, weekly: 0, monthly: 0, yearly: 0 }) < 0.1);
  });
});
