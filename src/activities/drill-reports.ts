// Drill reports read back from the repository (drills/<database>/<drill id>/report.json): the
// evidence outlives Temporal's retention, so `lifeboat drill report` and `lifeboat compliance`
// read storage, not workflow histories. A report that does not parse or validate is returned
// with why — an auditor must see that a report exists and is unreadable, never a shorter list.
import { drillReportSchema, type DrillReport } from '../domain/drill-report.ts';
import { joinKey } from '../domain/naming.ts';
import type { ObjectStore } from './ports/object-store.ts';

export const DRILL_REPORT_FILE = 'report.json';

export interface DrillReportListing {
  /** Newest first. */
  reports: { key: string; report: DrillReport }[];
  unreadable: { key: string; reason: string }[];
}

/** Every drill report of one database, or of all databases when `database` is undefined. */
export async function readDrillReports(store: ObjectStore, database?: string): Promise<DrillReportListing> {
  const prefix = (database ? joinKey('drills', database) : 'drills') + '/';
  const keys = (await store.list(prefix))
    .map((o) => o.key)
    .filter((k) => k.endsWith(`/${DRILL_REPORT_FILE}`))
    .sort();
  const listing: DrillReportListing = { reports: [], unreadable: [] };
  const texts = await Promise.all(
    keys.map(async (key) => ({ key, text: Buffer.from(await store.get(key)).toString('utf8') })),
  );
  for (const { key, text } of texts) {
    const parsed = parseDrillReport(key, text);
    if ('reason' in parsed) listing.unreadable.push({ key, reason: parsed.reason });
    else listing.reports.push({ key, report: parsed.report });
  }
  listing.reports.sort((a, b) => Date.parse(b.report.startedAt) - Date.parse(a.report.startedAt));
  return listing;
}

/** A stored report, or why it cannot be trusted (including being filed under another drill). */
export function parseDrillReport(key: string, text: string): { report: DrillReport } | { reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { reason: `not JSON: ${(err as Error).message}` };
  }
  const parsed = drillReportSchema.safeParse(json);
  if (!parsed.success)
    return {
      reason: parsed.error.issues.map((i) => `${i.path.join('.') || '(report)'}: ${i.message}`).join('; '),
    };
  const [, database, drillId] = key.split('/');
  const report = parsed.data;
  if (report.database !== database || report.drillId !== drillId)
    return {
      reason: `report of ${report.database}/${report.drillId} filed under ${database}/${drillId}`,
    };
  return { report };
}
