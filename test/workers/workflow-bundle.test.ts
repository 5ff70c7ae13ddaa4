import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { codeKey, workflowBundle } from '../../src/workers/workflow-bundle.ts';

describe('workflow bundle cache', () => {
  it('the key changes with any source file: its content, its name, a new file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-key-'));
    try {
      fs.mkdirSync(path.join(dir, 'workflows'));
      fs.writeFileSync(path.join(dir, 'workflows', 'a.ts'), 'export const a = 1;\n');
      fs.writeFileSync(path.join(dir, 'lock.json'), '{}');
      const key = () => codeKey(path.join(dir, 'workflows'), [path.join(dir, 'lock.json')]);
      const first = key();
      assert.equal(key(), first, 'same files, same key');
      fs.writeFileSync(path.join(dir, 'workflows', 'a.ts'), 'export const a = 2;\n');
      const edited = key();
      assert.notEqual(edited, first);
      fs.renameSync(path.join(dir, 'workflows', 'a.ts'), path.join(dir, 'workflows', 'b.ts'));
      const renamed = key();
      assert.notEqual(renamed, edited);
      fs.writeFileSync(path.join(dir, 'workflows', 'c.ts'), '');
      assert.notEqual(key(), renamed);
      fs.writeFileSync(path.join(dir, 'lock.json'), '{"x":1}');
      assert.notEqual(key(), renamed);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('builds once, then a start reads the same bundle from the cache; a bundle of older code is removed', async () => {
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-bundle-'));
    try {
      fs.writeFileSync(path.join(cache, 'workflow-bundle-0123.json'), '{}');
      const lines: string[] = [];
      const built = await workflowBundle((l) => lines.push(l), cache);
      assert.equal(lines.filter((l) => /bundled in \d+ ms/.test(l)).length, 1, lines.join('\n'));
      assert.match(built.code, /regionalFailoverWorkflow/);
      const files = fs.readdirSync(cache);
      assert.equal(files.length, 1, files.join(', '));
      assert.notEqual(files[0], 'workflow-bundle-0123.json');
      const again = await workflowBundle((l) => lines.push(l), cache);
      assert.equal(lines.length, 1, `rebuilt: ${lines.join('\n')}`);
      assert.equal(again.code, built.code);
    } finally {
      fs.rmSync(cache, { recursive: true, force: true });
    }
  });
});
