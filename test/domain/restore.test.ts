// Restore targets, chain resolution and the recoverable window: table-driven.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CatalogEntry } from '../../src/domain/manifest.ts';
import { planSchema } from '../../src/domain/plan.ts';
import {
  contiguousEnd,
  cutoverProblems,
  parseRestoreTarget,
  recoverySettings,
  resolveRestoreChain,
  type WalListing,
} from '../../src/domain/restore.ts';
import { editedPlan } from '../support/plans.ts';

const SEG = 16 * 1024 * 1024;
const seg = (n: number) => `00000001000000000000${n.toString(16).toUpperCase().padStart(4, '0')}`;

function backup(id: string, startSeg: number, time: string, verified = true): CatalogEntry {
  return {
    id,
    kind: 'full',
    parent: null,
    time,
    startLsn: `0/${(startSeg * SEG + 0x28).toString(16).toUpperCase()}`,
    stopLsn: `0/${(startSeg * SEG + 0x100).toString(16).toUpperCase()}`,
    timeline: 1,
    rawBytes: 1,
    storedBytes: 1,
    verified,
    verifiedAt: time,
    durationMs: 1,
  };
}

const backups = [backup('b1', 2, '2026-11-22T10:00:00.000Z'), backup('b2', 6, '2026-11-22T12:00:00.000Z')];
const wal: WalListing = {
  segments: [2, 3, 4, 5, 6, 7, 8].map(seg),
  partials: [
    { segment: seg(9), upToLsn: '0/9000100' },
    { segment: seg(9), upToLsn: '0/9000500' },
  ],
  walSegmentSize: SEG,
};
const now = '2026-11-22T13:00:00.000Z';

describe('parseRestoreTarget', () => {
  const cases: { name: string; text: string; want?: unknown; problem?: RegExp }[] = [
    { name: 'latest', text: 'latest', want: { kind: 'latest' } },
    {
      name: 'UTC time',
      text: '2026-11-22T12:30:00Z',
      want: { kind: 'time', time: '2026-11-22T12:30:00Z' },
    },
    {
      name: 'time with offset',
      text: '2026-11-22T14:30:00.123456+02:00',
      want: { kind: 'time', time: '2026-11-22T14:30:00.123456+02:00' },
    },
    { name: 'lsn, upper-cased', text: 'lsn:0/9a0', want: { kind: 'lsn', lsn: '0/9A0' } },
    {
      name: 'restore point',
      text: 'name:before-migration',
      want: { kind: 'name', name: 'before-migration' },
    },
    { name: 'time without offset', text: '2026-11-22T12:30:00', problem: /ISO-8601 time with offset/ },
    { name: 'bad lsn', text: 'lsn:xyz', problem: /not an LSN/ },
    { name: 'empty name', text: 'name:', problem: /1 to 63/ },
    { name: 'garbage', text: 'yesterday', problem: /not a target/ },
  ];
  for (const c of cases)
    it(c.name, () => {
      const r = parseRestoreTarget(c.text);
      if (c.want) assert.deepEqual(r, { ok: true, target: c.want });
      else {
        assert.equal(r.ok, false);
        if (!r.ok) assert.match(r.problem, c.problem!);
      }
    });
});

describe('resolveRestoreChain', () => {
  const cases: {
    name: string;
    target: string;
    backups?: CatalogEntry[];
    wal?: WalListing;
    backup?: string;
    last?: string;
    problem?: RegExp;
  }[] = [
    {
      name: 'time after the newest backup uses it',
      target: '2026-11-22T12:30:00Z',
      backup: 'b2',
      last: seg(9),
    },
    { name: 'time between backups uses the older', target: '2026-11-22T11:00:00Z', backup: 'b1' },
    { name: 'time exactly at a backup end uses it', target: '2026-11-22T12:00:00Z', backup: 'b2' },
    {
      name: 'time before the first backup is refused with the window',
      target: '2026-11-22T09:00:00Z',
      problem:
        /before the first full backup ended; recoverable from 2026-11-22T10:00:00.000Z .* to lsn 0\/9000500/,
    },
    { name: 'time in the future is refused', target: '2026-11-22T14:00:00Z', problem: /in the future/ },
    { name: 'lsn in the partial', target: 'lsn:0/9000400', backup: 'b2', last: seg(9) },
    { name: 'lsn between backups', target: 'lsn:0/4000000', backup: 'b1' },
    {
      name: 'lsn past the archive',
      target: 'lsn:0/9000600',
      problem: /after the end of the archived WAL \(0\/9000500\)/,
    },
    { name: 'lsn before the first backup', target: 'lsn:0/1000000', problem: /before the first full backup/ },
    { name: 'name uses the oldest backup', target: 'name:x', backup: 'b1', last: seg(9) },
    { name: 'latest uses the newest', target: 'latest', backup: 'b2', last: seg(9) },
    {
      name: 'unverified backups do not count',
      target: 'latest',
      backups: [backup('b0', 2, '2026-11-22T10:00:00.000Z', false)],
      problem: /no verified full backup/,
    },
    {
      name: 'a gap ends the window',
      target: 'lsn:0/8000000',
      wal: { ...wal, segments: wal.segments.filter((s) => s !== seg(7)) },
      problem: /after the end of the archived WAL \(0\/7000000\)/,
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const t = parseRestoreTarget(c.target);
      assert.ok(t.ok);
      const r = resolveRestoreChain({
        target: t.target,
        backups: c.backups ?? backups,
        wal: c.wal ?? wal,
        now,
      });
      if (c.problem) {
        assert.equal(r.ok, false, JSON.stringify(r));
        if (!r.ok) assert.match(r.problem, c.problem);
      } else {
        assert.ok(r.ok, JSON.stringify(r));
        assert.equal(r.chain.backup.id, c.backup);
        if (c.last) assert.equal(r.chain.lastSegment, c.last);
      }
    });
});

describe('contiguousEnd and recoverySettings', () => {
  it('the newest partial upload reaches furthest', () => {
    assert.deepEqual(contiguousEnd(seg(2), wal), {
      lastSegment: seg(9),
      endLsn: '0/9000500',
      count: 8,
      endsInPartial: true,
    });
  });
  it('nothing archived from the start segment', () => {
    assert.equal(contiguousEnd(seg(20), wal), undefined);
  });
  const cases = [
    { name: 'time', target: '2026-11-22T12:30:00Z', key: 'recovery_target_time' },
    { name: 'lsn', target: 'lsn:0/9000400', key: 'recovery_target_lsn' },
    { name: 'name', target: 'name:x', key: 'recovery_target_name' },
  ];
  for (const c of cases)
    it(`exactly one recovery target: ${c.name}`, () => {
      const t = parseRestoreTarget(c.target);
      assert.ok(t.ok);
      const s = recoverySettings({ target: t.target, action: 'pause', inclusive: true, restoreCommand: 'x' });
      const targets = Object.keys(s).filter((k) => /^recovery_target_(time|lsn|name|xid|immediate)$/.test(k));
      assert.deepEqual(targets, [c.key]);
      assert.equal(s.recovery_target_action, 'pause');
    });
  it('latest sets no target and no action', () => {
    const s = recoverySettings({
      target: { kind: 'latest' },
      action: 'promote',
      inclusive: true,
      restoreCommand: 'x',
    });
    assert.deepEqual(Object.keys(s).sort(), ['recovery_target_timeline', 'restore_command']);
  });
});

describe('cutoverProblems', () => {
  const cases: { name: string; edit: (plan: any) => void; region?: string; problems: RegExp[] }[] = [
    { name: 'the example plan allows a cutover to us-west-2', edit: () => undefined, problems: [] },
    {
      name: 'no failover policy for the database: no one may approve',
      edit: (p) => (p.failover.policies = []),
      problems: [/no failover policy for orders/],
    },
    {
      name: 'automatic failover policy without approvers: a cutover still needs a human',
      edit: (p) =>
        (p.failover.policies[0].approval = { mode: 'automatic-within-lag', approvers: [], maxLagBytes: 0 }),
      problems: [/lists 0 approver\(s\) for 1 approval\(s\)/],
    },
    {
      name: 'no DNS section: nothing to cut over',
      edit: (p) => delete p.dns,
      problems: [/no DNS records for orders/],
    },
    {
      name: 'a record without values for the region',
      edit: (p) => delete p.dns.records[0].values['us-west-2'],
      problems: [/orders-db\.lifeboat\.internal\. has no values for region us-west-2/],
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const plan = planSchema.parse(editedPlan(c.edit));
      const problems = cutoverProblems(plan, 'orders', c.region ?? 'us-west-2');
      assert.equal(problems.length, c.problems.length, problems.join('; '));
      c.problems.forEach((re, i) => assert.match(problems[i]!, re));
    });
});
