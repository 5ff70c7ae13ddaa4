// `lifeboat retention --database <db> [--dry-run] [--pitr-window 7d] [--kubernetes-grace 1d] [--json]`:
// runs retentionWorkflow (id retention-<db>, one at a time) and prints what was, or would be,
// deleted and why, which rule keeps every kept backup, and what happened at each storage location.
import os from 'node:os';
import { WorkflowFailedError } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { formatDuration, parseDuration } from '../domain/duration.ts';
import { workflowIds } from '../domain/naming.ts';
import type { RetentionResult, RetentionWorkflowInput } from '../domain/retention.ts';
import type { LocationOutcome } from '../domain/retention-repository.ts';
import { SHARED_TASK_QUEUE } from '../domain/plan.ts';
import { webUiLink } from '../workers/temporal-connection.ts';
import type { retentionWorkflow } from '../workflows/retention.ts';
import { parseCommandArgs } from './args.ts';
import { loadPlanInto } from './plan-args.ts';
import { EXIT, printError, printJson, table } from './output.ts';
import { connectClient } from './temporal-client.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs(
    'retention',
    argv,
    {
      file: { type: 'string', short: 'f' },
      json: { type: 'boolean' },
      database: { type: 'string' },
      'dry-run': { type: 'boolean' },
      'pitr-window': { type: 'string' },
      'kubernetes-grace': { type: 'string' },
    },
    true,
  );
  if (!args) return EXIT.badInput;
  const problems: string[] = [];
  if (args._.length) problems.push(`unexpected arguments: ${args._.join(' ')}`);
  const plan = loadPlanInto(problems, args.file as string | undefined);
  const database = args.database as string | undefined;
  if (!database) problems.push('--database: required');
  else if (plan && !plan.backup.policies.some((p) => p.database === database))
    problems.push(`--database: no backup policy in the plan names "${database}"`);
  const pitrWindow = args['pitr-window'] as string | undefined;
  if (pitrWindow !== undefined && parseDuration(pitrWindow) === undefined)
    problems.push('--pitr-window: expected a duration such as 7d');
  const kubernetesGrace = args['kubernetes-grace'] as string | undefined;
  if (kubernetesGrace !== undefined && parseDuration(kubernetesGrace) === undefined)
    problems.push('--kubernetes-grace: expected a duration such as 1d');
  if (problems.length || !database) {
    for (const p of problems) printError(p);
    return EXIT.badInput;
  }
  const input: RetentionWorkflowInput = {
    database,
    dryRun: Boolean(args['dry-run']),
    ...(pitrWindow ? { pitrWindow } : {}),
    ...(kubernetesGrace ? { kubernetesGrace } : {}),
    requestedBy: process.env.LIFEBOAT_USER ?? os.userInfo().username,
  };
  const { client, target, close } = await connectClient();
  try {
    const workflowId = workflowIds.retention(database);
    let handle;
    try {
      handle = await client.workflow.start<typeof retentionWorkflow>('retentionWorkflow', {
        taskQueue: SHARED_TASK_QUEUE,
        workflowId,
        args: [input],
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        staticSummary: `retention of ${database}${input.dryRun ? ' (dry run)' : ''}`,
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      printError(`a retention run of ${database} is already running: ${workflowId}`);
      return EXIT.failed;
    }
    const link = webUiLink(target, workflowId);
    if (!args.json) process.stderr.write(`retention of ${database} started: ${workflowId}\n  ${link}\n`);
    let result: RetentionResult;
    try {
      result = await handle.result();
    } catch (err) {
      if (!(err instanceof WorkflowFailedError)) throw err;
      printError(err.cause?.message ?? err.message);
      return EXIT.failed;
    }
    if (args.json) printJson({ workflowId, webUi: link, ...result });
    else process.stdout.write(renderRetention(result));
    const sweepLocked = (result.locations ?? []).some((l) => l.kubernetes.some((k) => k.locked.length));
    return result.skippedBackups.length || result.wal.locked.length || sweepLocked ? EXIT.failed : EXIT.ok;
  } finally {
    await close();
  }
}

export function renderRetention(r: RetentionResult): string {
  const verb = r.dryRun ? 'would delete' : 'delete';
  const skipped = new Map(
    r.skippedBackups.map((s) => [
      s.id,
      s.locked.map((l) => (l.location ? `${l.location}: ${l.why}` : l.why)).join('; '),
    ]),
  );
  const rows = [
    ...r.plan.kept.map((k) => ({
      id: k.id,
      kind: k.kind,
      time: k.time,
      action: 'keep',
      why: describeRules(k),
    })),
    ...r.plan.deleted.map((d) => ({
      id: d.id,
      kind: d.kind,
      time: d.time,
      action: skipped.has(d.id) ? 'skipped' : verb,
      why: skipped.get(d.id) ?? d.reason,
    })),
  ].sort((a, b) => a.time.localeCompare(b.time));
  const lines = [
    `retention of ${r.database}${r.dryRun ? ' (dry run: nothing deleted)' : ''} at ${r.now}, PITR window ${formatDuration(r.pitrWindowMs)}`,
    rows.length
      ? table(
          ['backup', 'kind', 'time', 'action', 'why'],
          rows.map((x) => [x.id, x.kind, x.time.replace(/\.\d{3}Z$/, 'Z'), x.action, x.why]),
        ).trimEnd()
      : 'no backups',
    `WAL: kept from ${r.wal.keepFromLsn ?? '(all: no backup kept)'}; ${r.wal.expired} object(s) before it ${r.dryRun ? 'would be deleted' : `expired, ${r.wal.deleted} deleted`}` +
      (r.wal.locked.length ? `, ${r.wal.locked.length} left under Object Lock` : ''),
    ...(r.dryRun
      ? []
      : [
          `deleted ${r.deletedBackups.length} backup(s); ${r.skippedBackups.length} skipped under Object Lock`,
        ]),
    ...(r.locations ?? []).flatMap((l) => renderLocation(l, r.dryRun, (r.locations ?? []).length > 1)),
    ...r.problems.map((p) => `warning: ${p}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** One location's part: its backups, WAL partials and Kubernetes sweeps (its name when there are two). */
function renderLocation(l: LocationOutcome, dryRun: boolean, named: boolean): string[] {
  const where = named ? `${l.location} (${l.url}): ` : '';
  const would = (n: number, done: number) => (dryRun ? `${n} would be deleted` : `${done} of ${n} deleted`);
  const lines: string[] = [];
  if (named)
    lines.push(
      `${where}backups ${dryRun ? 'that would go' : 'deleted'}: ${(dryRun ? l.expired : l.deleted).join(', ') || 'none'}` +
        (l.skipped.length ? `; left under Object Lock: ${l.skipped.map((s) => s.id).join(', ')}` : '') +
        (l.incomplete.length ? `; objects of unfinished copies deleted: ${l.incomplete.join(', ')}` : '') +
        `; WAL: ${would(l.wal.expired, l.wal.deleted)}`,
    );
  if (l.partials.superseded)
    lines.push(
      `${where}WAL partial uploads superseded by their complete segment: ${would(l.partials.superseded, l.partials.deleted)}`,
    );
  for (const k of l.kubernetes) {
    const old = k.unreferenced - k.young;
    lines.push(
      `${where}kubernetes ${k.cluster}: ${k.snapshotsDeleted} snapshot index(es) ${dryRun ? 'would go' : 'deleted'}, ${k.snapshots} remain; ` +
        `${k.objects} object(s), ${k.unreferenced} named by none: ${dryRun ? `${old} would be deleted` : `${k.deleted} deleted`}` +
        (k.young ? `, ${k.young} younger than the grace age left` : '') +
        (k.locked.length ? `, ${k.locked.length} left under Object Lock` : ''),
    );
    if (k.orphanSnapshots?.length)
      lines.push(
        `${where}kubernetes ${k.cluster}: ${k.orphanSnapshots.length} snapshot index(es) of backups that never got a manifest ${dryRun ? 'would go' : 'deleted'} (they name nothing): ${k.orphanSnapshots.join(', ')}`,
      );
  }
  return lines;
}

function describeRules(k: RetentionResult['plan']['kept'][number]): string {
  return k.rules.map((r) => r.detail).join('; ');
}
