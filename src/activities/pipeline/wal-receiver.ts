// pg_receivewal as a child of the worker: it streams WAL from the primary over the replication
// protocol into the spool. It runs without a slot of its own: the archiver holds the primary's WAL
// with a slot that it advances only once segments are in storage (see activities/wal.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface ReceiverExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines pg_receivewal wrote to stderr. */
  stderr: string;
}

export interface WalReceiver {
  readonly pid: number | undefined;
  readonly startedAt: number;
  /** Resolves when pg_receivewal has exited. */
  readonly exited: Promise<ReceiverExit>;
  running(): boolean;
  /** The last lines of stderr so far. */
  stderrTail(): string;
  /** SIGINT (pg_receivewal's clean stop), then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<ReceiverExit>;
}

export interface ReceiverOptions {
  binary: string;
  spool: string;
  /** libpq connection string (no password). */
  conninfo: string;
  password?: string;
  log?: (line: string) => void;
}

const PID_FILE = 'pg_receivewal.pid';
// util-linux's setpriv sets the parent-death signal: if the worker is SIGKILLed, its
// pg_receivewal gets SIGINT instead of streaming on as an orphan next to the next attempt's.
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));

export function startWalReceiver(opts: ReceiverOptions): WalReceiver {
  stopOrphan(opts.spool);
  const args = ['-D', opts.spool, '-d', opts.conninfo, '--no-loop', '--verbose'];
  const [command, argv] = SETPRIV
    ? [SETPRIV, ['--pdeathsig', 'SIGINT', '--', opts.binary, ...args]]
    : [opts.binary, args];
  // The child gets only what it needs: never the worker's secrets.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    LANG: 'C',
    PGCONNECT_TIMEOUT: '10',
    ...(opts.password ? { PGPASSWORD: opts.password } : {}),
  };
  const child: ChildProcess = spawn(command, argv, { stdio: ['ignore', 'ignore', 'pipe'], env });
  let tail = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    tail = `${tail}${text}`.slice(-4000);
    for (const line of text.split('\n')) if (line.trim()) opts.log?.(line.trim());
  });
  const pidFile = path.join(opts.spool, PID_FILE);
  if (child.pid) fs.writeFileSync(pidFile, `${child.pid}\n`);
  const exited = new Promise<ReceiverExit>((resolve) => {
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      fs.rmSync(pidFile, { force: true });
      resolve({ code, signal, stderr: stderrTail() });
    };
    child.once('error', (err) => {
      tail += `\n${opts.binary}: ${err.message}`;
      done(null, null);
    });
    child.once('close', done);
  });
  const stderrTail = () => tail.trim().split('\n').slice(-6).join('\n');
  const running = () => child.exitCode === null && child.signalCode === null && child.pid !== undefined;
  return {
    pid: child.pid,
    startedAt: Date.now(),
    exited,
    running,
    stderrTail,
    async stop(graceMs = 5000) {
      if (running()) {
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
}

/**
 * A pg_receivewal left behind on this spool by a worker that died before it could stop it (and
 * where setpriv is missing): two writers on one spool would corrupt it.
 */
function stopOrphan(spool: string): void {
  const pidFile = path.join(spool, PID_FILE);
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  } catch {
    return;
  }
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmdline.includes('pg_receivewal') && cmdline.includes(spool)) process.kill(pid, 'SIGKILL');
  } catch {
    // Not running any more (or not ours to see): nothing to stop.
  }
  fs.rmSync(pidFile, { force: true });
}

/** A libpq connection string value, quoted when it needs to be. */
export function conninfoValue(value: string): string {
  return /^[A-Za-z0-9_./:-]+$/.test(value) ? value : `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * Whether pg_receivewal refused to resume from its directory's newest file because that file is
 * on no timeline of the server's history: a timeline the server does not know, one whose history
 * file it no longer has, a branch it left before that position, or a position past its end. It
 * happens when a spool outlives the primary's history (failovers, a rebuilt or restored primary)
 * and, left alone, repeats at every restart.
 */
export function offServerHistory(stderr: string): boolean {
  return /starting timeline \d+ is not present in the server|"TIMELINE_HISTORY"|is not in this server's history|is ahead of the WAL flush position/.test(
    stderr,
  );
}
