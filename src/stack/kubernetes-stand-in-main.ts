// Process entry of the Kubernetes API stand-in (a stand-in for tests and the local stack, not a
// Kubernetes implementation; see kubernetes-stand-in.ts):
//
//   node src/stack/kubernetes-stand-in-main.ts --port 16443 --state-file F --token-file T
//
// Listens on 127.0.0.1 only. SIGTERM or SIGINT closes the server; the state file is rewritten
// after every change, so nothing is lost on stop.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { createKubernetesStandIn } from './kubernetes-stand-in.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    'state-file': { type: 'string' },
    'token-file': { type: 'string' },
    'readiness-delay-ms': { type: 'string' },
    quiet: { type: 'boolean', default: false },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0 || !values['state-file'] || !values['token-file']) {
  console.error(
    'usage: kubernetes-stand-in-main.ts --port N --state-file F --token-file T [--readiness-delay-ms MS]',
  );
  process.exit(2);
}
const token = fs.readFileSync(values['token-file'], 'utf8').trim();
if (token === '') {
  console.error(`${values['token-file']} is empty`);
  process.exit(2);
}

const stamp = () => new Date().toISOString();
const server = createKubernetesStandIn({
  stateFile: values['state-file'],
  token,
  readinessDelayMs:
    values['readiness-delay-ms'] === undefined ? undefined : Number(values['readiness-delay-ms']),
  log: values.quiet ? undefined : (line) => console.log(`${stamp()} ${line}`),
});
server.on('error', (err) => {
  console.error(`${stamp()} Kubernetes API stand-in: ${err.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  console.log(
    `${stamp()} Kubernetes API stand-in (not a Kubernetes implementation) listening on http://127.0.0.1:${port}`,
  );
});

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`${stamp()} ${signal}: closing`);
  // Requests in flight finish (each one writes the state file before it answers); idle
  // keep-alive connections are closed now, busy ones after a grace period.
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => server.closeAllConnections(), 2000).unref();
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
