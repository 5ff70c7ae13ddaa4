// The optional last step of a point-in-time restore: an approval by the database's failover
// approvers (the same gate as a failover: Update with validator, Signal alias, never the
// requester), then the plan's DNS records of the database pointed at the restore's region with
// the failover's own DNS activities. Refused or unanswered, nothing outside the new instance
// changes: the records are read back and reported as they were left.
import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import { describeApprovals } from '../domain/approval.ts';
import { formatDuration, parseDuration } from '../domain/duration.ts';
import { NON_RETRYABLE_ERROR_TYPES } from '../domain/errors.ts';
import { regionTaskQueue, type Plan } from '../domain/plan.ts';
import type { RestoreCutover, RestoreOptions } from '../domain/restore.ts';
import { ApprovalGate } from './approval.ts';
import type { Activities } from '../activities/index.ts';

/** Route53 calls and the wait for INSYNC, as the failover makes them. */
const dnsCall = {
  startToCloseTimeout: '5m',
  heartbeatTimeout: '30s',
  retry: {
    initialInterval: '1s',
    backoffCoefficient: 2,
    maximumInterval: '30s',
    maximumAttempts: 10,
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
} as const;

const { notify } = proxyActivities<Activities>({
  startToCloseTimeout: '1m',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
});

/**
 * The gate of a restore that asked for a cutover, opened for queries at the start so an early
 * decision is refused with a reason. `cutoverProblems` has checked that the policy exists.
 */
export function cutoverGate(plan: Plan, input: RestoreOptions): ApprovalGate {
  const policy = plan.failover.policies.find((p) => p.database === input.database)!;
  return new ApprovalGate(input.requestedBy ?? '', {
    approvers: policy.approval.approvers,
    minApprovals: policy.approval.minApprovals,
  });
}

export async function cutOverRestore(opts: {
  plan: Plan;
  input: RestoreOptions;
  gate: ApprovalGate;
  restoreId: string;
  /** What the approvers are asked to accept: the point reached and where the instance runs. */
  request: string;
  enter: (phase: 'awaiting-approval' | 'cutting-over', details: string) => void;
}): Promise<RestoreCutover> {
  const { plan, input, gate, restoreId } = opts;
  const policy = plan.failover.policies.find((p) => p.database === input.database)!.approval;
  const policyTimeout = parseDuration(policy.timeout)!;
  const timeoutMs = Math.min(
    policyTimeout,
    input.approvalTimeout ? parseDuration(input.approvalTimeout)! : policyTimeout,
  );
  const dns = proxyActivities<Activities>({ ...dnsCall, taskQueue: regionTaskQueue(plan, input.region) });
  const waitStarted = Date.now();
  opts.enter(
    'awaiting-approval',
    `${opts.request} Needs ${policy.minApprovals} of ${policy.approvers.join(', ')} within ${formatDuration(timeoutMs)}: lifeboat approve ${restoreId} --as <name>`,
  );
  const outcome = await gate.decide({
    request: opts.request,
    timeoutMs,
    onOpen: async () => {
      await Promise.all(
        plan.notifications.webhooks
          .filter((w) => w.events.includes('approval-needed'))
          .map((w) =>
            notify({
              webhook: w.name,
              message: {
                event: 'approval-needed',
                workflowId: restoreId,
                title: `Approval needed: cutover of ${input.database} to the restore in ${input.region}`,
                text: `${opts.request}\nApprove: lifeboat approve ${restoreId} --as <name>`,
                fields: { approvers: policy.approvers.join(', '), minApprovals: String(policy.minApprovals) },
              },
            }).catch(() => undefined),
          ),
      );
    },
  });
  const waitedMs = Date.now() - waitStarted;
  const decisions = gate.state.decisions;
  if (outcome !== 'approved') {
    const records = await dns.readDatabaseRecords({ database: input.database });
    const why =
      outcome === 'rejected'
        ? describeApprovals(gate.state)
        : `not approved within ${formatDuration(timeoutMs)} (${describeApprovals(gate.state)})`;
    return {
      outcome: outcome === 'rejected' ? 'rejected' : 'not-approved',
      detail: `${why}; DNS unchanged, the restored instance keeps running`,
      decisions,
      records: records.map(({ name, type, values }) => ({ name, type, values })),
      waitedMs,
    };
  }

  opts.enter('cutting-over', `pointing ${input.database}'s DNS records at ${input.region}`);
  const dnsStarted = Date.now();
  const change = await dns.pointDatabaseRecords({
    database: input.database,
    region: input.region,
    comment: `lifeboat ${restoreId}: cutover to a point-in-time restore`.slice(0, 256),
  });
  await dns.waitDnsChangeInSync({ changeId: change.changeId });
  const readBack = await dns.readDatabaseRecords({ database: input.database });
  const wrong = change.records.filter((want) => {
    const got = readBack.find((r) => r.name === want.name && r.type === want.type);
    return JSON.stringify([...(got?.values ?? [])].sort()) !== JSON.stringify([...want.values].sort());
  });
  if (wrong.length)
    throw ApplicationFailure.create({
      type: 'DnsNotSwitched',
      nonRetryable: true,
      message: `cutover approved but DNS reads back differently for ${wrong.map((r) => r.name).join(', ')}; the restored instance keeps running — check the zone and point the records by hand`,
    });
  return {
    outcome: 'approved',
    detail: `${describeApprovals(gate.state)}; DNS points at ${input.region} (INSYNC)`,
    decisions,
    records: readBack.map(({ name, type, values }) => ({ name, type, values })),
    waitedMs,
    dnsMs: Date.now() - dnsStarted,
  };
}
