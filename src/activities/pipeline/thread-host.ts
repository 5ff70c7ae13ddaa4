// The entry of a pipeline thread: runs one task module's `run` with the streams of its channel
// and posts its result or its error. See in-thread.ts for why pipelines run here.
import { parentPort, workerData } from 'node:worker_threads';
import {
  ChannelReadable,
  ChannelWritable,
  deserializeError,
  serializeError,
  type ChannelMessage,
} from './thread-channel.ts';
import type { ThreadTask } from './in-thread.ts';

const port = parentPort!;
const { module, options } = workerData as { module: string; options: unknown };
const post = (message: ChannelMessage) => port.postMessage(message);
const input = new ChannelReadable(() => post({ t: 'ack', stream: 'in' }));
const output = new ChannelWritable(post, 'out');
const abort = new AbortController();

port.on('message', (m: ChannelMessage) => {
  if (m.t === 'chunk') input.receive(m.bytes);
  else if (m.t === 'end') input.push(null);
  else if (m.t === 'ack') output.acked();
  else if (m.t === 'abort') abort.abort(deserializeError(m.error));
});

try {
  const task = (await import(module)) as { run: ThreadTask<unknown, unknown, unknown> };
  const value = await task.run({
    options,
    input,
    output,
    signal: abort.signal,
    report: (progress) => post({ t: 'progress', value: progress }),
  });
  post({ t: 'result', value });
} catch (err) {
  post({ t: 'error', error: serializeError(err) });
} finally {
  port.close();
}
