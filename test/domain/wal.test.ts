import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  applyArchiveRun,
  NOTIFIED_ALERTS,
  continuity,
  initialArchiverStatus,
  lsnInSegment,
  nextSegment,
  parseWalFileName,
  segmentEndLsn,
  segmentName,
  segmentNumber,
  segmentOfLsn,
  segmentStartLsn,
  type ArchiveWalResult,
} from '../../src/domain/wal.ts';

const MiB16 = 16 * 1024 * 1024;

describe('WAL file names', () => {
  const cases = [
    { name: 'a completed segment', file: '000000010000000000000003', kind: 'segment', timeline: 1 },
    { name: 'a partial segment', file: '00000002000000A1000000FF.partial', kind: 'partial', timeline: 2 },
    { name: 'a timeline history', file: '0000000A.history', kind: 'history', timeline: 10 },
  ];
  for (const c of cases)
    it(`reads ${c.name}`, () => {
      const f = parseWalFileName(c.file);
      assert.equal(f?.kind, c.kind);
      assert.equal(f?.timeline, c.timeline);
    });
  it('ignores everything else', () => {
    for (const other of [
      'pg_receivewal.pid',
      '000000010000000000000003.partial.seed',
      'archive_status',
      '00000000.history',
    ])
      assert.equal(parseWalFileName(other), undefined, other);
  });
});

describe('segment arithmetic (16 MiB segments)', () => {
  it('names and numbers segments losslessly', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 0xffffff }),
        // A 64-bit LSN space holds 2^40 segments of 16 MiB: numbers 0 … 2^40 - 1.
        fc.integer({ min: 0, max: 2 ** 40 - 1 }),
        (tli, segno) => {
          assert.equal(segmentNumber(segmentName(tli, segno, MiB16), MiB16), segno);
        },
      ),
    );
  });
  it('steps over the 4 GiB log-id boundary', () => {
    assert.equal(nextSegment('0000000100000000000000FF', MiB16), '000000010000000100000000');
  });
  it('places LSNs in segments as PostgreSQL does', () => {
    assert.equal(segmentOfLsn(1, '0/3045D40', MiB16), '000000010000000000000003');
    assert.equal(segmentOfLsn(2, '1/0', MiB16), '000000020000000100000000');
    assert.equal(segmentStartLsn('000000010000000000000003', MiB16), '0/3000000');
    assert.equal(segmentEndLsn('0000000100000000000000FF', MiB16), '1/0');
    assert.equal(lsnInSegment('000000010000000000000006', 0x50, MiB16), '0/6000050');
  });
  it('works for other segment sizes (64 MiB)', () => {
    const size = 64 * 1024 * 1024;
    assert.equal(nextSegment('00000001000000000000003F', size), '000000010000000100000000');
    assert.equal(segmentOfLsn(1, '0/8000000', size), '000000010000000000000002');
  });
});

describe('continuity of archived segments', () => {
  const cases = [
    {
      name: 'the successor',
      prev: '000000010000000000000003',
      next: '000000010000000000000004',
      kind: 'next',
    },
    {
      name: 'a promotion repeating the fork segment on the new timeline',
      prev: '000000010000000000000004',
      next: '000000020000000000000004',
      kind: 'timeline-switch',
    },
    {
      name: 'a new timeline starting at the successor',
      prev: '000000010000000000000004',
      next: '000000020000000000000005',
      kind: 'timeline-switch',
    },
    {
      name: 'a skipped segment',
      prev: '000000010000000000000003',
      next: '000000010000000000000005',
      kind: 'gap',
    },
    {
      name: 'a new timeline after missing segments',
      prev: '000000010000000000000003',
      next: '000000020000000000000009',
      kind: 'gap',
    },
    {
      name: 'a re-streamed segment',
      prev: '000000010000000000000005',
      next: '000000010000000000000005',
      kind: 'behind',
    },
    {
      name: 'an older timeline',
      prev: '000000020000000000000005',
      next: '000000010000000000000006',
      kind: 'behind',
    },
  ];
  for (const c of cases)
    it(`classifies ${c.name}`, () => assert.equal(continuity(c.prev, c.next, MiB16).kind, c.kind));
  it('counts what a gap misses and names the segment expected', () => {
    assert.deepEqual(continuity('000000010000000000000003', '000000010000000000000007', MiB16), {
      kind: 'gap',
      missing: 3,
      expected: '000000010000000000000004',
    });
  });
});

describe('archiver status', () => {
  const run = (over: Partial<ArchiveWalResult> = {}): ArchiveWalResult => ({
    reason: 'time-budget',
    segmentsArchived: 2,
    segmentsAlreadyStored: 0,
    rawBytes: 2 * MiB16,
    storedBytes: 1000,
    partialsUploaded: 1,
    historyFilesUploaded: [],
    gaps: [],
    storage: { reachable: true },
    receiver: { running: true },
    spool: { segments: 0, bytes: 0 },
    slot: { name: 'lifeboat_wal_orders' },
    timeline: 1,
    walSegmentSize: MiB16,
    lastArchived: { segment: '000000010000000000000004', at: '2026-01-01T00:00:10Z' },
    ...over,
  });

  it('raises storage-unreachable once, then storage-restored with the outage length', () => {
    const s = initialArchiverStatus('orders', '2026-01-01T00:00:00Z');
    assert.deepEqual(applyArchiveRun(s, run(), '2026-01-01T00:00:20Z'), []);
    assert.equal(s.phase, 'archiving');
    const down = run({
      segmentsArchived: 0,
      storage: { reachable: false, error: 'ECONNREFUSED' },
      spool: { segments: 3, bytes: 3 * MiB16 },
    });
    const a1 = applyArchiveRun(s, down, '2026-01-01T00:00:30Z');
    assert.deepEqual(
      a1.map((a) => a.kind),
      ['storage-unreachable'],
    );
    assert.match(a1[0]!.text, /ECONNREFUSED.*3 now/);
    assert.equal(s.phase, 'storage-unreachable');
    assert.deepEqual(applyArchiveRun(s, down, '2026-01-01T00:00:40Z'), [], 'no second alert while it lasts');
    const a2 = applyArchiveRun(s, run(), '2026-01-01T00:01:00Z');
    assert.deepEqual(
      a2.map((a) => a.kind),
      ['storage-restored'],
    );
    assert.match(a2[0]!.text, /after 30s/);
    assert.equal(s.phase, 'archiving');
    assert.equal(s.storage.outages, 1);
    assert.equal(s.segmentsArchived, 4);
  });

  it('raises a gap, a lost slot and a timeline switch', () => {
    const s = initialArchiverStatus('orders', '2026-01-01T00:00:00Z');
    applyArchiveRun(s, run(), '2026-01-01T00:00:10Z');
    const alerts = applyArchiveRun(
      s,
      run({
        timeline: 2,
        gaps: [{ at: 'x', after: '000000010000000000000004', next: '000000020000000000000009', missing: 4 }],
        slot: { name: 'lifeboat_wal_orders', lost: true },
      }),
      '2026-01-01T00:00:20Z',
    );
    assert.deepEqual(alerts.map((a) => a.kind).sort(), ['gap', 'slot-lost', 'timeline-switch']);
    assert.equal(s.gaps.length, 1);
  });

  it('keeps, without a webhook, that the spool was left for the primary’s timeline', () => {
    const s = initialArchiverStatus('orders', '2026-01-01T00:00:00Z');
    applyArchiveRun(s, run(), '2026-01-01T00:00:10Z');
    const alerts = applyArchiveRun(s, run({ spoolTimelineLeft: 1 }), '2026-01-01T00:00:20Z');
    assert.deepEqual(
      alerts.map((a) => a.kind),
      ['spool-off-history'],
    );
    assert.match(
      alerts[0]!.text,
      /no timeline of the primary's history.*timeline 1 from slot lifeboat_wal_orders/,
    );
    assert.equal(s.alerts.at(-1)?.kind, 'spool-off-history');
    assert.equal(NOTIFIED_ALERTS.includes('spool-off-history'), false);
    assert.equal(s.phase, 'archiving');
    assert.deepEqual(
      applyArchiveRun(s, run(), '2026-01-01T00:00:30Z'),
      [],
      'said once, by the run that left it',
    );
  });

  it('keeps a bounded list of alerts', () => {
    const s = initialArchiverStatus('orders', '2026-01-01T00:00:00Z');
    for (let i = 0; i < 50; i++)
      applyArchiveRun(
        s,
        run({ storage: { reachable: i % 2 === 1 } }),
        `2026-01-01T00:${String(i).padStart(2, '0')}:00Z`,
      );
    assert.equal(s.alerts.length, 20);
  });
});
