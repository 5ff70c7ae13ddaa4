// Pre-flight: the plan against reality. Every external system is asked from the region it lives
// in, all at once; what is off is reported with where, and the plan's webhooks hear about it.
import {
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  postgresFindings,
  summarizeReport,
  type DoctorInput,
  type DoctorReport,
  type Finding,
} from '../domain/doctor.ts';
import { NON_RETRYABLE_ERROR_TYPES } from '../domain/errors.ts';
import { regionTaskQueue, type Plan } from '../domain/plan.ts';
import { searchAttributeKeys } from '../domain/search-attributes.ts';
import { doctorInputSchema } from '../domain/workflow-inputs.ts';
import { parseWorkflowInput } from './input.ts';
import type { Activities } from '../activities/index.ts';

/** Short API calls: each check bounds its own connection time; a lost worker is noticed at 20 s. */
const apiCall = {
  startToCloseTimeout: '20s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumAttempts: 5,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
} as const;

const { describePlan, checkStorage, checkDns, notify } = proxyActivities<Activities>(apiCall);

function regionActivities(plan: Plan, region: string) {
  return proxyActivities<Activities>({ ...apiCall, taskQueue: regionTaskQueue(plan, region) });
}

export async function doctorWorkflow(rawInput: DoctorInput = {}): Promise<DoctorReport> {
  const input = parseWorkflowInput(doctorInputSchema, rawInput ?? {}, 'doctorWorkflow');
  const started = Date.now();
  upsertSearchAttributes([
    { key: searchAttributeKeys.kind, value: 'doctor' },
    ...(input.requestedBy ? [{ key: searchAttributeKeys.requestedBy, value: input.requestedBy }] : []),
  ]);
  setCurrentDetails('reading the plan');
  const plan = await describePlan();
  const databases = input.databases ?? Object.keys(plan.databases);

  setCurrentDetails(
    `checking ${databases.length} database(s), storage, DNS and ${Object.keys(plan.regions).length} cluster(s)`,
  );
  // The stock tools of each region's worker that the doctor asks anyway (its databases' regions
  // and its clusters'). Histories recorded before this check never ask.
  const toolRegions = patched('doctor-worker-tools')
    ? [
        ...new Set([
          ...databases.flatMap((db) => {
            const d = plan.databases[db];
            return d ? [d.primaryRegion, ...d.replicas.map((r) => r.region)] : [];
          }),
          ...Object.entries(plan.regions)
            .filter(([, r]) => r.kubernetes)
            .map(([region]) => region),
        ]),
      ].sort()
    : [];
  const [pgFindings, storageFindings, dnsFindings, clusterFindings, toolFindings] = await Promise.all([
    Promise.all(databases.map((db) => checkDatabase(plan, db))).then((f) => f.flat()),
    Promise.all(
      (['primary', 'secondary'] as const)
        .filter((location) => plan.storage[location])
        .map((location) => checkStorage({ location, probeId: workflowInfo().runId })),
    ),
    plan.dns ? checkDns() : Promise.resolve([] as Finding[]),
    Promise.all(
      Object.entries(plan.regions)
        .filter(([, r]) => r.kubernetes)
        .map(([region]) => regionActivities(plan, region).checkCluster({ region })),
    ),
    Promise.all(toolRegions.map((region) => regionActivities(plan, region).checkWorkerTools({ region }))),
  ]);

  const findings = [...pgFindings, ...storageFindings, ...dnsFindings, ...clusterFindings, ...toolFindings];
  const report: DoctorReport = {
    plan: plan.name,
    ok: findings.every((f) => f.ok),
    findings,
    durationMs: Date.now() - started,
  };
  const summary = summarizeReport(report);
  upsertSearchAttributes([{ key: searchAttributeKeys.outcome, value: report.ok ? 'healthy' : 'problems' }]);
  setCurrentDetails(summary);
  if (!report.ok) {
    log.warn(summary);
    await notifyAll(plan, {
      event: 'failure',
      title: 'Lifeboat doctor found problems',
      text: summary,
      workflowId: workflowInfo().workflowId,
    });
  }
  return report;
}

async function checkDatabase(plan: Plan, database: string): Promise<Finding[]> {
  const db = plan.databases[database];
  if (!db) {
    return [
      {
        system: 'postgres',
        target: database,
        ok: false,
        detail: `database "${database}" is not in the plan`,
      },
    ];
  }
  const regions = [db.primaryRegion, ...db.replicas.map((r) => r.region)];
  const facts = await Promise.all(
    regions.map(
      async (region) =>
        [region, await regionActivities(plan, region).inspectPostgres({ region, database })] as const,
    ),
  );
  return postgresFindings(plan, database, Object.fromEntries(facts));
}

async function notifyAll(plan: Plan, message: Parameters<Activities['notify']>[0]['message']): Promise<void> {
  const hooks = plan.notifications.webhooks.filter((w) => w.events.includes(message.event));
  // One activity per webhook so that a retry never re-sends to one that already took it.
  await Promise.all(hooks.map((w) => notify({ webhook: w.name, message })));
}
