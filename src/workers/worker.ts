// The composition root: reads the plan and the environment, builds real clients, and runs the
// workers of one region — `lifeboat` (workflows and region-agnostic activities) and
// `lifeboat-<region>` (activities that must run where that region's systems are).
import {
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  makeTelemetryFilterString,
  type LogLevel,
} from '@temporalio/worker';
import { createActivities } from '../activities/index.ts';
import { installBackupMetrics } from '../activities/backup-metrics.ts';
import { dataConverterFromEnv } from '../codec/aes-gcm-codec.ts';
import { regionTaskQueue, SHARED_TASK_QUEUE, type Plan } from '../domain/plan.ts';
import type { ObjectStore } from '../activities/ports/object-store.ts';
import { TypedErrorInterceptor } from './error-interceptor.ts';
import { buildActivityDeps } from './clients.ts';
import { temporalTarget } from './temporal-connection.ts';
import { workflowBundle } from './workflow-bundle.ts';

export interface WorkerOptions {
  plan: Plan;
  region: string;
  /** Prometheus endpoint, e.g. 127.0.0.1:9464; none when undefined. */
  metricsAddress?: string;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

export async function runWorker(opts: WorkerOptions): Promise<void> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((line) => process.stderr.write(`${line}\n`));
  const target = temporalTarget(env);
  // The Runtime is process-wide and must be installed before the first connection.
  Runtime.install({
    // SDK chatter (e.g. "no Nexus services registered") only at LIFEBOAT_LOG_LEVEL=INFO or lower.
    logger: new WorkerLogger(logLevel(env.LIFEBOAT_LOG_LEVEL)),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} },
      ...(opts.metricsAddress ? { metrics: { prometheus: { bindAddress: opts.metricsAddress } } } : {}),
    },
    shutdownSignals: ['SIGINT', 'SIGTERM'],
  });
  const connection = await NativeConnection.connect(target.connectionOptions);
  try {
    // The SDK cancels running activities only after shutdownGraceTime; the endless ones (the WAL
    // archiver's streaming run) watch this instead and return as soon as shutdown begins.
    const shuttingDown = new AbortController();
    for (const signal of ['SIGINT', 'SIGTERM'] as const)
      process.once(signal, () => shuttingDown.abort(new Error(`worker shutting down (${signal})`)));
    const deps = { ...buildActivityDeps(opts.plan, env), shutdown: shuttingDown.signal };
    const activities = createActivities(deps);
    const stopBackupMetrics = opts.metricsAddress
      ? startBackupMetrics(opts.plan, deps.stores.primary, log)
      : () => {};
    const interceptors = { activity: [() => ({ inbound: new TypedErrorInterceptor() })] };
    const common = {
      dataConverter: dataConverterFromEnv(env),
      connection,
      namespace: target.namespace,
      activities,
      interceptors,
      // In-flight activities get this long to finish (or heartbeat) after SIGINT/SIGTERM.
      shutdownGraceTime: '20s',
      // Heartbeat details are the live progress `lifeboat status` shows (bytes of a backup):
      // send them at least every 5 s rather than the SDK's 0.8 × heartbeat timeout.
      maxHeartbeatThrottleInterval: '5s',
      // A workflow whose worker died waits this long on that worker's sticky queue before any
      // worker may take it (SDK default 10 s): a failover must not stall 10 s on a lost worker.
      // The cost, a cache miss and a replay when a live worker is slower than this, is small.
      stickyQueueScheduleToStartTimeout: '3s',
    };
    const bundle = await workflowBundle(log);
    const regionQueue = regionTaskQueue(opts.plan, opts.region);
    const workers = await Promise.all([
      Worker.create({ ...common, taskQueue: SHARED_TASK_QUEUE, workflowBundle: bundle }),
      Worker.create({ ...common, taskQueue: regionQueue }),
    ]);
    log(
      `lifeboat worker: region ${opts.region}, polling ${SHARED_TASK_QUEUE} and ${regionQueue} on ${target.address} (namespace ${target.namespace})` +
        (opts.metricsAddress ? `, metrics on http://${opts.metricsAddress}/metrics` : ''),
    );
    await Promise.all(workers.map((w) => w.run())).finally(stopBackupMetrics);
    log('lifeboat worker: stopped cleanly');
  } finally {
    await connection.close();
  }
}

/**
 * Backup metrics (src/activities/backup-metrics.ts) on the runtime's meter: seeded from the
 * catalog at start and every few minutes (so a restarted worker reports the newest verified
 * backup, and one taken by another worker shows up; each refresh reads only new manifests), ages
 * refreshed every few seconds.
 */
function startBackupMetrics(
  plan: Plan,
  store: ObjectStore | undefined,
  log: (line: string) => void,
): () => void {
  const metrics = installBackupMetrics(Runtime.instance().metricMeter);
  const readCatalog = () => {
    if (!store) return;
    metrics
      .readCatalog(store, Object.keys(plan.databases))
      .catch((err: unknown) =>
        log(`lifeboat worker: backup metrics: reading the catalog failed: ${String(err)}`),
      );
  };
  readCatalog();
  const timers = [setInterval(readCatalog, 5 * 60_000), setInterval(() => metrics.refreshAges(), 5_000)];
  for (const t of timers) t.unref();
  return () => timers.forEach(clearInterval);
}

const LOG_LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];
/**
 * The SDK's logger, less one warning: the region queue's worker polls activities only, by design,
 * and the SDK said so as a WARN at every start (still shown at LIFEBOAT_LOG_LEVEL=INFO or lower).
 */
class WorkerLogger extends DefaultLogger {
  override log(level: LogLevel, message: string, meta?: Record<string, unknown>): void {
    if (level === 'WARN' && this.level === 'WARN' && message.startsWith('No workflows registered')) return;
    super.log(level, message, meta);
  }
}

function logLevel(value: string | undefined): LogLevel {
  const upper = (value ?? 'WARN').toUpperCase() as LogLevel;
  return LOG_LEVELS.includes(upper) ? upper : 'WARN';
}
