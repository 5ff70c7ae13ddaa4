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

export function binaries(env: Environment): Binaries {
  return {
    zstd: env.LIFEBOAT_ZSTD ?? 'zstd',
    age: env.LIFEBOAT_AGE ?? 'age',
    curl: env.LIFEBOAT_CURL ?? 'curl',
    bsdtar: env.LIFEBOAT_BSDTAR ?? 'bsdtar',
  };
}
