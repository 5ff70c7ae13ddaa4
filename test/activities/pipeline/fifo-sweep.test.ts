import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { sweepAbandoned, withFifos } from '../../../src/activities/pipeline/fifo.ts';
import { tempDir } from '../../support/temp-dir.ts';

const HOUR = 60 * 60 * 1000;

describe('FIFO folders of killed workers', () => {
  const tmp = tempDir('lifeboat-fifo-sweep-');
  const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  after(() => sleeper.kill('SIGKILL'));
  // A pid that was a process's and is no longer anyone's.
  const deadPid = spawnSync('true').pid;

  const folder = (pid: number, ageMs: number) => {
    const dir = path.join(tmp, `lifeboat-pipe-${pid}-x${ageMs}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'age'), '');
    const t = new Date(Date.now() - ageMs);
    fs.utimesSync(dir, t, t);
    return dir;
  };

  it('removes a dead process’s folder an hour old, and nothing of a live process or a recent one', () => {
    const abandoned = folder(deadPid, 2 * HOUR);
    const recent = folder(deadPid, 60_000);
    const live = folder(sleeper.pid!, 2 * HOUR);
    const other = path.join(tmp, 'lifeboat-age-keep');
    fs.mkdirSync(other);
    assert.deepEqual(sweepAbandoned(tmp, Date.now()), [abandoned]);
    assert.equal(fs.existsSync(abandoned), false);
    for (const kept of [recent, live, other]) assert.ok(fs.existsSync(kept), kept);
  });

  it('names its own folders with its pid and removes them when done', async () => {
    let seen = '';
    await withFifos(['a', 'b'], (fifos) => {
      seen = path.dirname(fifos.a);
      assert.ok(fs.statSync(fifos.b).isFIFO());
      return Promise.resolve();
    });
    assert.match(path.basename(seen), new RegExp(`^lifeboat-pipe-${process.pid}-`));
    assert.equal(fs.existsSync(seen), false);
  });
});
