// The stock tools a worker's pipelines run, found on PATH unless the environment names them:
// zstd and age for backups; age, curl and bsdtar (libarchive's tar, which reads zstd itself) for
// restores.
import type { Environment } from '../ports/environment.ts';

export interface Binaries {
  zstd: string;
  age: string;
  curl: string;
  bsdtar: string;
}

/** Each tool's variable naming another binary, and the Debian package that installs it. */
export const TOOLS: Record<keyof Binaries, { env: string; debian: string }> = {
  zstd: { env: 'LIFEBOAT_ZSTD', debian: 'zstd' },
  age: { env: 'LIFEBOAT_AGE', debian: 'age' },
  curl: { env: 'LIFEBOAT_CURL', debian: 'curl' },
  bsdtar: { env: 'LIFEBOAT_BSDTAR', debian: 'libarchive-tools' },
};

export function binaries(env: Environment): Binaries {
  const found = (tool: keyof Binaries) => env[TOOLS[tool].env] ?? tool;
  return { zstd: found('zstd'), age: found('age'), curl: found('curl'), bsdtar: found('bsdtar') };
}

/** What to do about missing tools: the packages to install, or the variables to set. */
export function installHint(tools: (keyof Binaries)[]): string {
  return `Debian: apt-get install ${tools.map((t) => TOOLS[t].debian).join(' ')}, or ${tools.map((t) => TOOLS[t].env).join(' / ')} naming ${tools.length === 1 ? 'it' : 'them'}`;
}
