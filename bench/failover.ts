// Failover benchmark on the local stack (detection 3 × 1 s): time from stopping the us-east-1
// primary to a verified us-west-2 primary with DNS switched, minus the time spent waiting for the
// two approvals (a human step), and the orchestration overhead per step from history timestamps:
// for each activity, the gap between the event that made the workflow ready (the previous
// activity's completion or a timer firing) and the next activity being scheduled.
// Usage: LIFEBOAT_STATE=… node bench/failover.ts [runs]
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import type { FailoverResult } from '../src/domain/failover.ts';
import { stopPostgres } from '../src/stack/postgres-clusters.ts';
import { restoreStackShape } from '../test/support/failover.ts';
import { ensureStack } from '../test/support/stack.ts';
import { runCli, startWorker } from '../test/support/workers.ts';

const runs = Number(process.argv[2] ?? 3);
const stack = await ensureStack();
await restoreStackShape(stack);
const plan = parse(fs.readFileSync(stack.planFile, 'utf8')) as {
  failover: { policies: { detection: unknown }[] };
};
plan.failover.policies[0]!.detection = { checks: 3, interval: '1s' };
const planFile = path.join(stack.layout.state, 'failover-bench.yaml');
fs.writeFileSync(planFile, stringify(plan));
const connection = await Connection.connect({ address: stack.layout.temporal.address });
const client = new Client({ connection });
const workers = await Promise.all(
  ['us-east-1', 'us-west-2'].map((r) => startWorker(r, stack.layout.secretsFile, planFile, stack.env)),
);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
  Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
try {
  for (let i = 0; i < runs; i++) {
    const killedAt = Date.now();
    await stopPostgres(stack.layout, 'us-east-1');
    const run = await runCli(
      [
        'failover',
        '-f',
        planFile,
        '--database',
        'orders',
        '--to',
        'us-west-2',
        '--reason',
        'bench',
        '--detach',
        '--json',
      ],
      { ...stack.env, LIFEBOAT_USER: 'carol' },
    );
    const handle = client.workflow.getHandle(
      'failover-orders',
      (JSON.parse(run.stdout) as { runId: string }).runId,
    );
    let approvalMs = 0;
    for (;;) {
      const p = await handle.query<{ phase: string }>('progress').catch(() => undefined);
      if (p?.phase === 'awaiting-approval') {
        const t0 = Date.now();
        for (const approver of ['alice', 'bob'])
          await handle.executeUpdate('approve', { args: [{ approver }] });
        approvalMs = Date.now() - t0;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const result = (await handle.result()) as FailoverResult;
    const verifiedAt = Date.parse(result.steps.find((s) => s.name === 'verify')!.endedAt!);
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const gaps: number[] = [];
    // A workflow task completed → activity scheduled is immediate; the overhead is from the event
    // that woke the workflow (activity completed / timer fired / update accepted) to the next schedule.
    let wake: number | undefined;
    for (const e of events) {
      const t = ms(e.eventTime);
      if (e.activityTaskCompletedEventAttributes || e.timerFiredEventAttributes) wake = t;
      if (e.activityTaskScheduledEventAttributes && wake !== undefined) {
        gaps.push(t - wake);
        wake = undefined;
      }
    }
    const rto = verifiedAt - killedAt - approvalMs;
    process.stdout.write(
      `run ${i + 1}: RTO ${rto} ms without the approvals (${approvalMs} ms of approvals); ` +
        `steps ${result.steps.map((s) => `${s.name} ${s.durationMs ?? '-'} ms`).join(', ')}; ` +
        `orchestration overhead per activity: median ${median(gaps).toFixed(1)} ms, max ${Math.max(...gaps).toFixed(1)} ms over ${gaps.length}\n`,
    );
    await restoreStackShape(stack);
  }
} finally {
  await Promise.all(workers.map((w) => w.stop('SIGTERM')));
  await connection.close();
  await restoreStackShape(stack);
}
