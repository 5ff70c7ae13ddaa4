// The pure parts of retention over the whole repository: which WAL partials are superseded, which
// unreferenced Kubernetes objects are old enough to sweep, and the union of two catalogs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { repository } from '../../src/domain/repository.ts';
import { supersededPartials, sweepCandidates, unionBackups } from '../../src/domain/retention-repository.ts';
import type { RetentionBackup } from '../../src/domain/retention.ts';

const SEG = '000000010000000000000005';
const NEXT = '000000010000000000000006';
const SEG_TL2 = '000000020000000000000005';
const complete = (s: string) => repository.walSegment('', 'orders', s);
const partial = (s: string, lsn: string) => repository.walPartial('', 'orders', s, lsn);

describe('supersededPartials', () => {
  const cases = [
    {
      name: 'a complete segment supersedes all its partials, not itself',
      wal: [{ segment: SEG, keys: [complete(SEG), partial(SEG, '0/5000100'), partial(SEG, '0/5800000')] }],
      expect: [partial(SEG, '0/5000100'), partial(SEG, '0/5800000')],
    },
    {
      name: 'a partial without its complete segment stays: it may be the newest WAL there is',
      wal: [{ segment: NEXT, keys: [partial(NEXT, '0/6000100')] }],
      expect: [],
    },
    {
      name: 'each segment on its own',
      wal: [
        { segment: SEG, keys: [complete(SEG), partial(SEG, '0/5000100')] },
        { segment: NEXT, keys: [partial(NEXT, '0/6000100')] },
      ],
      expect: [partial(SEG, '0/5000100')],
    },
    {
      name: 'another timeline\u2019s complete segment of the same number does not count',
      wal: [
        { segment: SEG, keys: [partial(SEG, '0/5000100')] },
        { segment: SEG_TL2, keys: [complete(SEG_TL2)] },
      ],
      expect: [],
    },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(supersededPartials(c.wal), c.expect));
});

describe('sweepCandidates', () => {
  const now = Date.parse('2026-11-22T12:00:00Z');
  const hour = 3_600_000;
  const objects = [
    { key: 'named', lastModified: '2026-11-01T00:00:00.000Z' },
    { key: 'old', lastModified: '2026-11-21T13:00:00.000Z' },
    { key: 'young', lastModified: '2026-11-22T11:30:00.000Z' },
    { key: 'ageless' },
  ];
  it('never an object an index names; old ones go, young and ageless ones stay', () =>
    assert.deepEqual(sweepCandidates(objects, new Set(['named']), now, 24 * hour), {
      old: [],
      young: ['old', 'young', 'ageless'],
    }));
  it('with a one-hour grace the 23-hour-old object goes', () =>
    assert.deepEqual(sweepCandidates(objects, new Set(['named']), now, hour), {
      old: ['old'],
      young: ['young', 'ageless'],
    }));
});

describe('unionBackups', () => {
  const b = (id: string, time: string, verified = true): RetentionBackup => ({
    id,
    kind: 'full',
    parent: null,
    time,
    startLsn: '0/1000028',
    stopLsn: '0/2000000',
    verified,
  });
  it('every backup of either location once, oldest first; the primary\u2019s manifest wins', () => {
    const u = unionBackups(
      [b('a', '2026-11-01T00:00:00Z'), b('c', '2026-11-03T00:00:00Z', false)],
      [b('c', '2026-11-03T00:00:00Z', true), b('b', '2026-11-02T00:00:00Z')],
    );
    assert.deepEqual(
      u.map((x) => [x.id, x.verified]),
      [
        ['a', true],
        ['b', true],
        ['c', false],
      ],
    );
  });
});
