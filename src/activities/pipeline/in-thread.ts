// Runs a byte pipeline (its tools, its S3 transfer) in a thread of its own. Why: every chunk read
// from a pipe or a socket is memory outside V8's heap, and each ~64 MB of it makes V8 mark the
// whole heap of the isolate that read it. The worker's main heap is ~70 MB (Temporal, the AWS SDK,
// the Kubernetes client), so a base backup's 1.5 GB tar passing through it cost ~10 s of CPU in
// garbage collection on the benchmark; in a thread whose heap is a few MB, almost nothing.
import { Worker } from 'node:worker_threads';
import { deserializeError, serializeError, type ThreadMessage } from './thread-messages.ts';

/** What a task module exports as `run`; options and result must survive structured cloning. */
export type ThreadTask<O, R, P> = (ctx: {
  options: O;
  /** Aborted by ThreadRun.abort, with its reason: the task ends its tools and fails. */
  signal: AbortSignal;
  /**
   * Says where the task's progress is read: the host reads it every quarter second and once more
   * when the task ends, and posts it to ThreadRun.progress.
   */
  progressFrom: (current: () => P) => void;
}) => Promise<R>;

export interface ThreadRun<R, P> {
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
  let progress: P | undefined;
  let settled = false;
  const result = new Promise<R>((resolve, reject) => {
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      outcome();
    };
    worker.on('message', (m: ThreadMessage) => {
      if (m.t === 'progress') progress = m.value as P;
      else if (m.t === 'result') settle(() => resolve(m.value as R));
      else if (m.t === 'error') settle(() => reject(deserializeError(m.error)));
    });
    worker.once('error', (err) => settle(() => reject(err)));
    worker.once('exit', (code) =>
      settle(() => reject(new Error(`the pipeline thread ended (exit ${code}) without a result`))),
    );
  });
  result.catch(() => undefined);
  return {
    result,
    progress: () => progress,
    abort: (reason) => {
      if (!settled) worker.postMessage({ t: 'abort', error: serializeError(reason) } satisfies ThreadMessage);
    },
  };
}
