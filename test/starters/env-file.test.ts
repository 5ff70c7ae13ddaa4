// The CLI's own --env-file option reaches Lifeboat: Node must not read it as its own option
// (Node 24 does, even after the script name, and exits 9 with "not found").
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../support/workers.ts';

describe('lifeboat --env-file', () => {
  it('a missing env file is bad input: exit 2 with Lifeboat saying which file', async () => {
    const r = await runCli([
      'backups',
      'list',
      '--database',
      'orders',
      '-f',
      'examples/lifeboat.yaml',
      '--env-file',
      '/nonexistent/lifeboat.env',
    ]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--env-file: \/nonexistent\/lifeboat\.env does not exist/);
  });
});
