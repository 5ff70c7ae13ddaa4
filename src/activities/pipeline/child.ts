// Spawned tools of a pipeline (pg_basebackup, zstd): their exit status is part of the result, and
// the tail of their stderr is what an operator needs when one fails.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

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
  /**
   * Ended by the pipeline itself, not by a fault of its own: killed by allOrKill, or by SIGPIPE
   * when the step after it had already gone. Another step failed first.
   */
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

export type ToolOptions = SpawnOptions & {
  onStderr?: (text: string) => void;
  isProgress?: (line: string) => boolean;
};

export function startTool(name: string, command: string, args: string[], options: ToolOptions = {}): Tool {
  const { onStderr, isProgress, ...spawnOptions } = options;
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...spawnOptions });
  let tail = '';
  // A line may come in two reads: the part after its last line break waits for the rest.
  let partial = '';
  const keep = (lines: string[]) => {
    const kept = lines.filter((l) => l.trim() && !isProgress?.(l)).join('\n');
    if (kept) tail = `${tail}\n${kept}`.slice(-4000);
  };
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    onStderr?.(text);
    const lines = `${partial}${text}`.split(/[\r\n]/);
    partial = lines.pop()!;
    keep(lines);
  });
  child.stderr?.on('end', () => {
    keep([partial]);
    partial = '';
  });
  const stderrTail = () => `${tail}\n${partial}`.trim().split('\n').slice(-8).join('\n');
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
      // A wrapper (setpriv, runuser) that could not execute the tool: 127, as a shell says it.
      else if (code === 127 && /failed to execute|No such file or directory/.test(stderrTail()))
        reject(
          new ToolError(
            name,
            `${args.includes('--') ? args[args.indexOf('--') + 1] : command} not found`,
            stderrTail(),
            true,
          ),
        );
      else
        reject(
          new ToolError(
            name,
            `${name} ${signal ? `was killed by ${signal}` : `exited with ${code}`}${stderrTail() ? `: ${stderrTail()}` : ''}`,
            stderrTail(),
            false,
            killed || signal === 'SIGPIPE',
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
 * Waits for every step of a pipeline of tools (given in pipe order). On the first failure, or as
 * soon as `signal` is aborted (a step may be waiting in a read only the tools' end interrupts),
 * kills the tools, lets the other steps settle, and throws: the abort's reason, else the cause
 * (firstFailure).
 */
export async function allOrKill(
  steps: Promise<unknown>[],
  tools: Tool[],
  signal?: AbortSignal,
): Promise<void> {
  const killAll = () => tools.forEach((t) => t.kill());
  signal?.addEventListener('abort', killAll, { once: true });
  try {
    if (signal?.aborted) killAll();
    await Promise.all(steps);
  } catch (err) {
    killAll();
    await Promise.allSettled(steps);
    throw signal?.aborted ? signal.reason : await firstFailure(tools, err);
  } finally {
    signal?.removeEventListener('abort', killAll);
  }
}

/**
 * The cause of a broken chain of tools: the first, in pipe order, that failed by itself. When one
 * fails, the others fail on a short input or a closed pipe too, and Node may hear of any of them
 * first; `fallback` when none did (a step that is not a tool failed).
 */
async function firstFailure(tools: Tool[], fallback: unknown): Promise<unknown> {
  const outcomes = await Promise.allSettled(tools.map((t) => t.done));
  for (const outcome of outcomes)
    if (outcome.status === 'rejected' && !(outcome.reason instanceof ToolError && outcome.reason.killed))
      return outcome.reason;
  return fallback;
}

/**
 * A command that is killed when the thread that starts it ends (util-linux `setpriv --pdeathsig`),
 * for a chain of tools with no Node process in it: a restore's curl → age → bsdtar would
 * otherwise go on writing into the data directory after its worker died, while a retry on another
 * worker wipes it and starts over. Where setpriv is missing, the command as it is.
 */
export function dieWithParent(command: string, args: string[]): [string, string[]] {
  return setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', command, ...args]] : [command, args];
}

const setpriv = (process.env.PATH ?? '')
  .split(path.delimiter)
  .map((dir) => path.join(dir, 'setpriv'))
  .find((file) => {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
