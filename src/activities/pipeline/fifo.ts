// FIFOs between a pipeline's tools, in a private folder: a FIFO holds no bytes at rest, so a
// stream through one is never staged on disk.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const PREFIX = 'lifeboat-pipe-';
// A folder is another process's only once that process is gone; the age guards against a pid
// that is alive in another pid namespace sharing this /tmp.
const ABANDONED_AFTER_MS = 60 * 60 * 1000;
let swept = false;

/** Runs `use` with FIFOs of the given names made in a fresh private folder, removed afterwards. */
export async function withFifos<N extends string, T>(
  names: readonly N[],
  use: (fifos: Record<N, string>) => Promise<T>,
): Promise<T> {
  if (!swept) {
    swept = true;
    sweepAbandoned(os.tmpdir(), Date.now());
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}${process.pid}-`));
  try {
    const fifos = Object.fromEntries(names.map((n) => [n, path.join(dir, n)])) as Record<N, string>;
    execFileSync('mkfifo', ['-m', '600', ...Object.values<string>(fifos)]);
    return await use(fifos);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Removes the FIFO folders of workers that were killed mid-stream (SIGKILL, OOM, a lost node),
 * which had no chance to remove their own: empty, but they pile up in /tmp.
 */
export function sweepAbandoned(tmp: string, now: number): string[] {
  const removed: string[] = [];
  for (const name of safeList(tmp)) {
    const pid = Number(/^lifeboat-pipe-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid || alive(pid)) continue;
    const dir = path.join(tmp, name);
    try {
      if (now - fs.statSync(dir).mtimeMs < ABANDONED_AFTER_MS) continue;
      fs.rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed;
}

function safeList(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((n) => n.startsWith(PREFIX));
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Both ends of a FIFO, for a child's output that this process reads with blocking reads into
 * buffers of its own (`fs.read`): the stdout `spawn` gives is a non-blocking socket, read only as
 * a stream that allocates a Buffer per read. Opened in an order where no open waits: a
 * non-blocking reader first, so that the writer's open returns at once, then the blocking
 * reader while a writer exists. Give `writeFd` to the child and close it here once spawned: the
 * reader then sees the end when the child exits.
 */
export function openFifoForChild(fifo: string): { writeFd: number; readFd: number } {
  const probe = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const writeFd = fs.openSync(fifo, fs.constants.O_WRONLY);
    const readFd = fs.openSync(fifo, fs.constants.O_RDONLY);
    return { writeFd, readFd };
  } finally {
    fs.closeSync(probe);
  }
}
