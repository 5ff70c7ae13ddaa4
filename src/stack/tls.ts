// TLS for the local stack: a private CA and one server certificate for 127.0.0.1 / localhost,
// made once with the `openssl` binary and kept under the state folder. Clients of the stack
// (the S3 SDK, the CLI, tests) trust the CA file; nothing trusts the system store for loopback.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { StackLayout } from './layout.ts';
import { isAlive } from './processes.ts';

const run = promisify(execFile);

const CA_DAYS = 3650;
const SERVER_DAYS = 3650;
/** Regenerate the server certificate when it expires within this many seconds (30 days). */
const RENEW_BEFORE_S = 30 * 24 * 3600;
const SERVER_SAN = 'IP:127.0.0.1,DNS:localhost';

export interface TlsResult {
  /** True when this call wrote a new CA or server certificate. */
  created: boolean;
  caCert: string;
  serverCert: string;
  serverKey: string;
}

/**
 * Makes sure the stack's CA (ca.pem, ca-key.pem; 10 years) and a server certificate signed by it
 * for IP:127.0.0.1 and DNS:localhost (server.pem, server-key.pem) exist and fit together.
 * Idempotent and safe to call from several processes at once (a lock file serialises writers).
 * Private keys are mode 0600.
 */
export async function ensureTls(layout: StackLayout): Promise<TlsResult> {
  const t = layout.tls;
  const result = (created: boolean): TlsResult => ({
    created,
    caCert: t.caCert,
    serverCert: t.serverCert,
    serverKey: t.serverKey,
  });
  if (await tlsValid(layout)) return result(false);
  fs.mkdirSync(t.dir, { recursive: true });
  return withLockFile(path.join(t.dir, '.lock'), async () => {
    // Another process may have finished while we waited for the lock.
    if (await tlsValid(layout)) return result(false);
    if (!(await caValid(layout))) {
      await makeCa(layout);
      fs.rmSync(t.serverCert, { force: true });
    }
    await makeServerCert(layout);
    if (!(await tlsValid(layout)))
      throw new Error(`TLS material in ${t.dir} is still not valid after generating it`);
    return result(true);
  });
}

/** True when the CA and server certificate exist, match their keys, and the server cert verifies. */
export async function tlsValid(layout: StackLayout): Promise<boolean> {
  const t = layout.tls;
  if (![t.caCert, t.caKey, t.serverCert, t.serverKey].every((f) => fs.existsSync(f))) return false;
  if (!(await caValid(layout))) return false;
  try {
    await run('openssl', ['verify', '-CAfile', t.caCert, t.serverCert]);
    await run('openssl', ['x509', '-in', t.serverCert, '-noout', '-checkend', String(RENEW_BEFORE_S)]);
    const text = (await run('openssl', ['x509', '-in', t.serverCert, '-noout', '-ext', 'subjectAltName']))
      .stdout;
    if (!text.includes('IP Address:127.0.0.1') || !text.includes('DNS:localhost')) return false;
    return (await publicKeyOf('cert', t.serverCert)) === (await publicKeyOf('key', t.serverKey));
  } catch {
    return false;
  }
}

async function caValid(layout: StackLayout): Promise<boolean> {
  const t = layout.tls;
  if (!fs.existsSync(t.caCert) || !fs.existsSync(t.caKey)) return false;
  try {
    await run('openssl', ['x509', '-in', t.caCert, '-noout', '-checkend', String(RENEW_BEFORE_S)]);
    return (await publicKeyOf('cert', t.caCert)) === (await publicKeyOf('key', t.caKey));
  } catch {
    return false;
  }
}

async function publicKeyOf(kind: 'cert' | 'key', file: string): Promise<string> {
  const args =
    kind === 'cert' ? ['x509', '-in', file, '-noout', '-pubkey'] : ['pkey', '-in', file, '-pubout'];
  return (await run('openssl', args)).stdout.trim();
}

async function makeCa(layout: StackLayout): Promise<void> {
  const t = layout.tls;
  const tmpKey = `${t.caKey}.tmp`;
  const tmpCert = `${t.caCert}.tmp`;
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    tmpKey,
    '-out',
    tmpCert,
    '-days',
    String(CA_DAYS),
    '-subj',
    '/O=Lifeboat/CN=Lifeboat local stack CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE,pathlen:0',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  fs.chmodSync(tmpKey, 0o600);
  fs.renameSync(tmpKey, t.caKey);
  fs.renameSync(tmpCert, t.caCert);
}

async function makeServerCert(layout: StackLayout): Promise<void> {
  const t = layout.tls;
  const tmpKey = `${t.serverKey}.tmp`;
  const tmpCert = `${t.serverCert}.tmp`;
  const csr = path.join(t.dir, 'server.csr.tmp');
  const ext = path.join(t.dir, 'server.ext.tmp');
  fs.writeFileSync(
    ext,
    [
      `subjectAltName=${SERVER_SAN}`,
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  );
  try {
    await run('openssl', [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      tmpKey,
      '-out',
      csr,
      '-subj',
      '/O=Lifeboat/CN=localhost',
    ]);
    fs.chmodSync(tmpKey, 0o600);
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      t.caCert,
      '-CAkey',
      t.caKey,
      '-set_serial',
      `0x${Date.now().toString(16)}${process.pid.toString(16)}`,
      '-days',
      String(SERVER_DAYS),
      '-extfile',
      ext,
      '-out',
      tmpCert,
    ]);
    fs.renameSync(tmpKey, t.serverKey);
    fs.renameSync(tmpCert, t.serverCert);
  } finally {
    for (const f of [csr, ext, tmpKey, tmpCert]) fs.rmSync(f, { force: true });
  }
}

// Two small helpers the stack's servers share (they would sit well in processes.ts).

/** A stack binary from layout.toolsBin or PATH; a clear error when neither has it. */
export function findBinary(layout: StackLayout, name: string, from: string): string {
  const dirs = [layout.toolsBin, ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean)];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      /* not here */
    }
  }
  throw new Error(`${name} (${from}) not found in ${layout.toolsBin} or on PATH; run scripts/bootstrap.sh`);
}

/**
 * Runs `fn` holding an exclusive lock file (its content is the owner's pid; a lock left by a dead
 * process is taken over). Serialises stack operations run by several processes at once, such as
 * two `start…Server` calls racing for the same ports.
 */
export async function withLockFile<T>(file: string, fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const release = await acquireLockFile(file, timeoutMs);
  try {
    return await fn();
  } finally {
    release();
  }
}

async function acquireLockFile(file: string, timeoutMs: number): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = fs.openSync(file, 'wx', 0o600);
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      return () => fs.rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner: number;
    let ageMs: number;
    try {
      owner = Number(fs.readFileSync(file, 'utf8').trim() || '0');
      ageMs = Date.now() - fs.statSync(file).mtimeMs;
    } catch {
      continue; // released meanwhile
    }
    // Stale: its owner died, or it never got a pid written (a crash right after creating it).
    if ((owner > 0 && !isAlive(owner)) || (owner === 0 && ageMs > 5_000)) {
      fs.rmSync(file, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${file} (held by pid ${owner})`);
    await sleep(100);
  }
}
