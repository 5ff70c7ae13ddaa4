// Runs a byte pipeline in a thread of its own. Why: every chunk read from a pipe is memory outside
// V8's heap, and each 64 MB of it makes V8 mark the whole heap of the isolate that read it. The
// worker's main heap is ~70 MB (Temporal, the AWS SDK, the Kubernetes client), so the 1.5 GB tar
// of a base backup passing through it cost ~10 s of CPU in garbage collection on the benchmark;
// in a thread whose heap is a few MB the same bytes cost almost nothing.
import type { Readable, Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import {
  ChannelReadable,
  ChannelWritable,
  deserializeError,
  serializeError,
  type ChannelMessage,
} from './thread-channel.ts';

/** What a task module exports as `run`; options and result must survive structured cloning. */
export type ThreadTask<O, R, P> = (ctx: {
  options: O;
  /** Bytes the main thread writes to ThreadRun.input. */
  input: Readable;
  /** Bytes for ThreadRun.output; the task ends it (its result is posted after). */
  output: Writable;
  /** Aborted by ThreadRun.abort, with its reason. */
  signal: AbortSignal;
  report: (progress: P) => void;
}) => Promise<R>;

export interface ThreadRun<R, P> {
  input: Writable;
  output: Readable;
  /** The task's result, or its error as the typed error it was. */
  result: Promise<R>;
  /** The last progress the task reported. */
  progress(): P | undefined;
  /** Aborts the task (it kills its tools and fails with `reason`); the thread then ends. */
  abort(reason: unknown): void;
}

const HOST = new URL('./thread-host.ts', import.meta.url);

export function runInThread<O, R, P = unknown>(task: URL, options: O): ThreadRun<R, P> {
  const worker = new Worker(HOST, { workerData: { module: task.href, options } });
  const post = (message: ChannelMessage) => worker.postMessage(message);
  const output = new ChannelReadable(() => post({ t: 'ack', stream: 'out' }));
  const input = new ChannelWritable(post, 'in');
  // A failure reaches the caller through `result` (and any pipeline using the streams): a stream
  // nobody pipes (the input of a task that reads none) must not crash the worker with it.
  input.on('error', () => undefined);
  output.on('error', () => undefined);
  let progress: P | undefined;
  let settled = false;
  const result = new Promise<R>((resolve, reject) => {
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      input.destroy(err);
      output.destroy(err);
      reject(err);
    };
    worker.on('message', (m: ChannelMessage) => {
      if (m.t === 'chunk') output.receive(m.bytes);
      else if (m.t === 'end') output.push(null);
      else if (m.t === 'ack') input.acked();
      else if (m.t === 'progress') progress = m.value as P;
      else if (m.t === 'result') {
        settled = true;
        resolve(m.value as R);
      } else if (m.t === 'error') fail(deserializeError(m.error));
    });
    worker.once('error', fail);
    worker.once('exit', (code) =>
      fail(new Error(`the pipeline thread ended (exit ${code}) without a result`)),
    );
  });
  result.catch(() => undefined);
  return {
    input,
    output,
    result,
    progress: () => progress,
    abort: (reason) => {
      if (!settled) post({ t: 'abort', error: serializeError(reason) });
    },
  };
}
