// `lifeboat drill report` against the real SeaweedFS S3 of the local stack: reports written under
// a test-specific prefix the way the drill workflow files them (drills/<db>/<drill id>/report.json),
// then listed through the CLI — newest first, judged against targets, filtered, as JSON and as one
// HTML file — with unreadable reports listed with why, never dropped.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { createObjectStore, type ObjectStore } from '../../src/activities/ports/object-store.ts';
import type { DrillReport } from '../../src/domain/drill-report.ts';
import { repository } from '../../src/domain/repository.ts';
import { loadPlan } from '../../src/workers/plan-file.ts';
import { drillReportFixture, failedDrillReportFixture } from '../support/drill-reports.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli } from '../support/workers.ts';

const DAY = 86_400_000;
const ago = (days: number) => new Date(Date.now() - days * DAY).toISOString();

describe('lifeboat drill report on the local stack', () => {
  let stack: TestStack;
  let store: ObjectStore;
  let planFile: string;
  let tmp: string;
  const cli = (args: string[]) => runCli(['drill', 'report', ...args, '-f', planFile], stack.env);
  // GIVEN three drills of orders (2, 10 and 200 days ago), one of billing (a database no longer in
  // the plan: its drills are still evidence), and three bad files.
  const recentFailed = failedDrillReportFixture({ drillId: 'drill-recent-failed' }, ago(2));
  const recentPassed = drillReportFixture({ drillId: 'drill-recent-passed' }, ago(10));
  const old = drillReportFixture({ drillId: 'drill-old' }, ago(200));
  const billing = drillReportFixture({ drillId: 'drill-billing', database: 'billing' }, ago(5));
  const put = (r: DrillReport, drillId = r.drillId) =>
    store.put(repository.drillReport('', r.database, drillId, 'report.json'), JSON.stringify(r, null, 2));

  before(async () => {
    stack = await ensureStack();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-drill-report-'));
    const raw = parse(fs.readFileSync(stack.planFile, 'utf8'));
    raw.storage.primary.url = `s3://${stack.layout.s3.bucket}/test-drill-report-${Date.now()}`;
    planFile = path.join(tmp, 'lifeboat.yaml');
    fs.writeFileSync(planFile, stringify(raw));
    store = createObjectStore(loadPlan(planFile).storage.primary, stack.env);
    await Promise.all([put(recentFailed), put(recentPassed), put(old), put(billing)]);
    await store.put('drills/orders/drill-garbled/report.json', '{"version": 1, "drillId": ');
    await store.put(
      'drills/orders/drill-future/report.json',
      JSON.stringify({ ...drillReportFixture({ drillId: 'drill-future' }), version: 2 }),
    );
    // A valid report filed under another drill's folder is not trusted either.
    await put(drillReportFixture({ drillId: 'drill-elsewhere' }, ago(3)), 'drill-misfiled');
  });

  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('lists every drill newest first as a table, judged against targets, unreadable ones with why', async () => {
    const run = await cli([]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const rows = run.stdout.split('\n').filter((l) => l.startsWith('drill-'));
    assert.deepEqual(
      rows.map((l) => l.split(/\s+/)[0]),
      ['drill-recent-failed', 'drill-billing', 'drill-recent-passed', 'drill-old'],
    );
    assert.match(rows[0]!, /orders +restore +\S+ +failed +- unknown +15m +2\.0s met +5m +fail$/);
    assert.match(rows[2]!, /orders +restore +\S+ +passed +4m30s met +15m +2\.0s met +5m +pass$/);
    assert.match(run.stdout, /unreadable reports \(3\):/);
    assert.match(run.stdout, /drills\/orders\/drill-garbled\/report\.json: not JSON: /);
    assert.match(
      run.stdout,
      /drills\/orders\/drill-future\/report\.json: version: Invalid input: expected 1/,
    );
    assert.match(
      run.stdout,
      /drills\/orders\/drill-misfiled\/report\.json: report of orders\/drill-elsewhere filed under orders\/drill-misfiled/,
    );
  });

  it('--database and --since filter; --json is one document with the full reports', async () => {
    const run = await cli(['--database', 'orders', '--since', '90d', '--json']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const out = JSON.parse(run.stdout) as {
      database: string;
      since: string;
      drills: { key: string; verdict: string; report: DrillReport }[];
      unreadable: { key: string; reason: string }[];
    };
    assert.equal(out.database, 'orders');
    assert.deepEqual(
      out.drills.map((d) => [d.report.drillId, d.verdict]),
      [
        ['drill-recent-failed', 'fail'],
        ['drill-recent-passed', 'pass'],
      ],
    );
    assert.deepEqual(out.drills[0]!.report, recentFailed);
    assert.equal(out.drills[1]!.key, 'drills/orders/drill-recent-passed/report.json');
    assert.deepEqual(out.unreadable.map((u) => u.key).sort(), [
      'drills/orders/drill-future/report.json',
      'drills/orders/drill-garbled/report.json',
      'drills/orders/drill-misfiled/report.json',
    ]);
  });

  it('lists the drills of a database that is no longer in the plan', async () => {
    const run = await cli(['--database', 'billing', '--json']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const out = JSON.parse(run.stdout) as { drills: { report: DrillReport }[]; unreadable: unknown[] };
    assert.deepEqual(
      out.drills.map((d) => d.report),
      [billing],
    );
    assert.deepEqual(out.unreadable, []);
  });

  it('--html writes one self-contained page with every drill in scope', async () => {
    const file = path.join(tmp, 'drills.html');
    const run = await cli(['--database', 'orders', '--html', file]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, new RegExp(`wrote ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const html = fs.readFileSync(file, 'utf8');
    assert.equal([...html.matchAll(/<svg class="timeline"/g)].length, 3);
    for (const id of ['drill-recent-failed', 'drill-recent-passed', 'drill-old'])
      assert.ok(html.includes(id), id);
    assert.equal(html.includes('drill-billing'), false);
    assert.match(html, /Unreadable reports/);
    assert.equal(/<script|<link|src=/.test(html), false);
  });

  it('refuses bad input with exit 2, every problem listed', async () => {
    const run = await cli(['--database', '../orders', '--since', 'soon', '--html', tmp]);
    assert.equal(run.code, 2, run.stdout + run.stderr);
    assert.match(run.stderr, /--database: "\.\.\/orders" is not a database name/);
    assert.match(run.stderr, /--since: expected a duration such as 90d/);
    assert.match(run.stderr, /--html: expected a file to write/);
  });
});
