// Starting a long workflow from the CLI and waiting for it: print its id and Web UI link, return at
// once with --detach, else print each new progress line (from its `progress` query) on stderr
// until it closes. Used by the commands whose workflows report progress the same way.
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError, type Client, type WorkflowStartOptions } from '@temporalio/client';
import type { Workflow, WorkflowResultType } from '@temporalio/common';
import { SHARED_TASK_QUEUE } from '../domain/plan.ts';
import { webUiLink, type TemporalTarget } from '../workers/temporal-connection.ts';
import { printJson } from './output.ts';
import { answered, queryWithin } from './temporal-client.ts';

export interface FollowOptions<W extends Workflow, P> {
  workflowType: string;
  workflowId: string;
  args: Parameters<W>;
  staticSummary: string;
  /** The stderr line once started, before the id: `drill of orders in us-west-2 started`. */
  startedLine: string;
  json: boolean;
  detach: boolean;
  /** One line of progress; an empty line is not printed. */
  render: (progress: P) => string;
}

export type Followed<W extends Workflow> =
  | { outcome: 'detached' }
  | { outcome: 'failed'; error: WorkflowFailedError; link: string }
  | { outcome: 'completed'; result: WorkflowResultType<W>; link: string };

/**
 * Starts the workflow (an id already in use fails: starts are never merged into a running one),
 * and with --detach prints `{workflowId, runId, webUi}` under --json. Progress is printed only
 * without --json, whose stdout is one document.
 */
export async function startAndFollow<W extends Workflow, P>(
  client: Client,
  target: TemporalTarget,
  o: FollowOptions<W, P>,
): Promise<Followed<W>> {
  const handle = await client.workflow.start<W>(o.workflowType, {
    taskQueue: SHARED_TASK_QUEUE,
    workflowId: o.workflowId,
    args: o.args,
    workflowIdConflictPolicy: 'FAIL',
    staticSummary: o.staticSummary,
    // The SDK's conditional type for `args` does not resolve for a generic W; the callers' W is concrete.
  } as unknown as WorkflowStartOptions<W>);
  const link = webUiLink(target, o.workflowId);
  if (!o.json) process.stderr.write(`${o.startedLine}: ${o.workflowId}\n  ${link}\n`);
  if (o.detach) {
    if (o.json) printJson({ workflowId: o.workflowId, runId: handle.firstExecutionRunId, webUi: link });
    return { outcome: 'detached' };
  }
  // Ends the progress loop's wait at once when the workflow closes: the command must not return
  // up to a second after its workflow did.
  const stop = new AbortController();
  const follow = o.json
    ? undefined
    : (async () => {
        let shown = '';
        while (!stop.signal.aborted) {
          // Bounded: a query no worker answers would hold the loop (and the exit) for a minute.
          const p = answered(await queryWithin<P>(client, handle, 'progress'));
          const line = p ? o.render(p) : '';
          if (line && line !== shown) process.stderr.write(`${line}\n`);
          shown = line || shown;
          await sleep(1000, undefined, { signal: stop.signal }).catch(() => undefined);
        }
      })();
  try {
    return { outcome: 'completed', result: await handle.result(), link };
  } catch (err) {
    if (err instanceof WorkflowFailedError) return { outcome: 'failed', error: err, link };
    throw err;
  } finally {
    stop.abort();
    await follow;
  }
}
