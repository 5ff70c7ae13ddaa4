import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatLsn, parseLsn } from '../../src/domain/lsn.ts';
import {
  ancestorsOf,
  applyRetention,
  expiredWalSegments,
  lowerLsn,
  periodKeys,
  planRetention,
  type RetentionBackup,
  type RetentionInput,
  type RetentionPolicy,
} from '../../src/domain/retention.ts';

const DAY = 86_400_000;
const MiB16 = 16 * 1024 * 1024;
const NOW = '2026-11-22T12:00:00.000Z';

/**
 * A history written as `F` (full) and `I` (incremental of the previous backup) with an age in
 * days, oldest first: `['F40', 'I39', 'F10']`. `!` marks an unverified backup (`F5!`).
 * Ids are `b<age>`; LSNs grow with time, one segment per backup.
 */
function history(spec: string[]): RetentionBackup[] {
  const out: RetentionBackup[] = [];
  spec.forEach((s, i) => {
    const m = /^([FI])(\d+(?:\.\d+)?)(!?)$/.exec(s);
    if (!m) throw new Error(`bad spec ${s}`);
    const ageDays = Number(m[2]);
    out.push({
      id: `b${m[2]}`,
      kind: m[1] === 'F' ? 'full' : 'incremental',
      parent: m[1] === 'I' ? out.at(-1)!.id : null,
      time: new Date(Date.parse(NOW) - ageDays * DAY).toISOString(),
      startLsn: formatLsn(BigInt((i + 1) * MiB16) + 40n),
      stopLsn: formatLsn(BigInt((i + 2) * MiB16)),
      verified: m[3] !== '!',
    });
  });
  return out;
}

const policy = (p: Partial<RetentionPolicy>): RetentionPolicy => ({
  daily: 0,
  weekly: 0,
  monthly: 0,
  yearly: 0,
  minAgeMs: 0,
  ...p,
});

describe('planRetention: the exact set kept', () => {
  const cases: {
    name: string;
    spec: string[];
    policy: RetentionPolicy;
    holds?: string[];
    pitrDays?: number;
    kept: string[];
  }[] = [
    {
      name: 'empty catalog: nothing kept, nothing deleted',
      spec: [],
      policy: policy({ daily: 7 }),
      kept: [],
    },
    {
      name: 'keep 1 daily: the newest backup only',
      spec: ['F3', 'F2', 'F1'],
      policy: policy({ daily: 1 }),
      kept: ['b1'],
    },
    {
      name: 'keep 1 daily when the newest is an incremental: it and its chain back to the full',
      spec: ['F5', 'F3', 'I2', 'I1'],
      policy: policy({ daily: 1 }),
      kept: ['b3', 'b2', 'b1'],
    },
    {
      name: 'a policy of zeros still keeps the newest verified full',
      spec: ['F3', 'F2', 'I1'],
      policy: policy({}),
      kept: ['b2'],
    },
    {
      name: 'two backups on one day: daily keeps the newest of the day',
      spec: ['F3', 'F1.5', 'F1.25'],
      policy: policy({ daily: 2 }),
      kept: ['b3', 'b1.25'],
    },
    {
      name: 'minAge keeps everything younger, verified or not',
      spec: ['F10', 'F2!', 'F1', 'F0.5!'],
      policy: policy({ daily: 1, minAgeMs: 3 * DAY }),
      kept: ['b2', 'b1', 'b0.5'],
    },
    {
      name: 'an unverified backup never counts for GFS: the day is taken by the verified one',
      spec: ['F3', 'F2', 'F1!'],
      policy: policy({ daily: 1 }),
      kept: ['b2'],
    },
    {
      name: 'legal hold keeps an old backup and its chain',
      spec: ['F40', 'I39', 'F1'],
      policy: policy({ daily: 1 }),
      holds: ['b39'],
      kept: ['b40', 'b39', 'b1'],
    },
    {
      name: 'PITR window of 7 days keeps the newest full at or before its start',
      spec: ['F20', 'F9', 'F8', 'I6', 'F1'],
      policy: policy({ daily: 1 }),
      pitrDays: 7,
      kept: ['b8', 'b1'],
    },
    {
      name: 'weekly (ISO weeks, Monday start): the newest of each of the 2 most recent weeks',
      // NOW is Sunday 2026-11-22: ages 0..6 are this week, 7..13 the week before.
      spec: ['F15', 'F13', 'F9', 'F8', 'F6', 'F2'],
      policy: policy({ weekly: 2 }),
      kept: ['b8', 'b2'],
    },
    {
      name: 'monthly and yearly: the newest of each of the most recent months and years',
      spec: ['F800', 'F400', 'F380', 'F60', 'F40', 'F30', 'F1'],
      policy: policy({ monthly: 3, yearly: 3 }),
      // months: Nov (b1), Oct (b30 = 2026-10-23), Oct (b40), Sep (b60) → b1, b30, b60
      // years: 2026 (b1), 2025 (b380 = 2025-11-07, b400), 2024 (b800) → b1, b380, b800
      kept: ['b800', 'b380', 'b60', 'b30', 'b1'],
    },
    {
      name: 'GFS tiers overlap: one backup can satisfy daily, weekly and monthly',
      spec: ['F3', 'F2', 'F1'],
      policy: policy({ daily: 1, weekly: 1, monthly: 1 }),
      kept: ['b1'],
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const backups = history(c.spec);
      const plan = planRetention({
        backups,
        policy: c.policy,
        now: NOW,
        holds: (c.holds ?? []).map((backupId) => ({ backupId, reason: 'audit 2026-Q4' })),
        pitrWindowMs: (c.pitrDays ?? 0) * DAY,
      });
      assert.deepEqual(plan.kept.map((k) => k.id).sort(), [...c.kept].sort());
      assert.deepEqual(
        plan.deleted.map((d) => d.id).sort(),
        backups
          .map((b) => b.id)
          .filter((id) => !c.kept.includes(id))
          .sort(),
      );
      for (const k of plan.kept) assert.ok(k.rules.length > 0, `${k.id} kept without a rule`);
      for (const d of plan.deleted) assert.ok(d.reason.length > 0, `${d.id} deleted without a reason`);
    });

  it('says which rule kept each backup', () => {
    const plan = planRetention({
      backups: history(['F40', 'I39', 'F1']),
      policy: policy({ daily: 1 }),
      now: NOW,
      holds: [{ backupId: 'b39', reason: 'ticket LEGAL-7' }],
      pitrWindowMs: 0,
    });
    const rules = Object.fromEntries(plan.kept.map((k) => [k.id, k.rules.map((r) => r.rule).sort()]));
    assert.deepEqual(rules, {
      b40: ['chain'],
      b39: ['legal-hold'],
      b1: ['daily', 'newest-verified-full'],
    });
    assert.equal(plan.kept.find((k) => k.id === 'b39')!.rules[0]!.detail, 'ticket LEGAL-7');
  });

  it('warns when a kept incremental has lost its parent', () => {
    const backups = history(['F3', 'I2']).filter((b) => b.id !== 'b3');
    const plan = planRetention({
      backups,
      policy: policy({ daily: 1 }),
      now: NOW,
      holds: [],
      pitrWindowMs: 0,
    });
    assert.match(plan.warnings.join('\n'), /b2: parent b3 is not in the catalog/);
  });

  it('warns when no full backup reaches back to the start of the PITR window', () => {
    const plan = planRetention({
      backups: history(['F3', 'F1']),
      policy: policy({ daily: 1 }),
      now: NOW,
      holds: [],
      pitrWindowMs: 7 * DAY,
    });
    assert.match(plan.warnings.join('\n'), /no verified full backup at or before 2026-11-15T12:00:00.000Z/);
  });

  it('keeps WAL from the oldest kept full start onwards', () => {
    const backups = history(['F5', 'F3', 'I2', 'F1']);
    const plan = planRetention({
      backups,
      policy: policy({ daily: 2 }),
      now: NOW,
      holds: [],
      pitrWindowMs: 0,
    });
    // kept: b1 (daily), b2 (daily) → b3 (chain): oldest kept full b3 started in segment 2
    assert.equal(plan.walKeepFromLsn, backups[1]!.startLsn);
    const segments = ['000000010000000000000000', '000000010000000000000001', '000000010000000000000002'];
    assert.deepEqual(expiredWalSegments(segments, plan.walKeepFromLsn, MiB16), segments.slice(0, 2));
    assert.deepEqual(expiredWalSegments(segments, null, MiB16), []);
  });
});

describe('ancestorsOf and lowerLsn', () => {
  it('walks an incremental chain back to its full, newest first', () => {
    const backups = history(['F5', 'I4', 'I3', 'F2']);
    assert.deepEqual(ancestorsOf(backups, 'b3'), ['b4', 'b5']);
    assert.deepEqual(ancestorsOf(backups, 'b2'), []);
    assert.deepEqual(ancestorsOf(backups, 'missing'), []);
  });
  it('takes the lower LSN, null meaning no bound', () => {
    assert.equal(lowerLsn('1/0', '0/FFFFFFFF'), '0/FFFFFFFF');
    assert.equal(lowerLsn(null, '0/10'), '0/10');
    assert.equal(lowerLsn('0/10', null), '0/10');
    assert.equal(lowerLsn(null, null), null);
  });
});

describe('periodKeys', () => {
  const cases = [
    {
      name: 'Sunday belongs to the ISO week that began Monday',
      at: '2026-11-22T23:59:59Z',
      week: '2026-W47',
    },
    { name: 'Monday starts the next ISO week', at: '2026-11-23T00:00:00Z', week: '2026-W48' },
    { name: '1 Jan 2027 (a Friday) is in 2026-W53', at: '2027-01-01T12:00:00Z', week: '2026-W53' },
    { name: '29 Dec 2025 (a Monday) is in 2026-W01', at: '2025-12-29T12:00:00Z', week: '2026-W01' },
  ];
  for (const c of cases) it(c.name, () => assert.equal(periodKeys(c.at).weekly, c.week));
});

describe('planRetention properties', () => {
  const arbInput: fc.Arbitrary<RetentionInput> = fc
    .record({
      steps: fc.array(
        fc.record({
          gapMs: fc.integer({ min: 60_000, max: 40 * DAY }),
          incremental: fc.boolean(),
          verified: fc.boolean(),
          held: fc.boolean(),
        }),
        { maxLength: 30 },
      ),
      daily: fc.nat(8),
      weekly: fc.nat(5),
      monthly: fc.nat(13),
      yearly: fc.nat(3),
      minAgeMs: fc.integer({ min: 0, max: 10 * DAY }),
      pitrWindowMs: fc.integer({ min: 0, max: 30 * DAY }),
      sinceLastMs: fc.integer({ min: 0, max: 5 * DAY }),
    })
    .map((r) => {
      const total = r.steps.reduce((s, x) => s + x.gapMs, 0);
      let t = Date.parse(NOW) - r.sinceLastMs - total;
      const backups: RetentionBackup[] = [];
      const holds: RetentionInput['holds'] = [];
      r.steps.forEach((s, i) => {
        t += s.gapMs;
        const prev = backups.at(-1);
        const incremental = s.incremental && prev !== undefined;
        backups.push({
          id: `b${String(i).padStart(3, '0')}`,
          kind: incremental ? 'incremental' : 'full',
          parent: incremental ? prev.id : null,
          time: new Date(t).toISOString(),
          startLsn: formatLsn(BigInt(i + 1) * BigInt(MiB16)),
          stopLsn: formatLsn(BigInt(i + 2) * BigInt(MiB16)),
          verified: s.verified,
        });
        if (s.held && i % 5 === 0) holds.push({ backupId: backups.at(-1)!.id, reason: 'hold' });
      });
      return {
        backups,
        holds,
        now: NOW,
        pitrWindowMs: r.pitrWindowMs,
        policy: {
          daily: r.daily,
          weekly: r.weekly,
          monthly: r.monthly,
          yearly: r.yearly,
          minAgeMs: r.minAgeMs,
        },
      };
    });

  it('partitions the catalog: every backup is kept or deleted, never both', () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const plan = planRetention(input);
        const kept = new Set(plan.kept.map((k) => k.id));
        assert.equal(plan.kept.length + plan.deleted.length, input.backups.length);
        for (const d of plan.deleted) assert.ok(!kept.has(d.id));
      }),
    );
  });

  it('always keeps the newest verified full', () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const newest = input.backups.filter((b) => b.kind === 'full' && b.verified).at(-1);
        fc.pre(newest !== undefined);
        assert.ok(planRetention(input).kept.some((k) => k.id === newest.id));
      }),
    );
  });

  it("keeps every kept incremental's chain back to its full", () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const byId = new Map(input.backups.map((b) => [b.id, b]));
        const kept = new Set(planRetention(input).kept.map((k) => k.id));
        for (const id of kept) {
          let b = byId.get(id)!;
          while (b.parent) {
            assert.ok(kept.has(b.parent), `${id} kept but its ancestor ${b.parent} deleted`);
            b = byId.get(b.parent)!;
          }
          assert.equal(b.kind, 'full');
        }
      }),
    );
  });

  it('deletes nothing younger than minAge and nothing held', () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const byId = new Map(input.backups.map((b) => [b.id, b]));
        const held = new Set(input.holds.map((h) => h.backupId));
        for (const d of planRetention(input).deleted) {
          assert.ok(Date.parse(NOW) - Date.parse(byId.get(d.id)!.time) >= input.policy.minAgeMs);
          assert.ok(!held.has(d.id));
        }
      }),
    );
  });

  it('keeps the WAL every kept backup needs', () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const plan = planRetention(input);
        const byId = new Map(input.backups.map((b) => [b.id, b]));
        if (plan.kept.length === 0) return assert.equal(plan.walKeepFromLsn, null);
        for (const k of plan.kept) {
          const b = byId.get(k.id)!;
          assert.ok(parseLsn(b.startLsn) >= parseLsn(plan.walKeepFromLsn!), `${k.id} starts before kept WAL`);
        }
      }),
    );
  });

  it('is idempotent: applying the plan and planning again deletes nothing more', () => {
    fc.assert(
      fc.property(arbInput, (input) => {
        const first = planRetention(input);
        const after = applyRetention(input.backups, first);
        const second = planRetention({ ...input, backups: after });
        assert.deepEqual(second.deleted, []);
        assert.deepEqual(
          second.kept.map((k) => k.id),
          first.kept.map((k) => k.id),
        );
        assert.equal(second.walKeepFromLsn, first.walKeepFromLsn);
      }),
    );
  });
});
