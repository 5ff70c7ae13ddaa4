// `lifeboat --help` from the dispatcher's own table (no module loaded to list them), and the exit
// codes scripts read: 0 when help is asked for, 2 for no command or an unknown one.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../support/workers.ts';

const starters = path.join(import.meta.dirname, '..', '..', 'src', 'starters');

describe('lifeboat --help', () => {
  it('lists every command the CLI dispatches to, each with its summary', async () => {
    const help = await runCli(['--help']);
    assert.equal(help.code, 0, help.stderr);
    // The dispatcher's table: `name: { summary: '…', load: () => import('./<module>.ts') }`.
    const cli = fs.readFileSync(path.join(starters, 'cli.ts'), 'utf8');
    const names = [...cli.matchAll(/^ {2}'?([\w-]+)'?: \{\n {4}summary:/gm)].map((m) => m[1]!);
    assert.equal(names.length, cli.match(/load: \(\) => import\(/g)?.length, 'every entry read');
    assert.ok(names.includes('restore') && names.includes('worker'));
    for (const name of names) {
      assert.match(
        help.stdout,
        new RegExp(`^  ${name} +\\S.{10,}$`, 'm'),
        `${name} is listed with a summary`,
      );
      const module = new RegExp(`'?${name}'?: \\{\\n {4}summary:[^]*?import\\('\\./([\\w-]+)\\.ts'\\)`).exec(
        cli,
      )?.[1];
      assert.ok(
        module && fs.existsSync(path.join(starters, `${module}.ts`)),
        `${name} loads an existing module`,
      );
    }
    assert.match(help.stdout, /^ {2}restore +point-in-time restore: .*`restore discard <id>`/m);
  });

  it('no command and an unknown one are bad input (exit 2)', async () => {
    const none = await runCli([]);
    assert.equal(none.code, 2);
    assert.match(none.stdout, /^usage: lifeboat <command>/);
    const unknown = await runCli(['nonsense']);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stderr, 'lifeboat: unknown command "nonsense"; run lifeboat --help\n');
  });
});
