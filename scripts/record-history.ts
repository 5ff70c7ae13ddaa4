// Records the history of a finished workflow into test/replay/<name>.history.json, after
// checking that none of the local stack's secrets appear in it.
// Usage: node scripts/record-history.ts <workflow-id> <name>
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { defaultStateDir, stackLayout } from '../src/stack/layout.ts';
import { loadSecrets } from '../src/stack/secrets.ts';
import { leakedSecrets } from '../test/support/history.ts';

const [workflowId, name] = process.argv.slice(2);
if (!workflowId || !name) {
  process.stderr.write('usage: record-history.ts <workflow-id> <name>\n');
  process.exit(2);
}
const layout = stackLayout(defaultStateDir());
const connection = await Connection.connect({
  address: process.env.TEMPORAL_ADDRESS ?? layout.temporal.address,
});
try {
  const history = await new Client({ connection }).workflow.getHandle(workflowId).fetchHistory();
  const leaked = leakedSecrets(history, loadSecrets(layout));
  if (leaked.length) throw new Error(`history of ${workflowId} contains secrets: ${leaked.join(', ')}`);
  const file = path.join(import.meta.dirname, '..', 'test', 'replay', `${name}.history.json`);
  fs.writeFileSync(file, `${historyToJSON(history)}\n`);
  process.stdout.write(`recorded ${history.events?.length ?? 0} events into ${file}\n`);
} finally {
  await connection.close();
}
