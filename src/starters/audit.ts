// `lifeboat audit list [--since 30d] [--database <db>] [--json]`: the audit records every workflow
// run left in the repository, read straight from storage — the evidence an auditor asks for,
// independent of Temporal and its retention period. Storage credentials come from this process's
// environment (or --env-file), as for a worker.
import { readAuditRecords } from '../activities/audit.ts';
import { createObjectStore } from '../activities/ports/object-store.ts';
import { describeAwsError } from '../activities/storage.ts';
import type { AuditRecord } from '../domain/audit.ts';
import { formatDuration, parseDuration } from '../domain/duration.ts';
import { LifeboatError } from '../domain/errors.ts';
import { parseCommandArgs } from './args.ts';
import { envFilesInto, loadEnvFiles, loadPlanInto } from './plan-args.ts';
import { EXIT, printError, printJson, table } from './output.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs(
    'audit',
    argv,
    {
      file: { type: 'string', short: 'f' },
      json: { type: 'boolean' },
      since: { type: 'string' },
      database: { type: 'string' },
      'env-file': { type: 'string', multiple: true },
    },
    true,
  );
  if (!args) return EXIT.badInput;
  const problems: string[] = [];
  if (args._[0] !== 'list' || args._.length > 1)
    problems.push('expected: lifeboat audit list [--since 30d] [--database <db>]');
  const plan = loadPlanInto(problems, args.file as string | undefined);
  const now = new Date();
  const since = sinceOf(problems, (args.since as string | undefined) ?? '30d', now);
  // Any name: records of a database since removed from the plan are still evidence.
  const database = args.database as string | undefined;
  if (database !== undefined && !database.trim()) problems.push('--database: must not be empty');
  const envFiles = envFilesInto(problems, args['env-file']);
  if (problems.length || !plan || !since) {
    for (const p of problems) printError(p);
    return EXIT.badInput;
  }
  loadEnvFiles(envFiles);

  let listing;
  try {
    listing = await readAuditRecords(createObjectStore(plan.storage.primary, process.env), {
      since,
      until: now,
      database,
    });
  } catch (err) {
    printError(
      err instanceof LifeboatError
        ? err.message
        : `cannot list ${plan.storage.primary.url}: ${describeAwsError(err)}`,
    );
    return EXIT.failed;
  }
  for (const p of listing.problems) printError(`${p.key}: unreadable audit record: ${p.problems.join('; ')}`);
  if (args.json) {
    printJson({
      location: plan.storage.primary.url,
      since: since.toISOString(),
      ...(database ? { database } : {}),
      records: listing.records,
      problems: listing.problems,
    });
  } else if (listing.records.length === 0) {
    process.stdout.write(
      `no audit records${database ? ` of ${database}` : ''} since ${since.toISOString()} in ${plan.storage.primary.url}\n`,
    );
  } else {
    process.stdout.write(
      table(
        ['started', 'workflow', 'type', 'database', 'requested by', 'approvals', 'outcome', 'took', 'steps'],
        listing.records.map((r) => [
          r.startedAt.replace(/\.\d{3}Z$/, 'Z'),
          r.workflowId,
          r.workflowType,
          r.database ?? '',
          r.requestedBy ?? '',
          approvals(r),
          r.result && r.result !== r.outcome ? `${r.outcome} (${r.result})` : r.outcome,
          formatDuration(Date.parse(r.endedAt) - Date.parse(r.startedAt)),
          String(r.steps.length + r.stepsOmitted),
        ]),
      ),
    );
  }
  return listing.problems.length ? EXIT.failed : EXIT.ok;
}

function sinceOf(problems: string[], text: string, now: Date): Date | undefined {
  const ms = parseDuration(text);
  if (ms !== undefined) return new Date(now.getTime() - ms);
  const at = Date.parse(text);
  if (/^\d{4}-\d\d-\d\d/.test(text) && !Number.isNaN(at)) return new Date(at);
  problems.push(`--since: "${text}" is neither a duration (30d, 12h) nor an ISO-8601 time`);
  return undefined;
}

/** "alice approved, bob rejected": who decided and how (the times are in the JSON). */
function approvals(r: AuditRecord): string {
  return r.approvals.flatMap((g) => g.decisions.map((d) => `${d.approver} ${d.decision}`)).join(', ');
}
