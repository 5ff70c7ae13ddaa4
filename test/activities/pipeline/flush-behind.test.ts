// Flushing each file tar has finished, as it names them; never a directory, a symlink or a name
// outside the data directory.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { flushBehind } from '../../../src/activities/pipeline/flush-behind.ts';

describe('flush behind tar', () => {
  let dir: string;
  let outside: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-flush-'));
    outside = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-flush-outside-'));
    fs.mkdirSync(path.join(dir, 'base/1'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'base/1/1259'), Buffer.alloc(65536, 1));
    fs.writeFileSync(path.join(dir, 'PG_VERSION'), '15\n');
    fs.writeFileSync(path.join(outside, 'secret'), 'x');
    fs.symlinkSync(path.join(outside, 'secret'), path.join(dir, 'link'));
  });

  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(outside, { recursive: true, force: true });
  });

  it('flushes the files tar finished and skips what is not a file of the directory', async () => {
    const flush = flushBehind(dir);
    // As `bsdtar -v` names them: a directory, two files, a symlink, a name that climbs out, a file
    // that vanished.
    for (const member of ['base/', 'base/1/1259', 'link', '../escaped', 'gone', 'PG_VERSION'])
      flush.finished(member);
    // 1259 and PG_VERSION flushed; the symlink (O_NOFOLLOW) and the vanished file skipped; the
    // directory and the name outside never tried.
    assert.deepEqual(await flush.finish(), { flushed: 2, skipped: 2 });
  });

  it('nothing named, nothing flushed', async () => {
    assert.deepEqual(await flushBehind(dir).finish(), { flushed: 0, skipped: 0 });
  });
});
