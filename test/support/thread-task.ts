// A pipeline-thread task for test/activities/pipeline/in-thread.test.ts; `options.mode` picks what
// it does: count with progress, fail with a typed error, or run `sleep` until aborted.
import { LifeboatError } from '../../src/domain/errors.ts';
import { startTool, ToolError } from '../../src/activities/pipeline/child.ts';
import type { ThreadTask } from '../../src/activities/pipeline/in-thread.ts';

export interface TestTaskOptions {
  mode: 'count' | 'lifeboat-error' | 'tool-error' | 'sleep';
  upTo?: number;
}

export const run: ThreadTask<
  TestTaskOptions,
  { counted: number; wal: Map<string, number> },
  number
> = async ({ options, signal, progressFrom }) => {
  if (options.mode === 'lifeboat-error')
    throw new LifeboatError('IntegrityError', 'base/1/1259: CRC32C differs');
  if (options.mode === 'tool-error')
    throw new ToolError('zstd', 'zstd exited with 1: bad frame', 'bad frame');
  if (options.mode === 'sleep') {
    const sleep = startTool('sleep', 'sleep', ['30'], { stdio: 'ignore' });
    progressFrom(() => sleep.child.pid!);
    signal.addEventListener('abort', () => sleep.kill());
    await sleep.done.catch(() => undefined);
    throw signal.reason;
  }
  let counted = 0;
  progressFrom(() => counted);
  for (; counted < (options.upTo ?? 0); counted++) await Promise.resolve();
  return { counted, wal: new Map([['000000010000000000000002', 16 << 20]]) };
};
