import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  incrementalSegmentNumbers,
  incrementalStopLsn,
  newestBackup,
  pickStoredSegment,
  unchangedSince,
} from '../../src/domain/incremental.ts';
import type { BackupManifest } from '../../src/domain/manifest.ts';

const MiB16 = 16 * 1024 * 1024;

describe('incremental ranges', () => {
  const cases = [
    {
      name: 'after a full backup that stopped mid-segment: its stop segment onwards',
      parentStop: '0/5000100',
      sealed: '000000010000000000000007',
      expect: [5, 6, 7],
    },
    {
      name: 'after an incremental (stop on a boundary): the next segment onwards, no overlap',
      parentStop: '0/8000000',
      sealed: '000000010000000000000009',
      expect: [8, 9],
    },
  ];
  for (const c of cases)
    it(c.name, () => assert.deepEqual(incrementalSegmentNumbers(c.parentStop, c.sealed, MiB16), c.expect));

  it('stops at the end of the sealed segment', () => {
    assert.equal(incrementalStopLsn('000000010000000000000009', MiB16), '0/A000000');
  });

  it('is unchanged when the switch sealed nothing new', () => {
    // pg_switch_wal() with nothing written names the segment the parent already sealed.
    assert.equal(unchangedSince('0/A000000', '000000010000000000000009', MiB16), true);
    assert.equal(unchangedSince('0/A000000', '00000001000000000000000A', MiB16), false);
  });

  it('picks the newest timeline not after the current one', () => {
    const stored = new Map([
      [9, ['000000010000000000000009', '000000020000000000000009', '000000030000000000000009']],
    ]);
    assert.equal(pickStoredSegment(stored, 9, 2), '000000020000000000000009');
    assert.equal(pickStoredSegment(stored, 10, 2), undefined);
  });
});

describe('the parent of an incremental', () => {
  const m = (id: string, stop: string, verified = true) =>
    ({ id, stop: { lsn: stop, time: '2026-01-01T00:00:00Z' }, verification: { verified } }) as BackupManifest;
  it('is the newest verified backup by stop LSN', () => {
    assert.equal(newestBackup([m('a', '0/5000000'), m('c', '0/10000000'), m('b', '0/9000000')])?.id, 'c');
    assert.equal(newestBackup([m('a', '0/5000000'), m('b', '0/9000000', false)])?.id, 'a');
    assert.equal(newestBackup([]), undefined);
  });
});
