// What a restored server's restore_command needs, in the sidecar beside its data directory
// (`<data dir>.lifeboat/`): what `lifeboat wal-fetch` reads (storage locations, the few secrets),
// the shell script PostgreSQL runs for each WAL file, and the restore's one background prefetcher.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Plan } from '../domain/plan.ts';
import type { PrefetchUntil } from '../domain/wal-prefetch.ts';
import { PREFETCH } from '../domain/wal-prefetch.ts';
import { processAlive } from './pipeline/child.ts';
import type { Environment } from './ports/environment.ts';

export interface WalFetchSetup {
  sidecar: string;
  /** The restore_command setting. */
  restoreCommand: string;
}

const LIFEBOAT = path.resolve(import.meta.dirname, '..', '..', 'bin', 'lifeboat');

/** Writes (again: idempotent) the sidecar's wal-fetch config, secrets and restore command script. */
export function writeWalFetchSidecar(opts: {
  plan: Plan;
  env: Environment;
  sidecar: string;
  database: string;
  walSegmentSize: number;
}): WalFetchSetup {
  const { plan, env, sidecar } = opts;
  fs.mkdirSync(path.join(sidecar, 'prefetch'), { recursive: true, mode: 0o700 });
  const location = { ...plan.storage.primary };
  if (location.caFile) {
    fs.copyFileSync(location.caFile, path.join(sidecar, 'storage-ca.pem'));
    location.caFile = path.join(sidecar, 'storage-ca.pem');
  }
  const secondary = plan.storage.secondary && { ...plan.storage.secondary };
  if (secondary?.caFile) {
    fs.copyFileSync(secondary.caFile, path.join(sidecar, 'storage-secondary-ca.pem'));
    secondary.caFile = path.join(sidecar, 'storage-secondary-ca.pem');
  }
  const identityEnv = plan.storage.encryption.identityEnv;
  fs.writeFileSync(
    path.join(sidecar, 'wal-fetch.json'),
    JSON.stringify({
      database: opts.database,
      storage: location,
      ...(secondary ? { secondary } : {}),
      identityEnv,
      walSegmentSize: opts.walSegmentSize,
    }),
  );
  // Only the secrets wal-fetch must have, readable by the PostgreSQL OS user only.
  const names = [
    identityEnv,
    location.accessKeyIdEnv,
    location.secretAccessKeyEnv,
    secondary?.accessKeyIdEnv,
    secondary?.secretAccessKeyEnv,
  ].filter((n): n is string => !!n);
  fs.writeFileSync(
    path.join(sidecar, 'wal-fetch.env'),
    names.map((n) => `${n}=${env[n] ?? ''}`).join('\n') + '\n',
    { mode: 0o600 },
  );
  const script = path.join(sidecar, 'restore-command.sh');
  fs.writeFileSync(script, restoreCommandScript(sidecar), { mode: 0o755 });
  return { sidecar, restoreCommand: `bash ${script} %f %p` };
}

/**
 * Starts the background prefetcher (`lifeboat wal-fetch --prefetch-from`) from `firstSegment`,
 * detached: it outlives a lost worker, and a second start while one runs is a no-op (its lock).
 */
export function startWalPrefetcher(
  sidecar: string,
  firstSegment: string,
  asUser: (command: string, args: string[]) => [string, string[]],
  /** Where replay will stop, when the target tells: the prefetcher fetches no further ahead. */
  until: PrefetchUntil = {},
): void {
  // The server's start asks again after the download did: a second Node, started only to find
  // the lock taken, cost half a second of CPU just as PostgreSQL started.
  if (prefetcherRunning(path.join(sidecar, 'prefetch'))) return;
  fs.rmSync(path.join(sidecar, 'prefetch', PREFETCH.stopped), { force: true });
  const [cmd, args] = asUser(LIFEBOAT, [
    'wal-fetch',
    '--config',
    path.join(sidecar, 'wal-fetch.json'),
    '--env-file',
    path.join(sidecar, 'wal-fetch.env'),
    ...(until.segment ? ['--until-segment', until.segment] : []),
    ...(until.time ? ['--until-time', until.time.toISOString()] : []),
    '--prefetch-from',
    firstSegment,
    path.join(sidecar, 'prefetch'),
  ]);
  spawn(cmd, args, { detached: true, stdio: 'ignore' }).unref();
}

/** Whether a live prefetcher holds the prefetch folder's lock (its pid). */
export function prefetcherRunning(prefetchDir: string): boolean {
  try {
    return processAlive(Number(fs.readFileSync(path.join(prefetchDir, PREFETCH.lock), 'utf8')));
  } catch {
    return false;
  }
}

/**
 * PostgreSQL runs this for every WAL file it wants. Starting Node costs more than a segment's
 * download on a busy machine, so the script answers from the prefetcher's folder whenever it can:
 * a segment the prefetcher holds is renamed into place; one it is on its way to (same timeline,
 * not behind it, not at or past the archive's end) is waited for; a history file is copied, or
 * declared absent once the prefetcher has listed them all; any other segment (the archive's end,
 * where the newest partial upload is served, or one replay reads again) is asked of the running
 * prefetcher and kept for a re-read. With no prefetcher running, or a storage error, it goes to
 * `lifeboat wal-fetch` (which also retries storage).
 */
function restoreCommandScript(sidecar: string): string {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const d = path.join(sidecar, 'prefetch');
  const P = PREFETCH;
  return `#!/usr/bin/env bash
# restore_command of a server restored by Lifeboat: restore-command.sh %f %p (written by the worker)
f=$1 p=$2 d=${q(d)}
running() { local pid; pid=$(cat "$d/${P.lock}" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; }
# A prefetcher just started has not taken its lock yet (Node takes a moment): wait up to 2 s.
for ((i = 0; i < 100; i++)); do [[ -f $d/${P.lock} || -f $d/${P.stopped} ]] && break; sleep 0.02; done
if [[ $f =~ ^[0-9A-F]{8}\\.history$ ]]; then
  for ((i = 0; i < 500; i++)); do
    if [[ -f $d/$f ]]; then cp "$d/$f" "$p" && exit 0; fi
    running || break
    [[ -f $d/${P.histories} ]] && exit 1
    sleep 0.02
  done
elif [[ $f =~ ^[0-9A-F]{24}$ ]]; then
  if [[ -f $d/$f${P.served} ]]; then cp "$d/$f${P.served}" "$p" && exit 0; fi
  ask=
  for ((i = 0; i < 1500; i++)); do
    if [[ -f $d/$f ]]; then mv -f "$d/$f" "$p" && exit 0; fi
    running || break
    # Waited for only while the prefetcher is on its way to it; else it is asked for it.
    ask=1
    end=$(cat "$d/${P.end}" 2>/dev/null) && [[ \${end:0:8} == "\${f:0:8}" && ! $f < $end ]] && break
    next=$(cat "$d/${P.next}" 2>/dev/null) || break
    [[ \${next:0:8} == "\${f:0:8}" && ! $f < $next ]] || break
    ask=
    sleep 0.02
  done
  # The prefetcher announces its next segment only after writing the one before: a .next read
  # past $f means $f was written meanwhile (after the loop looked), or never will be.
  if [[ -n $ask && -f $d/$f ]]; then mv -f "$d/$f" "$p" && exit 0; fi
  if [[ -n $ask ]]; then
    # The archive's end (the newest partial upload), or a segment read again: the running
    # prefetcher fetches it as wal-fetch would, without a Node of its own.
    : >"$d/$f${P.want}"
    for ((i = 0; i < 1500; i++)); do
      if [[ -f $d/$f${P.served} ]]; then cp "$d/$f${P.served}" "$p" && exit 0; fi
      if [[ -f $d/$f${P.absent} ]]; then rm -f "$d/$f${P.absent}" && exit 1; fi
      if [[ -f $d/$f${P.error} ]]; then rm -f "$d/$f${P.error}" && break; fi
      running || break
      sleep 0.02
    done
  fi
fi
exec ${q(LIFEBOAT)} wal-fetch --config ${q(path.join(sidecar, 'wal-fetch.json'))} --env-file ${q(path.join(sidecar, 'wal-fetch.env'))} "$f" "$p"
`;
}
