// DrillReport fixtures for tests: a complete, schema-valid restore drill that each test bends
// with overrides. Parsed through drillReportSchema so a fixture can never drift from the contract.
import { drillReportSchema, tierTargets, type DrillReport } from '../../src/domain/drill-report.ts';

const MIN = 60_000;

/** A passed tier-1 restore drill of `orders` that started at `startedAt` and took 6 minutes. */
export function drillReportFixture(
  overrides: Partial<DrillReport> = {},
  startedAt = '2026-11-20T10:00:00.000Z',
): DrillReport {
  const t0 = Date.parse(overrides.startedAt ?? startedAt);
  const at = (m: number) => new Date(t0 + m * MIN).toISOString();
  const drillId = overrides.drillId ?? `drill-${at(0).replace(/[-:.]/g, '').slice(0, 15)}Z`;
  const database = overrides.database ?? 'orders';
  const base: DrillReport = {
    version: 1,
    drillId,
    workflowId: `drill-${database}-${drillId}`,
    runId: '0b7f0a66-1f4e-4c1f-9a47-5a3f2b1c0d9e',
    webUiUrl: `http://localhost:8233/namespaces/default/workflows/drill-${database}-${drillId}`,
    plan: { name: 'acme-prod', environment: 'production' },
    database,
    region: 'eu-west-1',
    mode: 'restore',
    requestedBy: 'alice@example.com',
    target: 'latest',
    startedAt: at(0),
    endedAt: at(6),
    outcome: 'passed',
    reasons: [],
    tier: 1,
    targets: tierTargets(1),
    measured: {
      rtoMs: 4 * MIN + 30_000,
      rpoMs: 2_000,
      rtoBreakdownMs: { download: 60_000, replay: 120_000, validate: 30_000 },
    },
    verdicts: { rto: 'met', rpo: 'met' },
    phases: [
      { name: 'preparing', startedAt: at(0), endedAt: at(0.5), outcome: 'completed', detail: '' },
      {
        name: 'restoring',
        startedAt: at(0.5),
        endedAt: at(3.5),
        outcome: 'completed',
        detail: 'restore-orders-1',
      },
      { name: 'validating', startedAt: at(3.5), endedAt: at(4.5), outcome: 'completed', detail: '' },
      { name: 'comparing', startedAt: at(4.5), endedAt: at(5), outcome: 'completed', detail: '' },
      { name: 'tearing-down', startedAt: at(5), endedAt: at(5.8), outcome: 'completed', detail: '' },
      { name: 'reporting', startedAt: at(5.8), endedAt: at(6), outcome: 'completed', detail: '' },
    ],
    source: { lastCommitTime: at(0), lsn: '0/3000060' },
    restore: {
      restoreWorkflowId: `restore-${database}-1`,
      backupId: `${database}-full-20261120T090000Z`,
      backupTime: new Date(t0 - 60 * MIN).toISOString(),
      firstSegment: '000000010000000000000002',
      lastSegment: '000000010000000000000003',
      archiveEndLsn: '0/3000060',
      achievedLsn: '0/3000060',
      lastTransactionTime: new Date(t0 - 2_000).toISOString(),
      timeline: 1,
      reachedEndOfArchive: true,
    },
    validation: [
      { name: 'connects', ok: true, detail: 'select 1' },
      { name: 'amcheck', ok: true, detail: '12 indexes' },
    ],
    comparisons: [
      {
        table: 'public.orders',
        sourceRows: 1200,
        restoredRows: 1200,
        sourceChecksum: 'a1b2',
        restoredChecksum: 'a1b2',
        ok: true,
        detail: '',
      },
    ],
    failover: null,
    teardown: { done: true, detail: 'scratch instance removed' },
  };
  return drillReportSchema.parse({ ...base, ...overrides });
}

/** The same drill, failed in `validating` with the remaining phases cancelled. */
export function failedDrillReportFixture(
  overrides: Partial<DrillReport> = {},
  startedAt?: string,
): DrillReport {
  const ok = drillReportFixture(overrides, startedAt);
  const phases = ok.phases.map((p) =>
    p.name === 'validating'
      ? { ...p, outcome: 'failed' as const, detail: 'amcheck: index orders_pkey is corrupt' }
      : p.name === 'comparing'
        ? { ...p, outcome: 'cancelled' as const, endedAt: null }
        : p,
  );
  return drillReportSchema.parse({
    ...ok,
    outcome: 'failed',
    reasons: ['Validation failed: amcheck found index orders_pkey corrupt.'],
    verdicts: { rto: 'unknown', rpo: 'met' },
    measured: { ...ok.measured, rtoMs: null },
    validation: [ok.validation[0], { name: 'amcheck', ok: false, detail: 'index orders_pkey is corrupt' }],
    phases,
    ...overrides,
  });
}
