// Spawned tools of a pipeline (pg_basebackup, zstd): their exit status is part of the result, and
// the tail of their stderr is what an operator needs when one fails.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

export interface Tool {
  name: string;
  child: ChildProcess;
  /** Resolves when the tool exits 0; rejects with its stderr's last lines otherwise. */
  done: Promise<void>;
  /** The last lines of stderr (progress lines excluded). */
  stderrTail(): string;
  /** Ends the tool at once (idempotent). */
  kill(): void;
}

export class ToolError extends Error {
  readonly tool: string;
  readonly stderr: string;
  readonly notFound: boolean;
  /** Ended by the pipeline's own kill (another step failed first), not by a fault of its own. */
  readonly killed: boolean;
  constructor(tool: string, message: string, stderr: string, notFound = false, killed = false) {
    super(message);
    this.name = 'ToolError';
    this.tool = tool;
    this.stderr = stderr;
    this.notFound = notFound;
    this.killed = killed;
  }
}

export function startTool(
  name: string,
  command: string,
  args: string[],
  options: SpawnOptions & { onStderr?: (text: string) => void; isProgress?: (line: string) => boolean } = {},
): Tool {
  const { onStderr, isProgress, ...spawnOptions } = options;
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...spawnOptions });
  let tail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    onStderr?.(text);
    const kept = text
      .split(/[\r\n]/)
      .filter((l) => l.trim() && !isProgress?.(l))
      .join('\n');
    if (kept) tail = `${tail}\n${kept}`.slice(-4000);
  });
  const stderrTail = () => tail.trim().split('\n').slice(-8).join('\n');
  let killed = false;
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new ToolError(
          name,
          err.code === 'ENOENT' ? `${command} not found` : `${name} could not start: ${err.message}`,
          '',
          err.code === 'ENOENT',
        ),
      ),
    );
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new ToolError(
            name,
            `${name} ${signal ? `was killed by ${signal}` : `exited with ${code}`}${stderrTail() ? `: ${stderrTail()}` : ''}`,
            stderrTail(),
            false,
            killed,
          ),
        );
    });
  });
  // The exit status is always awaited by the pipeline; this only keeps an early failure from
  // being reported as unhandled before that.
  done.catch(() => undefined);
  return {
    name,
    child,
    done,
    stderrTail,
    kill() {
      if (child.exitCode === null && child.signalCode === null) {
        killed = true;
        child.kill('SIGKILL');
      }
    },
  };
}

/**
 * Whether a process runs. One of another user (a restored server or its prefetcher run as the
 * PostgreSQL OS user) answers EPERM, and is alive too.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Waits for every step of a pipeline of tools. On the first failure, kills the tools, lets the
 * other steps settle, and throws: the abort's reason when `signal` was aborted, else the failure.
 */
export async function allOrKill(
  steps: Promise<unknown>[],
  tools: Tool[],
  signal?: AbortSignal,
): Promise<void> {
  try {
    await Promise.all(steps);
  } catch (err) {
    for (const tool of tools) tool.kill();
    await Promise.allSettled(steps);
    throw signal?.aborted ? signal.reason : err;
  }
}
