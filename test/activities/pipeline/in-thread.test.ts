// Pipelines in a thread of their own: bytes both ways in order under backpressure, typed errors
// back as the errors they were, and an abort that ends the thread's tools.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { LifeboatError } from '../../../src/domain/errors.ts';
import { processAlive, ToolError } from '../../../src/activities/pipeline/child.ts';
import { runInThread } from '../../../src/activities/pipeline/in-thread.ts';
import type { TestTaskOptions } from '../../support/thread-task.ts';

const TASK = new URL('../../support/thread-task.ts', import.meta.url);
type Result = { bytes: number; sha256: string };

function chunksOf(data: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  // Awkward sizes, and views into one big buffer (which must cross as their own bytes only).
  for (let at = 0, i = 0; at < data.length; i++) {
    const size = [1, 65536, 100_003, 7, 300_000][i % 5]!;
    chunks.push(data.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

describe('runInThread', () => {
  it('carries 24 MiB in and back out in order through a slow consumer, and returns the task result', async () => {
    const data = randomBytes(24 * 1024 * 1024);
    const run = runInThread<TestTaskOptions, Result, number>(TASK, { mode: 'echo' });
    const received: Buffer[] = [];
    let slowed = 0;
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, done) {
        received.push(chunk);
        // Stall now and then so that the thread's window fills and it must wait for acks.
        if (received.length % 50 === 0) {
          slowed++;
          setTimeout(done, 5);
        } else done();
      },
    });
    const [, , result] = await Promise.all([
      pipeline(Readable.from(chunksOf(data)), run.input),
      pipeline(run.output, slow),
      run.result,
    ]);
    const back = Buffer.concat(received);
    assert.equal(back.length, data.length);
    assert.ok(back.equals(data), 'the bytes came back changed or out of order');
    assert.deepEqual(result, { bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') });
    assert.equal(run.progress(), data.length);
    assert.ok(slowed > 0);
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

  it('aborts: the task ends its tools and fails with the reason, and the output fails with it too', async () => {
    const run = runInThread<TestTaskOptions, Result, number>(TASK, { mode: 'sleep' });
    const outputDone = pipeline(run.output, new Writable({ write: (_c, _e, done) => done() }));
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
    await assert.rejects(outputDone, /storage gone/);
    assert.equal(processAlive(pid), false, `sleep (pid ${pid}) still runs after the abort`);
  });
});
