import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatLsn, lsnDistance, parseLsn } from '../../src/domain/lsn.ts';
import { formatDuration, parseDuration } from '../../src/domain/duration.ts';

describe('LSN arithmetic', () => {
  it('parses and formats PostgreSQL LSNs losslessly', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (n) => {
        assert.equal(parseLsn(formatLsn(n)), n);
      }),
    );
  });
  it('measures the distance across the 32-bit boundary', () => {
    assert.equal(lsnDistance('1/0', '0/FFFFFF00'), 256);
    assert.equal(lsnDistance('0/3000060', '0/3000000'), 0x60);
    assert.equal(lsnDistance('0/3000000', '0/3000060'), 0);
  });
  it('rejects what is not an LSN', () => {
    assert.throws(() => parseLsn('3000000'), /not an LSN/);
  });
});

describe('durations', () => {
  const cases = [
    { name: 'seconds', text: '10s', ms: 10_000 },
    { name: 'compound', text: '1h30m', ms: 5_400_000 },
    { name: 'days', text: '7d', ms: 604_800_000 },
    { name: 'milliseconds', text: '250ms', ms: 250 },
  ];
  for (const c of cases) it(`parses ${c.name}`, () => assert.equal(parseDuration(c.text), c.ms));
  it('rejects text that is not a duration', () => {
    for (const bad of ['10', 's', '10 s', '1.5h', '']) assert.equal(parseDuration(bad), undefined, bad);
  });
  it('formats for humans', () => {
    assert.equal(formatDuration(90_000), '1m30s');
    assert.equal(formatDuration(2.5 * 3_600_000), '2h30m');
    assert.equal(formatDuration(400), '400ms');
  });
});
