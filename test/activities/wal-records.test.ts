// The commit and abort times of a WAL segment: from real WAL the stack's primary wrote (checked
// against the client's clock around each commit), and from segments laid out by hand where a
// record runs on from the segment before, a record header straddles a page header, and a page
// left from a file's earlier use follows the last record.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { endsTransactionAtOrAfter, transactionEndTimes } from '../../src/domain/wal-records.ts';
import { adminQuery } from '../support/failover.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { PAGE, walSegment } from '../support/wal-segments.ts';

describe('transaction end times in a WAL segment', () => {
  let stack: TestStack;

  before(async () => {
    stack = await ensureStack();
  });

  it('reads every commit of real WAL, each at the time it was made', async () => {
    const table = `lifeboat_wal_records_${process.pid}`;
    await adminQuery(stack, 'us-east-1', `create table ${table} (x int)`);
    try {
      await adminQuery(stack, 'us-east-1', 'select pg_switch_wal()');
      const [start] = await adminQuery<{ wal: string }>(
        stack,
        'us-east-1',
        'select pg_walfile_name(pg_current_wal_insert_lsn()) as wal',
      );
      const windows: [number, number][] = [];
      for (let i = 0; i < 5; i++) {
        const from = Date.now();
        await adminQuery(stack, 'us-east-1', `insert into ${table} values (${i})`);
        windows.push([from, Date.now()]);
        await new Promise((r) => setTimeout(r, 20));
      }
      const [end] = await adminQuery<{ wal: string }>(
        stack,
        'us-east-1',
        'select pg_walfile_name(pg_current_wal_insert_lsn()) as wal',
      );
      const first = start!.wal;
      assert.equal(end!.wal, first, 'the five commits are in one segment');
      const [file] = await adminQuery<{ bytes: Buffer }>(
        stack,
        'us-east-1',
        'select pg_read_binary_file($1) as bytes',
        [`pg_wal/${first}`],
      );
      const bytes = file!.bytes;
      const times = transactionEndTimes(bytes);
      for (const [from, to] of windows)
        assert.ok(
          times.some((t) => t >= from - 1 && t <= to + 1),
          `a commit between ${new Date(from).toISOString()} and ${new Date(to).toISOString()}: ${times.map((t) => new Date(t).toISOString()).join(', ')}`,
        );
      assert.ok(
        times.every((t, i) => i === 0 || t >= times[i - 1]! - 1000),
        'in WAL order, about in time order',
      );
      assert.equal(endsTransactionAtOrAfter(bytes, new Date(windows[4]![0] - 1)), true);
      assert.equal(endsTransactionAtOrAfter(bytes, new Date(windows[4]![1] + 1000)), false);
    } finally {
      await adminQuery(stack, 'us-east-1', `drop table ${table}`);
    }
  });

  it('skips a record continued from the segment before and reads across page headers', () => {
    const base = Date.parse('2026-12-07T07:00:00Z');
    // A filler sized so that the second commit's header starts 16 bytes before the first page
    // ends: its header straddles the second page's header.
    const firstPayload = PAGE - 40;
    const continued = 100;
    const afterFirst = ((continued + 7) & ~7) + 40; // the first commit, aligned
    const segment = walSegment(
      7,
      [{ commitAt: base + 1.5 }, { filler: firstPayload - 16 - afterFirst }, { commitAt: base + 2000 }],
      { continued },
    );
    assert.deepEqual(transactionEndTimes(segment), [base + 1.5, base + 2000]);
  });

  it('ends at a page that is not this segment’s, and finds nothing in zeroes', () => {
    const base = Date.parse('2026-12-07T07:00:00Z');
    const segment = walSegment(3, [{ commitAt: base }, { filler: PAGE }, { commitAt: base + 5000 }]);
    // The second page claims another segment's address: a file's earlier use.
    segment.writeBigUInt64LE(BigInt(99 * segment.length + PAGE), PAGE + 8);
    assert.deepEqual(transactionEndTimes(segment), [base]);
    assert.deepEqual(transactionEndTimes(Buffer.alloc(1024 * 1024)), []);
  });
});
