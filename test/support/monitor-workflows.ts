// Workflow bundle for the monitor's time-skipping tests: the real monitor, and a stand-in for the
// failover it starts as a child (the real one is tested on the real stack) that records each start
// through an activity, so a test can count failovers.
import { condition, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';
import type { FailoverInput, FailoverResult } from '../../src/domain/failover.ts';

export { regionHealthMonitorWorkflow } from '../../src/workflows/region-health-monitor.ts';

const { recordFailover } = proxyActivities<{
  recordFailover(input: FailoverInput): Promise<{ outcome: FailoverResult['outcome'] }>;
}>({ startToCloseTimeout: '10s' });

/** Lets a stand-in failover that was told to hold finish. */
export const releaseSignal = defineSignal('release');

export async function regionalFailoverWorkflow(
  input: FailoverInput & { hold?: boolean },
): Promise<Partial<FailoverResult>> {
  let released = !input.hold;
  setHandler(releaseSignal, () => void (released = true));
  await condition(() => released);
  const { outcome } = await recordFailover(input);
  return { outcome, message: `stand-in: ${outcome}` };
}
