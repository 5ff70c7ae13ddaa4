// `lifeboat approve <workflow-id> --as <name> [--reject --reason <text>]`: sends a decision to a
// workflow's approval gate through the `approve` Update, which answers (or refuses, saying why).
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { ApprovalDecisionInput, ApprovalState } from '../domain/approval.ts';
import { describeApprovals } from '../domain/approval.ts';
import { parseCommandArgs } from './args.ts';
import { EXIT, printError, printJson } from './output.ts';
import { connectClient } from './temporal-client.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs(
    'approve',
    argv,
    {
      as: { type: 'string' },
      reject: { type: 'boolean' },
      reason: { type: 'string' },
      comment: { type: 'string' },
      signal: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    true,
  );
  if (!args) return EXIT.badInput;
  const problems: string[] = [];
  const workflowId = args._[0];
  if (!workflowId || args._.length > 1)
    problems.push('expected one workflow id: lifeboat approve <workflow-id> --as <name>');
  if (!args.as) problems.push("--as: who decides (a name from the policy's approvers)");
  if (args.reject && !args.reason) problems.push('--reason: a rejection needs a reason');
  if (problems.length) {
    problems.forEach(printError);
    return EXIT.badInput;
  }
  const decision: ApprovalDecisionInput = {
    approver: args.as as string,
    ...(args.reject ? { reject: true } : {}),
    ...(args.reason ? { reason: args.reason as string } : {}),
    ...(args.comment ? { comment: args.comment as string } : {}),
  };
  const { client, close } = await connectClient();
  try {
    const handle = client.workflow.getHandle(workflowId!);
    if (args.signal) {
      await handle.signal('approve', decision);
      if (args.json) printJson({ workflowId, sent: decision });
      else
        process.stdout.write(
          `signal sent to ${workflowId}; refusals are listed by: lifeboat status ${workflowId}\n`,
        );
      return EXIT.ok;
    }
    const state = await handle.executeUpdate<ApprovalState, [ApprovalDecisionInput]>('approve', {
      args: [decision],
    });
    if (args.json) printJson({ workflowId, ...state });
    else
      process.stdout.write(
        `${args.reject ? 'rejected' : 'approved'} by ${decision.approver}: ${describeApprovals(state)}\n`,
      );
    return EXIT.ok;
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      printError(`${workflowId}: refused: ${err.cause?.message ?? err.message}`);
      return EXIT.badInput;
    }
    if (err instanceof WorkflowNotFoundError) {
      printError(`${workflowId}: no such running workflow`);
      return EXIT.badInput;
    }
    throw err;
  } finally {
    await close();
  }
}
