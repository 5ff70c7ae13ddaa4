// `lifeboat compliance [-f plan] [--json] [--html <file>]`: the plan and the repository checked
// against rules an auditor recognises, each with its evidence. It reads storage directly, like
// `backups list`: read-only, it must answer when Temporal is down, and storage credentials come
// from this process's environment (or --env-file). Exit 0 when every rule passes, 1 when one
// fails (or the repository cannot be read), 2 on bad input.
import fs from 'node:fs';
import { readCatalog, readWalListing } from '../activities/catalog.ts';
import { readDrillReports } from '../activities/drill-reports.ts';
import { createObjectStore } from '../activities/ports/object-store.ts';
import { describeAwsError } from '../activities/storage.ts';
import { renderComplianceHtml } from '../domain/compliance-html.ts';
import { evaluateCompliance, type ComplianceReport, type DatabaseEvidence } from '../domain/compliance.ts';
import { LifeboatError } from '../domain/errors.ts';
import type { Plan } from '../domain/plan.ts';
import { parseCommandArgs } from './args.ts';
import { EXIT, printError, printJson } from './output.ts';
import { envFilesInto, htmlFileInto, loadEnvFiles, loadPlanInto } from './plan-args.ts';

const DEFAULT_SEGMENT = 16 * 1024 * 1024;

/** Everything the rules look at, read from the plan's storage locations. */
export async function gatherEvidence(
  plan: Plan,
  env: NodeJS.ProcessEnv,
): Promise<Record<string, DatabaseEvidence>> {
  const primary = createObjectStore(plan.storage.primary, env);
  const secondaryLocation = plan.storage.secondary;
  const secondary = secondaryLocation ? createObjectStore(secondaryLocation, env) : undefined;
  const out: Record<string, DatabaseEvidence> = {};
  for (const database of Object.keys(plan.databases)) {
    const catalog = await readCatalog(primary, database);
    const size = catalog.manifests.at(-1)?.postgres.walSegmentSize ?? DEFAULT_SEGMENT;
    const [{ wal, keys }, drills] = await Promise.all([
      readWalListing(primary, database, size),
      readDrillReports(primary, database),
    ]);
    let copies: DatabaseEvidence['secondary'] = null;
    if (secondaryLocation && secondary) {
      try {
        const there = await readCatalog(secondary, database);
        copies = { url: secondaryLocation.url, backupIds: there.manifests.map((m) => m.id) };
      } catch (err) {
        copies = { url: secondaryLocation.url, error: describeAwsError(err) };
      }
    }
    out[database] = {
      manifests: catalog.manifests,
      unreadableManifests: catalog.problems,
      walKeys: keys,
      wal,
      drills: drills.reports.map((r) => r.report),
      unreadableDrills: drills.unreadable,
      secondary: copies,
    };
  }
  return out;
}

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('compliance', argv, {
    file: { type: 'string', short: 'f' },
    json: { type: 'boolean' },
    html: { type: 'string' },
    'env-file': { type: 'string', multiple: true },
  });
  if (!args) return EXIT.badInput;
  const problems: string[] = [];
  const plan = loadPlanInto(problems, args.file as string | undefined);
  const html = htmlFileInto(problems, args.html);
  const envFiles = envFilesInto(problems, args['env-file']);
  if (problems.length || !plan) {
    for (const p of problems) printError(p);
    return EXIT.badInput;
  }
  loadEnvFiles(envFiles);

  let report: ComplianceReport;
  try {
    const databases = await gatherEvidence(plan, process.env);
    report = evaluateCompliance({ plan, now: new Date().toISOString(), databases });
  } catch (err) {
    printError(
      err instanceof LifeboatError
        ? err.message
        : `cannot read the repository ${plan.storage.primary.url}: ${describeAwsError(err)}`,
    );
    return EXIT.failed;
  }
  if (html !== undefined) fs.writeFileSync(html, renderComplianceHtml(report));
  if (args.json) printJson({ ...report, location: plan.storage.primary.url, ...(html ? { html } : {}) });
  else {
    const label = { pass: 'PASS', fail: 'FAIL', 'not-applicable': 'n/a' } as const;
    const ruleWidth = Math.max(...report.results.map((r) => r.rule.length));
    const subjectWidth = Math.max(...report.results.map((r) => r.subject.length));
    const indent = ' '.repeat(6 + ruleWidth + 2 + subjectWidth + 2);
    for (const r of report.results) {
      const [first, ...more] = r.evidence;
      process.stdout.write(
        `${label[r.status].padEnd(4)}  ${r.rule.padEnd(ruleWidth)}  ${r.subject.padEnd(subjectWidth)}  ${first ?? ''}\n`,
      );
      for (const line of more) process.stdout.write(`${indent}${line}\n`);
    }
    process.stdout.write(
      `\n${report.plan} (${report.environment}) at ${report.evaluatedAt}: ${report.counts.pass} passed, ${report.counts.fail} failed, ${report.counts['not-applicable']} not applicable\n`,
    );
    if (html !== undefined) process.stdout.write(`wrote ${html}\n`);
  }
  return report.passed ? EXIT.ok : EXIT.failed;
}
