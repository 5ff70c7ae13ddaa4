// `lifeboat restore discard <restore id> [--region <r>] [--data-dir D] [--json]`: removes a restored
// instance once the operator is done with it — its server stopped, its data directory and
// sidecar deleted — by discardRestoreWorkflow on the worker of the region that holds it. The
// region and the directory come from the restore's own run unless given (a run Temporal has
// forgotten). A restore still running is refused: cancel it first. Exit 0 when nothing is left.
import os from 'node:os';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { SHARED_TASK_QUEUE } from '../domain/plan.ts';
import { workflowIds } from '../domain/naming.ts';
import {
  discardRestoreInputSchema,
  type DiscardRestoreInput,
  type DiscardRestoreResult,
  type RestoreResult,
} from '../domain/restore.ts';
import { searchAttributeKeys } from '../domain/search-attributes.ts';
import type { discardRestoreWorkflow } from '../workflows/discard-restore.ts';
import { parseCommandArgs } from './args.ts';
import { EXIT, printError, printJson } from './output.ts';
import { loadPlanInto } from './plan-args.ts';
import { connectClient } from './temporal-client.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs(
    'restore discard',
    argv,
    {
      file: { type: 'string', short: 'f' },
      json: { type: 'boolean' },
      region: { type: 'string' },
      'data-dir': { type: 'string' },
    },
    true,
  );
  if (!args) return EXIT.badInput;
  const problems: string[] = [];
  const plan = loadPlanInto(problems, args.file as string | undefined);
  const [restoreId, ...extra] = args._;
  if (!restoreId) problems.push('<restore id>: required (the id `lifeboat restore` printed)');
  else
    for (const issue of discardRestoreInputSchema.shape.restoreId.safeParse(restoreId).error?.issues ?? [])
      problems.push(`restoreId: ${issue.message}`);
  if (extra.length) problems.push(`unexpected arguments: ${extra.join(' ')}`);
  const region = args.region as string | undefined;
  if (region && plan && !plan.regions[region])
    problems.push(
      `--region: "${region}" is not in the plan; declared: ${Object.keys(plan.regions).join(', ')}`,
    );
  if (problems.length || !plan || !restoreId) {
    for (const p of problems) printError(p);
    return EXIT.badInput;
  }
  const { client, close } = await connectClient();
  try {
    // Where the restore put its instance, from its own run.
    let known: { region?: string; dataDir?: string } = {};
    try {
      const handle = client.workflow.getHandle(restoreId);
      const described = await handle.describe();
      if (described.status.name === 'RUNNING') {
        printError(
          `restore ${restoreId} is still running; cancel it first (temporal workflow cancel --workflow-id ${restoreId})`,
        );
        return EXIT.failed;
      }
      known.region = described.typedSearchAttributes.get(searchAttributeKeys.region);
      if (described.status.name === 'COMPLETED') {
        const result = (await handle.result()) as RestoreResult;
        known = { region: result.region, dataDir: result.instance.dataDir };
      }
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    const where = region ?? known.region;
    if (!where) {
      printError(`--region: Temporal has no run ${restoreId}; say which region's worker holds it`);
      return EXIT.badInput;
    }
    const dataDir = (args['data-dir'] as string | undefined) ?? known.dataDir;
    const input: DiscardRestoreInput = {
      restoreId,
      region: where,
      ...(dataDir ? { dataDir } : {}),
      requestedBy: process.env.LIFEBOAT_USER ?? os.userInfo().username,
    };
    let result: DiscardRestoreResult;
    try {
      result = await client.workflow.execute<typeof discardRestoreWorkflow>('discardRestoreWorkflow', {
        taskQueue: SHARED_TASK_QUEUE,
        workflowId: workflowIds.discardRestore(restoreId),
        args: [input],
        staticSummary: `discard restore ${restoreId} in ${input.region}`,
      });
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        // The activity's own words (under the workflow's and the activity task's failures).
        let cause: Error = err;
        while (cause.cause instanceof Error) cause = cause.cause;
        printError(cause.message);
        return EXIT.failed;
      }
      throw err;
    }
    if (args.json) printJson(result);
    else
      process.stdout.write(
        `${result.done ? 'discarded' : 'NOT fully discarded'} ${restoreId}: ${result.detail}\n`,
      );
    return result.done ? EXIT.ok : EXIT.failed;
  } finally {
    await close();
  }
}
