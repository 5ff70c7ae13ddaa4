// The tap and the tee of the base backup's pipeline: every byte reaches both consumers at the pace
// of the slower, a side that stops early fails the stream instead of hanging it, and a tap that
// throws fails the stream with its error.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { tapInto, teeInto } from '../../../src/activities/pipeline/stream-taps.ts';

const pieces = (data: Buffer, size: number) =>
  Readable.from(
    Array.from({ length: Math.ceil(data.length / size) }, (_, i) => data.subarray(i * size, (i + 1) * size)),
  );

/** A sink keeping what it gets, each write taking `delayMs`, with a small buffer (so it pushes back). */
function slowSink(delayMs: number, got: Buffer[]): Writable {
  return new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _enc, done) {
      got.push(chunk);
      setTimeout(done, delayMs);
    },
  });
}

describe('stream taps', () => {
  it('the tee gives every byte to the side and downstream, in order, with a slow side', async () => {
    const data = randomBytes(256 * 1024);
    const side: Buffer[] = [];
    const down: Buffer[] = [];
    const seen: Buffer[] = [];
    const sideSink = slowSink(1, side);
    await pipeline(
      pieces(data, 16 * 1024),
      teeInto(sideSink, (c) => seen.push(c)),
      slowSink(0, down),
    );
    await finished(sideSink);
    assert.ok(Buffer.concat(side).equals(data));
    assert.ok(Buffer.concat(down).equals(data));
    assert.ok(Buffer.concat(seen).equals(data));
  });

  it('a side that is destroyed before the input ends fails the stream (it does not hang)', async () => {
    const data = randomBytes(512 * 1024);
    const side: Buffer[] = [];
    const sideSink = slowSink(5, side);
    setTimeout(() => sideSink.destroy(new Error('zstd -d exited with 1')), 20);
    await assert.rejects(
      pipeline(
        pieces(data, 16 * 1024),
        teeInto(sideSink, () => undefined),
        slowSink(0, []),
      ),
      /zstd -d exited with 1/,
    );
  });

  it('a tap that throws fails the stream with its error', async () => {
    await assert.rejects(
      pipeline(
        pieces(randomBytes(64 * 1024), 4096),
        tapInto(() => {
          throw new Error('not a tar header');
        }),
        slowSink(0, []),
      ),
      /not a tar header/,
    );
  });
});
