// Background processes started by the local stack: each one is a named part with a pid file and a
// log file under the state folder, so that `up` can reuse what runs and `down` stops only what
// the stack itself started.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface PartProcess {
  /** e.g. `temporal`, `postgres-us-east-1`, `s3`. */
  name: string;
  runDir: string;
  logDir: string;
}

export interface StartOptions {
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run as this OS user (via runuser) when we are root; PostgreSQL refuses to run as root. */
  asUser?: string;
}

const pidFile = (p: PartProcess) => path.join(p.runDir, `${p.name}.pid`);
export const logFile = (p: PartProcess) => path.join(p.logDir, `${p.name}.log`);

/** The pid of the part if the stack started it and it still runs. */
export function runningPid(p: PartProcess): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile(p), 'utf8').trim());
  } catch {
    return undefined;
  }
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0); it is not running.
  try {
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

/** Starts a detached process whose output goes to the part's log; records its pid. */
export function startDetached(p: PartProcess, opts: StartOptions): number {
  fs.mkdirSync(p.runDir, { recursive: true });
  fs.mkdirSync(p.logDir, { recursive: true });
  const out = fs.openSync(logFile(p), 'a');
  const asOther = opts.asUser && process.getuid?.() === 0;
  const [command, args] = asOther
    ? ['runuser', ['-u', opts.asUser!, '--', opts.command, ...opts.args]]
    : [opts.command, opts.args];
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true,
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  if (child.pid === undefined) throw new Error(`could not start ${p.name}: ${command} did not spawn`);
  child.unref();
  fs.writeFileSync(pidFile(p), `${child.pid}\n`);
  return child.pid;
}

/** Stops a part the stack started: SIGTERM to its process group, then SIGKILL after a grace period. */
export async function stopPart(p: PartProcess, graceMs = 15_000): Promise<boolean> {
  const pid = runningPid(p);
  fs.rmSync(pidFile(p), { force: true });
  if (pid === undefined) return false;
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) signalGroup(pid, 'SIGKILL');
  while (isAlive(pid)) await sleep(50);
  return true;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

/** True when something accepts TCP connections on host:port. */
export function portOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Polls `probe` until it returns true; fails with the part's last log lines. */
export async function waitUntil(
  p: PartProcess,
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new Error(`${p.name}: ${what} not ready after ${timeoutMs / 1000}s\n${tailLog(p)}`);
    await sleep(200);
  }
}

export function tailLog(p: PartProcess, lines = 20): string {
  try {
    return fs.readFileSync(logFile(p), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
