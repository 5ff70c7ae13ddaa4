// The backup metrics' catalog refresh on the real stack's S3: a refresh reads only the manifests
// it has not read before (counted at the object-store port, which talks to SeaweedFS), a new
// backup's manifest shows in the figures, and a deleted one leaves them. The gauges are read from
// the Temporal runtime's own Prometheus endpoint in this process, as a worker serves them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Runtime } from '@temporalio/worker';
import { BackupMetrics } from '../../src/activities/backup-metrics.ts';
import { createObjectStore, type ObjectStore } from '../../src/activities/ports/object-store.ts';
import { fullBackupManifest, serializeManifest, type BackupManifest } from '../../src/domain/manifest.ts';
import { repository } from '../../src/domain/repository.ts';
import { loadPlan } from '../../src/workers/plan-file.ts';
import { freePort } from '../support/backups.ts';
import { ensureStack } from '../support/stack.ts';

const DB = 'orders';
const HOUR = 3_600_000;
const RECIPIENT = 'age1659k84s526tad7y85cw5fjeczdqtxpj2y5jkkrj8plq63ajlavhqgxsxev';

describe('backup metrics refresh reads only new manifests (real S3)', () => {
  let store: ObjectStore;
  let counted: ObjectStore;
  let gets = 0;
  let metrics: BackupMetrics;
  let metricsUrl: string;
  const now = Date.now();
  const older = manifest(now - 3 * HOUR, 111);
  const previous = manifest(now - 2 * HOUR, 222);
  const latest = manifest(now - HOUR, 333);
  const put = (m: BackupManifest) => store.put(repository.manifest('', DB, m.id), serializeManifest(m));
  /** Objects a refresh fetched (GET) through the port. */
  const refresh = async (): Promise<number> => {
    const before = gets;
    await metrics.readCatalog(counted, [DB]);
    return gets - before;
  };

  before(async () => {
    const stack = await ensureStack();
    const plan = loadPlan(stack.planFile);
    const url = `s3://${stack.layout.s3.bucket}/test-metrics-refresh-${now}`;
    store = createObjectStore({ ...plan.storage.primary, url }, stack.env);
    // The real store, with its reads counted: every call still goes to SeaweedFS.
    counted = new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (prop === 'get' || prop === 'getStream')
          return (...args: unknown[]) => {
            gets++;
            return (v as (...a: unknown[]) => unknown).apply(target, args);
          };
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const address = `127.0.0.1:${await freePort()}`;
    metricsUrl = `http://${address}/metrics`;
    Runtime.install({ telemetryOptions: { metrics: { prometheus: { bindAddress: address } } } });
    metrics = new BackupMetrics(Runtime.instance().metricMeter);
    await put(older);
    await put(previous);
  });

  after(async () => {
    for (const o of await store.list('')) await store.delete(o.key);
  });

  it('a first refresh reads every manifest; the newest sets the figures', async () => {
    assert.equal(await refresh(), 2);
    await figuresOf(metricsUrl, previous);
  });

  it('a second refresh with one new manifest reads exactly that one; the figures are the new backup', async () => {
    await put(latest);
    assert.equal(await refresh(), 1);
    await figuresOf(metricsUrl, latest);
    assert.equal(await refresh(), 0, 'nothing new: nothing read');
  });

  it("a deleted manifest's backup leaves the figures (nothing read)", async () => {
    await store.delete(repository.manifest('', DB, latest.id));
    assert.equal(await refresh(), 0);
    await figuresOf(metricsUrl, previous);
  });
});

/** A verified full backup of orders, consistent at `stopMs`, storing `bytes`. */
function manifest(stopMs: number, bytes: number): BackupManifest {
  const stop = new Date(stopMs).toISOString();
  const id = `${DB}-full-${stop.replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z')}`;
  return fullBackupManifest({
    id,
    database: DB,
    plan: 'acme',
    workflowId: `backup-${DB}`,
    runId: 'run-1',
    recipients: [RECIPIENT],
    base: {
      attempt: 1,
      recipients: [RECIPIENT],
      object: {
        key: `databases/${DB}/backups/${id}/attempt-1/base.tar.zst.age`,
        bytes,
        sha256: 'a'.repeat(64),
      },
      rawBytes: bytes * 10,
      postgres: {
        systemIdentifier: '7711',
        version: '15.18',
        versionNum: 150018,
        timeline: 1,
        walSegmentSize: 16 * 1024 * 1024,
      },
      startLsn: '0/2000028',
      stopLsn: '0/2000100',
      startTime: new Date(stopMs - 1000).toISOString(),
      stopTime: stop,
      label: id,
      postgresManifest: { checksum: 'b'.repeat(64), files: 10 },
      timings: { checkpointMs: 1, streamMs: 1 },
    },
    verification: { method: 'content', verifiedBytes: bytes, files: 10, walSegments: 1, detail: 'ok' },
    startedAt: new Date(stopMs - 2000 - bytes),
    verifiedAt: new Date(stopMs + 1000),
    finishedAt: new Date(stopMs + 1000),
    verifyMs: 1,
  });
}

/** The endpoint shows `m` as the last and newest verified full backup (waits for the exporter). */
async function figuresOf(url: string, m: BackupManifest): Promise<void> {
  const tags = `database="${DB}",kind="full"`;
  const want = {
    lifeboat_backup_stored_bytes: m.sizes.stored,
    lifeboat_backup_duration_seconds: m.timings.totalMs / 1000,
    lifeboat_backup_newest_verified_timestamp_seconds: Date.parse(m.verification.at) / 1000,
  };
  let seen: Record<string, number | undefined> = {};
  for (let i = 0; i < 20; i++) {
    const text = await (await fetch(url)).text();
    seen = Object.fromEntries(
      Object.keys(want).map((name) => {
        const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(tags));
        return [name, line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))];
      }),
    );
    if (Object.entries(want).every(([k, v]) => seen[k] === v)) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.deepEqual(seen, want, `figures of ${m.id}`);
}
