// FIFOs between a pipeline's tools, in a private folder: a FIFO holds no bytes at rest, so a
// stream through one is never staged on disk.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Runs `use` with FIFOs of the given names made in a fresh private folder, removed afterwards. */
export async function withFifos<N extends string, T>(
  names: readonly N[],
  use: (fifos: Record<N, string>) => Promise<T>,
): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-pipe-'));
  try {
    const fifos = Object.fromEntries(names.map((n) => [n, path.join(dir, n)])) as Record<N, string>;
    execFileSync('mkfifo', ['-m', '600', ...Object.values<string>(fifos)]);
    return await use(fifos);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
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
