// A pipeline-thread task for test/activities/pipeline/in-thread.test.ts; `options.mode` picks what
// it does: echo its input (counting bytes), fail with a typed error, or run `sleep` until aborted.
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LifeboatError } from '../../src/domain/errors.ts';
import { startTool, ToolError } from '../../src/activities/pipeline/child.ts';
import type { ThreadTask } from '../../src/activities/pipeline/in-thread.ts';

export interface TestTaskOptions {
  mode: 'echo' | 'lifeboat-error' | 'tool-error' | 'sleep';
}

export const run: ThreadTask<
  TestTaskOptions,
  { bytes: number; sha256: string; pid?: number },
  number
> = async ({ options, input, output, signal, report }) => {
  if (options.mode === 'lifeboat-error')
    throw new LifeboatError('IntegrityError', 'base/1/1259: CRC32C differs');
  if (options.mode === 'tool-error')
    throw new ToolError('zstd', 'zstd exited with 1: bad frame', 'bad frame');
  if (options.mode === 'sleep') {
    const sleep = startTool('sleep', 'sleep', ['30'], { stdio: 'ignore' });
    report(sleep.child.pid!);
    const killed = () => sleep.kill();
    signal.addEventListener('abort', killed);
    await sleep.done.catch(() => undefined);
    throw signal.reason;
  }
  const hash = createHash('sha256');
  let bytes = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      report(bytes);
      done(null, chunk);
    },
  });
  await pipeline(input, count, output, { signal });
  return { bytes, sha256: hash.digest('hex') };
};
