// Pipelines in a thread of their own: the result and the last progress back, typed errors back as
// the errors they were, and an abort that ends the thread's tools.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { LifeboatError } from '../../../src/domain/errors.ts';
import { processAlive, ToolError } from '../../../src/activities/pipeline/child.ts';
import { runInThread } from '../../../src/activities/pipeline/in-thread.ts';
import type { TestTaskOptions } from '../../support/thread-task.ts';

const TASK = new URL('../../support/thread-task.ts', import.meta.url);
type Result = { counted: number; wal: Map<string, number> };

describe('runInThread', () => {
  it("returns the task's result (structured-cloned, a Map too) after its last progress", async () => {
    const run = runInThread<TestTaskOptions, Result, number>(TASK, { mode: 'count', upTo: 1000 });
    const result = await run.result;
    assert.equal(result.counted, 1000);
    assert.deepEqual([...result.wal], [['000000010000000000000002', 16 << 20]]);
    assert.equal(run.progress(), 1000);
  });

  it('returns a LifeboatError thrown in the thread with its code, and a ToolError with its tool and stderr', async () => {
    const lifeboat = runInThread<TestTaskOptions, Result>(TASK, { mode: 'lifeboat-error' });
    await assert.rejects(lifeboat.result, (err: unknown) => {
      assert.ok(err instanceof LifeboatError);
      assert.equal(err.code, 'IntegrityError');
      assert.equal(err.message, 'base/1/1259: CRC32C differs');
      return true;
    });
    const tool = runInThread<TestTaskOptions, Result>(TASK, { mode: 'tool-error' });
    await assert.rejects(tool.result, (err: unknown) => {
      assert.ok(err instanceof ToolError);
      assert.equal(err.tool, 'zstd');
      assert.equal(err.stderr, 'bad frame');
      return true;
    });
  });

  it('aborts: the task ends its tools and fails with the reason, typed', async () => {
    const run = runInThread<TestTaskOptions, Result, number>(TASK, { mode: 'sleep' });
    let pid: number | undefined;
    for (let i = 0; i < 200 && !(pid = run.progress()); i++) await sleep(25);
    assert.ok(pid && processAlive(pid), 'the task did not start sleep');
    run.abort(new LifeboatError('Unreachable', 'upload failed: storage gone'));
    await assert.rejects(run.result, (err: unknown) => {
      assert.ok(err instanceof LifeboatError);
      assert.equal(err.code, 'Unreachable');
      assert.match(err.message, /storage gone/);
      return true;
    });
    assert.equal(processAlive(pid), false, `sleep (pid ${pid}) still runs after the abort`);
  });

  it('fails, naming it, when the task module cannot be loaded', async () => {
    const run = runInThread(new URL('../../support/no-such-task.ts', import.meta.url), {});
    await assert.rejects(run.result, /no-such-task/);
  });
});
