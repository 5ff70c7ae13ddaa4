// Two small transforms for pipelines that read what passes: a tap that sees every piece, and a tee
// that also feeds a second consumer at the pace of the slower one.
import { Transform, type TransformCallback, type Writable } from 'node:stream';

/** Passes each piece on after `see` has had it (a parse error fails the stream). */
export function tapInto(see: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      try {
        see(chunk);
        done(null, chunk);
      } catch (err) {
        done(err as Error);
      }
    },
  });
}

/**
 * Passes each piece on (after `see` has had it), and writes it to `side` too, at the pace of the
 * slower of the two; ends `side` when the input ends. A side that closes early fails the stream
 * (and so the backup).
 */
export function teeInto(side: Writable, see: (chunk: Buffer) => void): Transform {
  let sideError: Error | undefined;
  side.on('error', (err: Error) => (sideError ??= err));
  const closedEarly = () => sideError ?? new Error('the side stream closed before the input ended');
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      if (side.destroyed) return done(closedEarly());
      see(chunk);
      if (side.write(chunk)) return done(null, chunk);
      const settle = (err?: Error) => {
        side.off('drain', onDrain);
        side.off('close', onClose);
        if (err) done(err);
        else done(null, chunk);
      };
      const onDrain = () => settle();
      const onClose = () => settle(closedEarly());
      side.on('drain', onDrain);
      side.on('close', onClose);
    },
    flush(done: TransformCallback) {
      side.end();
      done();
    },
  });
}
