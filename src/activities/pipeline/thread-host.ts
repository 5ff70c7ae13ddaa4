// The entry of a pipeline thread: runs one task module's `run` and posts its progress, then its
// result or its error. See in-thread.ts for why pipelines run here.
import { parentPort, workerData } from 'node:worker_threads';
import { deserializeError, serializeError, type ThreadMessage } from './thread-messages.ts';
import type { ThreadTask } from './in-thread.ts';

const port = parentPort!;
const { module, options } = workerData as { module: string; options: unknown };
const post = (message: ThreadMessage) => port.postMessage(message);
const abort = new AbortController();
port.on('message', (m: ThreadMessage) => {
  if (m.t === 'abort') abort.abort(deserializeError(m.error));
});

const REPORT_EVERY_MS = 250;
let current: (() => unknown) | undefined;
const report = () => {
  if (current) post({ t: 'progress', value: current() });
};
const beat = setInterval(report, REPORT_EVERY_MS);

try {
  const task = (await import(module)) as { run: ThreadTask<unknown, unknown, unknown> };
  const value = await task.run({ options, signal: abort.signal, progressFrom: (read) => (current = read) });
  report();
  post({ t: 'result', value });
} catch (err) {
  report();
  post({ t: 'error', error: serializeError(err) });
} finally {
  clearInterval(beat);
  port.close();
}
