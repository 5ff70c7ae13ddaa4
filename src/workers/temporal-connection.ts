// How workers and the CLI reach Temporal: the standard TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE /
// TEMPORAL_API_KEY / TEMPORAL_TLS_* variables or a profile of the Temporal config file
// (TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE), so one binary runs unchanged against the dev server,
// a self-hosted cluster or Temporal Cloud.
import { loadClientConnectConfig } from '@temporalio/envconfig';

export interface TemporalTarget {
  address: string;
  namespace: string;
  connectionOptions: ReturnType<typeof loadClientConnectConfig>['connectionOptions'];
}

export function temporalTarget(env: NodeJS.ProcessEnv = process.env): TemporalTarget {
  const config = loadClientConnectConfig({ overrideEnvVars: env as Record<string, string> });
  const address = config.connectionOptions.address ?? 'localhost:7233';
  return {
    address,
    namespace: config.namespace ?? 'default',
    connectionOptions: { ...config.connectionOptions, address },
  };
}

/**
 * The Web UI page of a workflow: LIFEBOAT_WEB_UI when set; for a dev server on loopback, its UI
 * port, which `temporal server start-dev` puts 1000 above the frontend port.
 */
export function webUiLink(
  target: TemporalTarget,
  workflowId: string,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const local = /^(127\.0\.0\.1|localhost):(\d+)$/.exec(target.address);
  const base = env.LIFEBOAT_WEB_UI ?? (local ? `http://${local[1]}:${Number(local[2]) + 1000}` : undefined);
  const path = `/namespaces/${encodeURIComponent(target.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return base ? `${base.replace(/\/$/, '')}${path}` : `(Web UI) ${path}`;
}
