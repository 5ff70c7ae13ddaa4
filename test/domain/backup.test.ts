// Pure rules of the full backup: upload part sizes and WAL segment names.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_PARTS, partSize, walSegmentName, walSegmentsBetween } from '../../src/domain/backup.ts';

const MiB = 1024 * 1024;
const SEG = 16 * MiB;

describe('partSize', () => {
  it('keeps the first 1000 parts at the first size, then doubles every 1000, capped at 512 MiB', () => {
    const cases = [
      { name: 'first part', part: 1, want: 16 * MiB },
      { name: 'part 1000', part: 1000, want: 16 * MiB },
      { name: 'part 1001', part: 1001, want: 32 * MiB },
      { name: 'part 5001', part: 5001, want: 512 * MiB },
      { name: 'last part', part: MAX_PARTS, want: 512 * MiB },
    ];
    for (const c of cases) assert.equal(partSize(c.part, 16 * MiB), c.want, c.name);
  });

  it('lets 10 000 parts of a 16 MiB start hold more than 2.5 TiB', () => {
    let total = 0;
    for (let n = 1; n <= MAX_PARTS; n++) total += partSize(n, 16 * MiB);
    assert.ok(total > 2.5 * 1024 * 1024 * MiB, `${total / MiB} MiB`);
  });
});

describe('walSegmentName', () => {
  const cases = [
    { name: 'start of the first segment', tli: 1, lsn: '0/0', want: '000000010000000000000000' },
    { name: 'inside segment 3', tli: 1, lsn: '0/3000028', want: '000000010000000000000003' },
    { name: 'high half and timeline', tli: 2, lsn: '16/B374D848', want: '0000000200000016000000B3' },
  ];
  for (const c of cases) it(c.name, () => assert.equal(walSegmentName(c.tli, c.lsn, SEG), c.want));
});

describe('walSegmentsBetween', () => {
  it('lists every segment from start to stop, inclusive', () => {
    assert.deepEqual(walSegmentsBetween(1, '0/6000028', '0/8000100', SEG), [
      '000000010000000000000006',
      '000000010000000000000007',
      '000000010000000000000008',
    ]);
  });
  it('does not need the segment a stop LSN on a boundary only begins', () => {
    assert.deepEqual(walSegmentsBetween(1, '0/6000028', '0/7000000', SEG), ['000000010000000000000006']);
  });
  it('crosses the 4 GiB boundary of the high half', () => {
    assert.deepEqual(walSegmentsBetween(1, '0/FF000028', '1/100', SEG), [
      '0000000100000000000000FF',
      '000000010000000100000000',
    ]);
  });
});
