import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { scanSpool, seedPartial, spoolHasWal, validExtent } from '../../src/activities/pipeline/wal-spool.ts';

const MiB16 = 16 * 1024 * 1024;

describe('WAL spool', () => {
  it('finds the end of the WAL in a zero-filled partial segment, rounded to 8 bytes', () => {
    const cases = [
      { name: 'empty', written: 0, expect: 0 },
      { name: 'one record', written: 0x50, expect: 0x50 },
      { name: 'unaligned end', written: 0x53, expect: 0x58 },
      { name: 'full', written: MiB16, expect: MiB16 },
    ];
    for (const c of cases) {
      const data = Buffer.alloc(MiB16);
      data.fill(0xab, 0, c.written);
      assert.equal(validExtent(data), c.expect, c.name);
    }
    // Not 8-byte aligned in memory: the slow path gives the same answer.
    const odd = Buffer.alloc(101).subarray(1);
    odd[40] = 1;
    assert.equal(validExtent(odd), 48);
  });

  it('orders completed, partial and history files and seeds a start', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-spool-'));
    assert.equal(spoolHasWal(dir), false);
    for (const name of [
      '000000010000000000000005',
      '000000010000000000000004',
      '00000002.history',
      'pg_receivewal.pid',
    ])
      fs.writeFileSync(path.join(dir, name), 'x');
    seedPartial(dir, '000000020000000000000006', MiB16);
    const spool = scanSpool(dir, MiB16);
    assert.deepEqual(
      spool.segments.map((s) => s.name),
      ['000000010000000000000004', '000000010000000000000005'],
    );
    assert.deepEqual(
      spool.partials.map((s) => s.name),
      ['000000020000000000000006.partial'],
    );
    assert.equal(fs.statSync(path.join(dir, '000000020000000000000006.partial')).size, MiB16);
    assert.deepEqual(
      spool.histories.map((s) => s.timeline),
      [2],
    );
    assert.equal(spoolHasWal(dir), true);
    fs.rmSync(dir, { recursive: true });
  });
});
