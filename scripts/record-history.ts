// Records the history of a finished workflow into test/replay/<name>.history.json (the JSON of
// `temporal workflow show --output json`), after checking that none of the local stack's secrets
// appear in it. Usage: node scripts/record-history.ts <workflow-id> <name> [run-id]
// (without a run id, the latest run of the workflow id)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { layoutFromEnv } from '../src/stack/layout.ts';
import { loadSecrets } from '../src/stack/secrets.ts';
import { leakedSecrets } from '../test/support/history.ts';

const [workflowId, name, runId] = process.argv.slice(2);
if (!workflowId || !name) {
  process.stderr.write('usage: record-history.ts <workflow-id> <name> [run-id]\n');
  process.exit(2);
}
const layout = layoutFromEnv();
const json = execFileSync(
  path.join(layout.toolsBin, 'temporal'),
  [
    'workflow',
    'show',
    '--workflow-id',
    workflowId,
    ...(runId ? ['--run-id', runId] : []),
    '--output',
    'json',
    '--address',
    process.env.TEMPORAL_ADDRESS ?? layout.temporal.address,
  ],
  { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
);
const history = historyFromJSON(JSON.parse(json));
const leaked = leakedSecrets(history, loadSecrets(layout));
if (leaked.length) throw new Error(`history of ${workflowId} contains secrets: ${leaked.join(', ')}`);
const file = path.join(import.meta.dirname, '..', 'test', 'replay', `${name}.history.json`);
fs.writeFileSync(file, json.endsWith('\n') ? json : `${json}\n`);
process.stdout.write(`recorded ${history.events?.length ?? 0} events of ${workflowId} into ${file}\n`);
