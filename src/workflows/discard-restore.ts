// Discarding a restored instance, the step after an operator is done with a restore: on the
// region's worker that holds it, stop its server and delete its data directory and sidecar. The
// activity refuses a directory whose marker does not name this restore, so a mistyped id or
// directory never removes someone else's data.
import { proxyActivities, setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import { regionTaskQueue } from '../domain/plan.ts';
import {
  discardRestoreInputSchema,
  type DiscardRestoreInput,
  type DiscardRestoreResult,
} from '../domain/restore.ts';
import { searchAttributeKeys } from '../domain/search-attributes.ts';
import { parseWorkflowInput } from './input.ts';
import { apiCall } from './point-in-time-restore.ts';
import type { Activities } from '../activities/index.ts';

const { describePlan } = proxyActivities<Activities>(apiCall);

export async function discardRestoreWorkflow(rawInput: DiscardRestoreInput): Promise<DiscardRestoreResult> {
  const input = parseWorkflowInput(discardRestoreInputSchema, rawInput ?? {}, 'discardRestoreWorkflow');
  upsertSearchAttributes([
    { key: searchAttributeKeys.kind, value: 'restore-discard' },
    { key: searchAttributeKeys.region, value: input.region },
    ...(input.requestedBy ? [{ key: searchAttributeKeys.requestedBy, value: input.requestedBy }] : []),
  ]);
  setCurrentDetails(`**discarding** ${input.restoreId} on the ${input.region} worker`);
  const plan = await describePlan();
  // Waiting for a worker of that region is what a discard can do: its files are only there.
  const { discardRestoredInstance } = proxyActivities<Activities>({
    ...apiCall,
    startToCloseTimeout: '5m',
    taskQueue: regionTaskQueue(plan, input.region),
  });
  const { done, detail } = await discardRestoredInstance({
    restoreId: input.restoreId,
    ...(input.dataDir ? { dataDir: input.dataDir } : {}),
  });
  upsertSearchAttributes([{ key: searchAttributeKeys.outcome, value: done ? 'discarded' : 'left-behind' }]);
  setCurrentDetails(`**${done ? 'discarded' : 'left behind'}** — ${detail}`);
  return { restoreId: input.restoreId, region: input.region, done, detail };
}
