// A private folder for one test file's scratch files, removed when the test process exits
// (node --test runs each file in a process of its own), so no run leaves its folders in /tmp.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
