// The drill's pure judgements: RPO, table comparison, comparability, reasons, targets, input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  comparability,
  compareDigests,
  drillInputSchema,
  drillReasons,
  drillTargets,
  failoverDrillProblems,
  measureRpo,
  type SourceSnapshot,
} from '../../src/domain/drill.ts';
import { planSchema } from '../../src/domain/plan.ts';
import { rawExamplePlan } from '../support/plans.ts';

const source = (over: Partial<SourceSnapshot> = {}): SourceSnapshot => ({
  lsn: '0/5000000',
  lastCommitTime: '2026-11-22T10:00:10.000Z',
  trackCommitTimestamp: true,
  at: '2026-11-22T10:00:30.000Z',
  region: 'us-east-1',
  tables: [],
  ...over,
});

describe('measureRpo', () => {
  const cases = [
    {
      name: 'restore reached the snapshot: last commit minus last replayed transaction',
      input: {
        source: source(),
        restoredLastTransaction: '2026-11-22T10:00:09.500Z',
        reachedSourceLsn: true,
      },
      rpoMs: 500,
      detail: /every WAL record before .* was replayed/,
    },
    {
      name: 'restore reached the snapshot without commit timestamps: zero by position',
      input: {
        source: source({ lastCommitTime: null, trackCommitTimestamp: false }),
        restoredLastTransaction: '2026-11-22T09:00:00.000Z',
        reachedSourceLsn: true,
      },
      rpoMs: 0,
      detail: /track_commit_timestamp is off/,
    },
    {
      name: 'archive short of the snapshot: the gap in commit times',
      input: {
        source: source(),
        restoredLastTransaction: '2026-11-22T10:00:00.000Z',
        reachedSourceLsn: false,
      },
      rpoMs: 10_000,
      detail: /archive ends before/,
    },
    {
      name: 'archive short, no commit timestamps: drill start as an upper bound',
      input: {
        source: source({ lastCommitTime: null, trackCommitTimestamp: false }),
        restoredLastTransaction: '2026-11-22T10:00:00.000Z',
        reachedSourceLsn: false,
      },
      rpoMs: 30_000,
      detail: /upper bound/,
    },
    {
      name: 'nothing replayed after the backup: the backup end counts',
      input: { source: source(), restoredLastTransaction: null, reachedSourceLsn: false },
      rpoMs: 70_000,
      detail: /backup's end/,
    },
    {
      name: 'a restored transaction later than the source commit read is never a negative RPO',
      input: {
        source: source(),
        restoredLastTransaction: '2026-11-22T10:00:11.000Z',
        reachedSourceLsn: true,
      },
      rpoMs: 0,
      detail: /replayed/,
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const r = measureRpo({ ...c.input, backupTime: '2026-11-22T09:59:00.000Z' });
      assert.equal(r.rpoMs, c.rpoMs);
      assert.match(r.detail, c.detail);
    });
});

describe('compareDigests', () => {
  const src = [
    { table: 'a', rows: 3, checksum: 'x' },
    { table: 'b', rows: 3, checksum: 'x' },
    { table: 'c', rows: 3, checksum: 'x' },
    { table: 'd', rows: null, checksum: null, detail: 'no table d' },
  ];
  const restored = [
    { table: 'a', rows: 3, checksum: 'x' },
    { table: 'b', rows: 3, checksum: 'y' },
    { table: 'c', rows: 2, checksum: 'z' },
  ];
  it('equal only when rows and checksum are; missing tables fail', () => {
    const r = compareDigests(src, restored, { ok: true });
    assert.deepEqual(
      r.map((c) => [c.table, c.ok, c.detail]),
      [
        ['a', true, '3 rows, checksums equal'],
        ['b', false, 'same row count, checksums differ'],
        ['c', false, '3 rows on the source, 2 restored'],
        ['d', false, 'no table d'],
      ],
    );
  });
  it('not comparable: every table fails with why, even when the digests happen to agree', () => {
    const r = compareDigests(src.slice(0, 1), restored, { ok: false, why: 'other point' });
    assert.equal(r[0]!.ok, false);
    assert.equal(r[0]!.detail, 'not compared: other point');
  });
});

describe('comparability', () => {
  it('only a latest drill that restored to the snapshot position compares', () => {
    const base = { achievedLsn: '0/4000000', sourceLsn: '0/5000000' };
    assert.deepEqual(comparability({ ...base, target: 'latest', restoredToSourceLsn: true }), { ok: true });
    assert.match(
      (comparability({ ...base, target: 'latest', restoredToSourceLsn: false }) as { why: string }).why,
      /archive ends before .* 16777216 bytes short/,
    );
    assert.match(
      (comparability({ ...base, target: 'lsn:0/4000000', restoredToSourceLsn: false }) as { why: string })
        .why,
      /restored to lsn:0\/4000000/,
    );
  });
});

describe('drillReasons', () => {
  it('one sentence per failure; none when everything passed', () => {
    const ok = {
      validation: [{ name: 'q', ok: true, detail: '' }],
      comparisons: [],
      measured: { rtoMs: 1000, rpoMs: 0, rtoBreakdownMs: {} },
      targets: { rtoMs: 900_000, rpoMs: 300_000 },
      verdicts: { rto: 'met' as const, rpo: 'met' as const },
      teardown: { done: true, detail: 'done' },
    };
    assert.deepEqual(drillReasons(ok), []);
    const bad = drillReasons({
      ...ok,
      restoreError: 'boom',
      measured: { rtoMs: 1_000_000, rpoMs: null, rtoBreakdownMs: {} },
      verdicts: { rto: 'missed', rpo: 'unknown' },
      teardown: { done: false, detail: 'dir left' },
    });
    assert.deepEqual(bad, [
      'The restore did not complete: boom.',
      'RTO 1000.0 s missed the target of 900.0 s.',
      'RPO was not measured: the restore did not complete.',
      'The scratch instance was not fully torn down: dir left.',
    ]);
  });
});

describe('drill targets and input', () => {
  it("the plan's objectives override the tier's; otherwise the tier's", () => {
    const raw = rawExamplePlan() as { databases: Record<string, Record<string, unknown>> };
    raw.databases.orders = { ...raw.databases.orders, tier: 2, objectives: { rpo: '30s' } };
    const plan = planSchema.parse(raw);
    assert.deepEqual(drillTargets(plan, 'orders'), { tier: 2, rtoMs: 3_600_000, rpoMs: 30_000 });
  });
  it('target defaults to latest; a bad target is refused with its path', () => {
    assert.equal(drillInputSchema.parse({ database: 'orders', region: 'us-west-2' }).target, 'latest');
    const r = drillInputSchema.safeParse({ database: 'orders', region: 'us-west-2', target: 'yesterday' });
    assert.equal(r.success, false);
    assert.deepEqual(r.error.issues[0]!.path, ['target']);
  });
});

describe('failoverDrillProblems', () => {
  const planWith = (edit: (raw: any) => void) => {
    const raw = rawExamplePlan() as any;
    edit(raw);
    return planSchema.parse(raw);
  };
  const input = (over: Record<string, unknown> = {}) =>
    drillInputSchema.parse({ database: 'orders', region: 'us-west-2', mode: 'failover', ...over });
  const cases = [
    {
      name: 'a development plan with a replica region and a policy: allowed',
      edit: () => {},
      over: {},
      want: [],
    },
    {
      name: 'production without the acknowledgement: refused',
      edit: (r: any) => (r.environment = 'production'),
      over: {},
      want: [/marked production: a failover drill moves its live primary/],
    },
    {
      name: 'production acknowledged: allowed (the failover policy still asks for approvals)',
      edit: (r: any) => (r.environment = 'production'),
      over: { acknowledgeProduction: true },
      want: [],
    },
    {
      name: 'production with automatic approval: refused even when acknowledged',
      edit: (r: any) => {
        r.environment = 'production';
        r.failover.policies[0].approval = { mode: 'automatic-within-lag', maxLagBytes: 0 };
      },
      over: { acknowledgeProduction: true },
      want: [/needs a human approval/],
    },
    {
      name: 'to the primary region, with a restore target: both refused',
      edit: () => {},
      over: { region: 'us-east-1', target: 'lsn:0/1' },
      want: [/no restore target/, /primary region/],
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const problems = failoverDrillProblems(planWith(c.edit), input(c.over));
      assert.equal(problems.length, c.want.length, problems.join('\n'));
      c.want.forEach((re, i) => assert.match(problems[i]!, re));
    });
});
