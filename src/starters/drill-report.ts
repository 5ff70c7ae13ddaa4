// `lifeboat drill report [--database <db>] [--since 90d] [--json] [--html <file>]`: the history of
// DR drills read from the repository (drills/), not from Temporal, whose retention forgets runs
// long before an auditor asks. Newest first, each judged against its targets; a report that
// cannot be read is listed with why. Exit 0 whenever the history could be listed — failed drills
// are the report's content, not the command's failure. Storage credentials come from this
// process's environment (or --env-file), as for `backups list`.
import fs from 'node:fs';
import { readDrillReports, type DrillReportListing } from '../activities/drill-reports.ts';
import { createObjectStore } from '../activities/ports/object-store.ts';
import { describeAwsError } from '../activities/storage.ts';
import { renderDrillHistoryHtml } from '../domain/drill-html.ts';
import type { DrillReport } from '../domain/drill-report.ts';
import { formatDuration, parseDuration } from '../domain/duration.ts';
import { LifeboatError } from '../domain/errors.ts';
import { parseCommandArgs } from './args.ts';
import { EXIT, printError, printJson, table } from './output.ts';
import { envFilesInto, htmlFileInto, loadEnvFiles, loadPlanInto } from './plan-args.ts';

/** Passed, and both objectives met: what an auditor counts as a successful drill. */
export function drillVerdict(r: DrillReport): 'pass' | 'fail' {
  return r.outcome === 'passed' && r.verdicts.rto === 'met' && r.verdicts.rpo === 'met' ? 'pass' : 'fail';
}

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('drill report', argv, {
    file: { type: 'string', short: 'f' },
    json: { type: 'boolean' },
    database: { type: 'string' },
    since: { type: 'string' },
    html: { type: 'string' },
    'env-file': { type: 'string', multiple: true },
  });
  if (!args) return EXIT.badInput;
  const problems: string[] = [];
  const plan = loadPlanInto(problems, args.file as string | undefined);
  // Any database name, not only the plan's: drills of a database since removed from the plan
  // are still evidence. It must be a name, though — it becomes a storage prefix.
  const database = args.database as string | undefined;
  if (database !== undefined && !/^[a-z0-9]([a-z0-9-_]*[a-z0-9])?$/.test(database))
    problems.push(`--database: "${database}" is not a database name (lowercase letters, digits, - and _)`);
  const since = args.since as string | undefined;
  const sinceMs = since === undefined ? undefined : parseDuration(since);
  if (since !== undefined && sinceMs === undefined)
    problems.push('--since: expected a duration such as 90d or 12h');
  const html = htmlFileInto(problems, args.html);
  const envFiles = envFilesInto(problems, args['env-file']);
  if (problems.length || !plan) {
    for (const p of problems) printError(p);
    return EXIT.badInput;
  }
  loadEnvFiles(envFiles);

  let listing: DrillReportListing;
  try {
    listing = await readDrillReports(createObjectStore(plan.storage.primary, process.env), database);
  } catch (err) {
    printError(
      err instanceof LifeboatError
        ? err.message
        : `cannot read drill reports in ${plan.storage.primary.url}: ${describeAwsError(err)}`,
    );
    return EXIT.failed;
  }
  const now = new Date();
  const cutoff = sinceMs === undefined ? undefined : now.getTime() - sinceMs;
  const reports = listing.reports.filter(
    (r) => cutoff === undefined || Date.parse(r.report.startedAt) >= cutoff,
  );
  const scope = `${database ?? 'all databases'}${cutoff === undefined ? '' : `, since ${new Date(cutoff).toISOString()}`}`;

  if (html !== undefined) {
    fs.writeFileSync(
      html,
      renderDrillHistoryHtml(
        reports.map((r) => r.report),
        { generatedAt: now, scope: `${plan.name}: ${scope}`, unreadable: listing.unreadable },
      ),
    );
  }
  if (args.json) {
    printJson({
      plan: plan.name,
      location: plan.storage.primary.url,
      database: database ?? null,
      since: cutoff === undefined ? null : new Date(cutoff).toISOString(),
      drills: reports.map((r) => ({ key: r.key, verdict: drillVerdict(r.report), report: r.report })),
      unreadable: listing.unreadable,
      ...(html !== undefined ? { html } : {}),
    });
    return EXIT.ok;
  }
  const ms = (v: number | null) => (v === null ? '-' : formatDuration(v));
  if (reports.length === 0)
    process.stdout.write(`no drill reports (${scope}) in ${plan.storage.primary.url}\n`);
  else
    process.stdout.write(
      table(
        [
          'drill',
          'database',
          'mode',
          'started',
          'outcome',
          'rto',
          'rto target',
          'rpo',
          'rpo target',
          'verdict',
        ],
        reports.map(({ report: r }) => [
          r.drillId,
          r.database,
          r.mode,
          r.startedAt.replace(/\.\d{3}Z$/, 'Z'),
          r.outcome,
          `${ms(r.measured.rtoMs)} ${r.verdicts.rto}`,
          formatDuration(r.targets.rtoMs),
          `${ms(r.measured.rpoMs)} ${r.verdicts.rpo}`,
          formatDuration(r.targets.rpoMs),
          drillVerdict(r),
        ]),
      ),
    );
  if (listing.unreadable.length) {
    process.stdout.write(`\nunreadable reports (${listing.unreadable.length}):\n`);
    for (const u of listing.unreadable) process.stdout.write(`  ${u.key}: ${u.reason}\n`);
  }
  if (html !== undefined) process.stdout.write(`\nwrote ${html}\n`);
  return EXIT.ok;
}
