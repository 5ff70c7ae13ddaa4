// The drill report page: self-contained (nothing fetched from anywhere), every value escaped, one
// timeline bar per phase in its outcome's colour — and, in headless Chromium, the chart really
// renders: the screenshot holds the bar colours where the phases' times put them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import {
  PHASE_COLOURS,
  escapeHtml,
  renderDrillHistoryHtml,
  renderDrillReportHtml,
  renderTimelineSvg,
} from '../../src/domain/drill-html.ts';
import { drillReportSchema } from '../../src/domain/drill-report.ts';
import { drillReportFixture, failedDrillReportFixture } from '../support/drill-reports.ts';
import { decodePng, findColour } from '../support/png.ts';

/** Anything that would make the browser fetch: scripts, stylesheets, fonts, images, frames. */
function externalReferences(html: string): string[] {
  return [...html.matchAll(/<script|<link|<img|<iframe|@import|url\(|src=|@font-face|<object|<embed/gi)].map(
    (m) => m[0],
  );
}

describe('drill report HTML', () => {
  it('is self-contained: inline style and SVG, no script, no external resource', () => {
    const html = renderDrillReportHtml(failedDrillReportFixture());
    assert.match(html, /^<!DOCTYPE html>/);
    assert.match(html, /<style>/);
    assert.match(html, /<svg class="timeline"/);
    assert.deepEqual(externalReferences(html), []);
    // The only link is the Web UI run.
    assert.deepEqual(
      [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]),
      ['http://localhost:8233/namespaces/default/workflows/drill-orders-drill-20261120T100000Z'],
    );
  });

  it('escapes everything that comes from the report', () => {
    const evil = '<script>alert("x")</script>&\'';
    const report = drillReportSchema.parse({
      ...failedDrillReportFixture(),
      requestedBy: evil,
      reasons: [evil],
      validation: [{ name: evil, ok: false, detail: evil }],
      comparisons: [{ ...drillReportFixture().comparisons[0], table: evil, detail: evil }],
      teardown: { done: false, detail: evil },
      webUiUrl: 'javascript:alert(1)',
    });
    const html = renderDrillReportHtml(report);
    assert.equal(html.includes('<script'), false);
    assert.ok(html.includes(escapeHtml(evil)));
    assert.equal(escapeHtml(evil), '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;');
    // A non-http URL is shown as text, never as a link.
    assert.equal(html.includes('href="javascript'), false);
  });

  it('draws one bar per phase, in order, coloured by outcome, sized by duration', () => {
    const report = failedDrillReportFixture();
    const svg = renderTimelineSvg(report);
    const bars = [
      ...svg.matchAll(
        /<rect class="phase[^"]*" data-phase="([^"]+)" x="([\d.]+)" y="(\d+)" width="([\d.]+)"[^>]* fill="(#[0-9a-f]{6})"/g,
      ),
    ].map((m) => ({ phase: m[1], x: Number(m[2]), y: Number(m[3]), width: Number(m[4]), fill: m[5] }));
    assert.deepEqual(
      bars.map((b) => b.phase),
      report.phases.map((p) => p.name),
    );
    assert.deepEqual(
      bars.map((b) => b.fill),
      report.phases.map((p) => PHASE_COLOURS[p.outcome]),
    );
    for (let i = 1; i < bars.length; i++) assert.ok(bars[i]!.y > bars[i - 1]!.y, 'one row per phase');
    // restoring took 3 min, preparing 30 s: six times as wide.
    const [preparing, restoring] = bars;
    assert.ok(
      Math.abs(restoring!.width / preparing!.width - 6) < 0.05,
      `${restoring!.width} / ${preparing!.width}`,
    );
    // comparing never ended: its bar runs to the end of the drill, as far as reporting's end.
    const comparing = bars.find((b) => b.phase === 'comparing')!;
    const reporting = bars.at(-1)!;
    assert.ok(Math.abs(comparing.x + comparing.width - (reporting.x + reporting.width)) < 0.5);
  });

  it('history: newest first, every drill in full, unreadable reports listed', () => {
    const older = drillReportFixture({}, '2026-10-01T08:00:00.000Z');
    const newer = failedDrillReportFixture({}, '2026-11-01T08:00:00.000Z');
    const html = renderDrillHistoryHtml([older, newer], {
      generatedAt: new Date('2026-11-22T12:00:00.000Z'),
      scope: 'orders',
      unreadable: [{ key: 'drills/orders/x/report.json', reason: 'version: Invalid input: expected 1' }],
    });
    assert.ok(html.indexOf(newer.drillId) < html.indexOf(older.drillId), 'newest first');
    assert.equal([...html.matchAll(/<svg class="timeline"/g)].length, 2);
    assert.match(html, /drills\/orders\/x\/report\.json<\/code><\/td><td>version: Invalid input: expected 1/);
    assert.match(html, /2 \(1 passed\)/);
    assert.deepEqual(externalReferences(html), []);
  });
});

describe('drill report in headless Chromium', () => {
  const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-drill-html-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('renders the timeline chart: each bar colour where its phase is, in row order', async () => {
    assert.ok(chromium, 'chromium is not installed: scripts/bootstrap.sh installs the Debian package');
    // GIVEN a drill whose phases split its 8 minutes 4 : 2 : 2 — completed, failed, cancelled.
    const base = drillReportFixture();
    const t0 = Date.parse(base.startedAt);
    const at = (m: number) => new Date(t0 + m * 60_000).toISOString();
    const report = drillReportSchema.parse({
      ...base,
      endedAt: at(8),
      outcome: 'failed',
      reasons: ['validation failed'],
      phases: [
        { name: 'restoring', startedAt: at(0), endedAt: at(4), outcome: 'completed', detail: '' },
        { name: 'validating', startedAt: at(4), endedAt: at(6), outcome: 'failed', detail: '' },
        { name: 'comparing', startedAt: at(6), endedAt: null, outcome: 'cancelled', detail: '' },
      ],
    });
    const htmlFile = path.join(dir, 'report.html');
    const png = path.join(dir, 'shot.png');
    fs.writeFileSync(htmlFile, renderDrillReportHtml(report));

    // WHEN headless Chromium opens the file and takes a screenshot.
    await promisify(execFile)(
      chromium,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--hide-scrollbars',
        `--user-data-dir=${path.join(dir, 'profile')}`,
        '--force-device-scale-factor=1',
        '--window-size=1100,900',
        `--screenshot=${png}`,
        `file://${htmlFile}`,
      ],
      { timeout: 90_000 },
    );
    const img = decodePng(fs.readFileSync(png));

    // THEN the three bars are there, left to right and top to bottom, widths as 4 : 2 : 2.
    const [done, failed, cancelled] = (['completed', 'failed', 'cancelled'] as const).map((o) => {
      const box = findColour(img, PHASE_COLOURS[o]);
      assert.ok(box, `no ${o} bar (${PHASE_COLOURS[o]}) in the screenshot`);
      return { ...box, width: box.maxX - box.minX + 1 };
    });
    console.log(`screenshot ${img.width}x${img.height}: bars`, JSON.stringify({ done, failed, cancelled }));
    assert.ok(done!.maxX <= failed!.minX && failed!.maxX <= cancelled!.minX, 'bars in time order');
    assert.ok(done!.maxY < failed!.minY && failed!.maxY < cancelled!.minY, 'one row per phase');
    assert.ok(Math.abs(done!.width / failed!.width - 2) < 0.05, 'restoring twice as long as validating');
    assert.ok(Math.abs(cancelled!.width - failed!.width) <= 2, 'validating and comparing equally long');
    // Each bar is a filled rectangle, not a stray pixel of that colour.
    for (const b of [done!, failed!, cancelled!])
      assert.equal(b.count, b.width * (b.maxY - b.minY + 1), 'bar is a solid rectangle');
  });
});
