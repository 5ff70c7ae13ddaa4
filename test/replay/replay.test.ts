// Every history recorded from a real run under test/replay/ is replayed against today's
// workflow code: a change that breaks determinism fails here, before it breaks running workflows.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createRequire } from 'node:module';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';

const dir = import.meta.dirname;
const require = createRequire(import.meta.url);
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.history.json'));

describe('replay of recorded histories', () => {
  it('has recorded histories to replay', () => {
    assert.ok(files.length > 0, 'no *.history.json under test/replay');
  });

  it('replays every recorded history without nondeterminism', async () => {
    const histories = files.map((file) => ({
      workflowId: file.replace(/\.history\.json$/, ''),
      history: historyFromJSON(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'))),
    }));
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories(
      {
        workflowsPath: require.resolve('../../src/workflows/index.ts'),
        // The worker's bundle has the audit interceptor: replay must run the same code.
        interceptors: { workflowModules: [require.resolve('../../src/workflows/audit-interceptor.ts')] },
        replayName: 'lifeboat-replay',
      },
      histories,
    )) {
      if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
    }
    assert.deepEqual(failures, []);
  });
});

describe('recorded histories', () => {
  it('hold no age identity and none of the local stack secrets', () => {
    const secretsFile = path.join(dir, '..', '..', '.lifeboat', 'secrets.env');
    const secrets = fs.existsSync(secretsFile)
      ? Object.values(parseEnv(fs.readFileSync(secretsFile, 'utf8'))).filter((v) => v.length >= 6)
      : [];
    for (const file of files) {
      const text = fs.readFileSync(path.join(dir, file), 'utf8');
      const decoded = [...text.matchAll(/"data":\s*"([A-Za-z0-9+/=]+)"/g)].map((m) =>
        Buffer.from(m[1]!, 'base64').toString('utf8'),
      );
      const all = [text, ...decoded].join('\n');
      assert.doesNotMatch(all, /AGE-SECRET-KEY-/, file);
      for (const s of secrets) assert.ok(!all.includes(s), `${file} contains a secret of the local stack`);
    }
  });
});

function parseEnv(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split('\n')
      .map((l) => /^([A-Z0-9_]+)=(.*)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!.replace(/^"|"$/g, '')]),
  );
}
