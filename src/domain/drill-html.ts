// The drill report as one self-contained HTML page: an auditor opens it years later, offline, from
// the repository, so it carries its own CSS and draws the timeline as inline SVG — no scripts, no
// fonts, no external URLs. Everything from the report is escaped: database names, details and
// error messages come from outside. Pure and deterministic (no clock: the history page is given
// its generation time), so a workflow or an activity can render it.
import type { DrillPhaseRecord, DrillReport } from './drill-report.ts';
import { formatDuration } from './duration.ts';

/**
 * Bar colours of the timeline, by phase outcome. Used nowhere else on the page (badges and
 * verdicts use other shades), so a screenshot can tell the chart's bars apart from the rest.
 */
export const PHASE_COLOURS = {
  completed: '#1c9e5b',
  failed: '#d3203c',
  cancelled: '#e8960c',
} as const satisfies Record<DrillPhaseRecord['outcome'], string>;

const BADGE_COLOURS: Record<DrillReport['outcome'], string> = {
  passed: '#157347',
  failed: '#b02a37',
  cancelled: '#8a5a00',
};

const VERDICT_COLOURS: Record<'met' | 'missed' | 'unknown', string> = {
  met: '#157347',
  missed: '#b02a37',
  unknown: '#6c757d',
};

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const e = escapeHtml;

const STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:24px;color:#212529;background:#fff;max-width:1100px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dee2e6;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}th,td{border:1px solid #dee2e6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;color:#fff;border-radius:4px;padding:2px 8px;font-size:13px;font-weight:600;text-transform:uppercase}
.ok{color:#157347;font-weight:600}.bad{color:#b02a37;font-weight:600}.muted{color:#6c757d}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;font-size:13px;margin:8px 0}dt{color:#6c757d}dd{margin:0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
ul{margin:4px 0 12px;padding-left:20px;font-size:13px}
section.drill{border-top:3px solid #dee2e6;margin-top:32px;padding-top:8px}
`;

/** A complete page with the shared inline stylesheet (also used by the compliance report). */
export function htmlPage(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

function badge(outcome: DrillReport['outcome']): string {
  return `<span class="badge" style="background:${BADGE_COLOURS[outcome]}">${e(outcome)}</span>`;
}

function verdictText(v: 'met' | 'missed' | 'unknown'): string {
  return `<span style="color:${VERDICT_COLOURS[v]};font-weight:600">${e(v)}</span>`;
}

function duration(ms: number | null): string {
  return ms === null ? '<span class="muted">not measured</span>' : e(formatDuration(ms));
}

function text(value: string | null | undefined): string {
  return value === null || value === undefined || value === '' ? '<span class="muted">—</span>' : e(value);
}

function okCell(ok: boolean): string {
  return ok ? '<span class="ok">ok</span>' : '<span class="bad">FAILED</span>';
}

/** Only http(s) links are made clickable: a javascript: URL in a report must not become a link. */
function link(url: string | null, label: string): string {
  if (url === null) return text(null);
  return /^https?:\/\//i.test(url) ? `<a href="${e(url)}">${e(label)}</a>` : e(url);
}

// ---------------------------------------------------------------------------------------------
// Timeline

const CHART = { width: 960, label: 130, right: 20, top: 26, row: 26, bar: 16, axis: 30 };

/** Tick step in ms giving about five ticks over the span. */
function tickStep(spanMs: number): number {
  const steps = [1, 2, 5, 10, 15, 30].flatMap((n) => [n * 1000, n * 60_000]).concat([3_600_000, 7_200_000]);
  steps.sort((a, b) => a - b);
  return steps.find((s) => spanMs / s <= 6) ?? Math.ceil(spanMs / 6 / 3_600_000) * 3_600_000;
}

/**
 * A Gantt chart of the phases: one row per phase, the bar from its start to its end (or to the
 * end of the drill when it never ended), coloured by outcome, on an axis of time since the start.
 */
export function renderTimelineSvg(report: DrillReport): string {
  const phases = report.phases;
  const start = Math.min(Date.parse(report.startedAt), ...phases.map((p) => Date.parse(p.startedAt)));
  const ends = phases.map((p) => Date.parse(p.endedAt ?? report.endedAt));
  const end = Math.max(Date.parse(report.endedAt), start + 1000, ...ends);
  const span = end - start;
  const plotWidth = CHART.width - CHART.label - CHART.right;
  const x = (t: number) => CHART.label + ((t - start) / span) * plotWidth;
  const height = CHART.top + Math.max(phases.length, 1) * CHART.row + CHART.axis;
  const axisY = CHART.top + Math.max(phases.length, 1) * CHART.row;

  const parts: string[] = [];
  const step = tickStep(span);
  for (let t = 0; t <= span; t += step) {
    const tx = x(start + t).toFixed(1);
    parts.push(
      `<line x1="${tx}" y1="${CHART.top - 4}" x2="${tx}" y2="${axisY}" stroke="#e9ecef" stroke-width="1"/>`,
      `<text x="${tx}" y="${axisY + 16}" font-size="11" text-anchor="middle" fill="#495057">${t === 0 ? '0' : `+${e(formatDuration(t))}`}</text>`,
    );
  }
  parts.push(
    `<line x1="${CHART.label}" y1="${axisY}" x2="${CHART.width - CHART.right}" y2="${axisY}" stroke="#adb5bd" stroke-width="1"/>`,
    `<text x="${CHART.label}" y="14" font-size="11" fill="#495057">${e(report.startedAt)}</text>`,
    `<text x="${CHART.width - CHART.right}" y="14" font-size="11" text-anchor="end" fill="#495057">${e(report.endedAt)}</text>`,
  );
  if (phases.length === 0) {
    parts.push(
      `<text x="${CHART.label + 8}" y="${CHART.top + 16}" font-size="12" fill="#6c757d">no phase was recorded</text>`,
    );
  }
  phases.forEach((p, i) => {
    const y = CHART.top + i * CHART.row + (CHART.row - CHART.bar) / 2;
    const from = x(Date.parse(p.startedAt));
    const to = x(Date.parse(p.endedAt ?? report.endedAt));
    // A phase shorter than a pixel still gets a visible bar.
    const w = Math.max(to - from, 3);
    const took =
      p.endedAt === null ? 'did not end' : formatDuration(Date.parse(p.endedAt) - Date.parse(p.startedAt));
    const title = `${p.name}: ${p.outcome}, ${took}${p.detail ? ` — ${p.detail}` : ''}`;
    parts.push(
      `<text x="${CHART.label - 8}" y="${y + CHART.bar - 4}" font-size="12" text-anchor="end" fill="#212529">${e(p.name)}</text>`,
      `<rect class="phase phase-${e(p.outcome)}" data-phase="${e(p.name)}" x="${from.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${CHART.bar}" fill="${PHASE_COLOURS[p.outcome]}" shape-rendering="crispEdges"><title>${e(title)}</title></rect>`,
    );
  });
  return `<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="${CHART.width}" height="${height}" viewBox="0 0 ${CHART.width} ${height}" role="img" aria-label="Drill timeline">${parts.join('')}</svg>`;
}

function legend(): string {
  return Object.entries(PHASE_COLOURS)
    .map(
      ([outcome]) =>
        `<span style="margin-right:14px"><span style="display:inline-block;width:10px;height:10px;border:2px solid ${e(
          BORDER_OF[outcome as keyof typeof PHASE_COLOURS],
        )};margin-right:4px"></span>${e(outcome)}</span>`,
    )
    .join('');
}

// The legend shows outlined squares in darker shades so the screenshot check finds the bar
// colours only inside the chart.
const BORDER_OF: Record<keyof typeof PHASE_COLOURS, string> = {
  completed: '#0f6b3c',
  failed: '#8f1226',
  cancelled: '#9c6306',
};

// ---------------------------------------------------------------------------------------------
// Sections

function phasesTable(report: DrillReport): string {
  if (report.phases.length === 0) return '<p class="muted">No phase was recorded.</p>';
  const rows = report.phases.map((p) => {
    const took = p.endedAt === null ? null : Date.parse(p.endedAt) - Date.parse(p.startedAt);
    return `<tr><td>${e(p.name)}</td><td>${e(p.outcome)}</td><td>${e(p.startedAt)}</td><td>${text(
      p.endedAt,
    )}</td><td class="num">${took === null ? '<span class="muted">did not end</span>' : e(formatDuration(took))}</td><td>${text(p.detail)}</td></tr>`;
  });
  return `<table><thead><tr><th>Phase</th><th>Outcome</th><th>Started</th><th>Ended</th><th>Took</th><th>Detail</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function objectivesTable(report: DrillReport): string {
  const breakdown = Object.entries(report.measured.rtoBreakdownMs);
  const rows = [
    `<tr><td>RTO</td><td class="num">${e(formatDuration(report.targets.rtoMs))}</td><td class="num">${duration(
      report.measured.rtoMs,
    )}</td><td>${verdictText(report.verdicts.rto)}</td></tr>`,
    `<tr><td>RPO</td><td class="num">${e(formatDuration(report.targets.rpoMs))}</td><td class="num">${duration(
      report.measured.rpoMs,
    )}</td><td>${verdictText(report.verdicts.rpo)}</td></tr>`,
  ];
  const table = `<table><thead><tr><th>Objective</th><th>Target (tier ${report.tier})</th><th>Measured</th><th>Verdict</th></tr></thead><tbody>${rows.join(
    '',
  )}</tbody></table>`;
  if (breakdown.length === 0) return table;
  const parts = breakdown.map(
    ([k, ms]) => `<tr><td>${e(k)}</td><td class="num">${e(formatDuration(ms))}</td></tr>`,
  );
  return `${table}<h3>RTO by phase</h3><table><thead><tr><th>Part</th><th>Took</th></tr></thead><tbody>${parts.join(
    '',
  )}</tbody></table>`;
}

function validationTable(report: DrillReport): string {
  if (report.validation.length === 0) return '<p class="muted">No validation was run.</p>';
  const rows = report.validation.map(
    (c) => `<tr><td>${e(c.name)}</td><td>${okCell(c.ok)}</td><td>${text(c.detail)}</td></tr>`,
  );
  return `<table><thead><tr><th>Check</th><th>Result</th><th>Detail</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function comparisonsTable(report: DrillReport): string {
  if (report.comparisons.length === 0) return '<p class="muted">No table was compared.</p>';
  const n = (v: number | null) => (v === null ? '<span class="muted">—</span>' : e(String(v)));
  const rows = report.comparisons.map(
    (c) =>
      `<tr><td>${e(c.table)}</td><td class="num">${n(c.sourceRows)}</td><td class="num">${n(c.restoredRows)}</td><td><code>${text(
        c.sourceChecksum,
      )}</code></td><td><code>${text(c.restoredChecksum)}</code></td><td>${okCell(c.ok)}</td><td>${text(c.detail)}</td></tr>`,
  );
  return `<table><thead><tr><th>Table</th><th>Source rows</th><th>Restored rows</th><th>Source checksum</th><th>Restored checksum</th><th>Result</th><th>Detail</th></tr></thead><tbody>${rows.join(
    '',
  )}</tbody></table>`;
}

function chainSection(report: DrillReport): string {
  const parts: string[] = [];
  if (report.source) {
    parts.push(
      `<dl><dt>Source last commit</dt><dd>${text(report.source.lastCommitTime)}</dd><dt>Source LSN</dt><dd><code>${e(
        report.source.lsn,
      )}</code></dd></dl>`,
    );
  }
  const r = report.restore;
  if (r) {
    parts.push(`<dl>
<dt>Restore workflow</dt><dd><code>${e(r.restoreWorkflowId)}</code></dd>
<dt>Base backup</dt><dd><code>${e(r.backupId)}</code> taken ${e(r.backupTime)}</dd>
<dt>WAL segments</dt><dd><code>${e(r.firstSegment)}</code> … <code>${e(r.lastSegment)}</code></dd>
<dt>End of archive</dt><dd><code>${e(r.archiveEndLsn)}</code></dd>
<dt>Reached</dt><dd><code>${e(r.achievedLsn)}</code> on timeline ${r.timeline}${
      r.reachedEndOfArchive ? ' (end of archive)' : ''
    }</dd>
<dt>Last transaction</dt><dd>${text(r.lastTransactionTime)}</dd>
</dl>`);
  }
  const f = report.failover;
  if (f) {
    const leg = (name: string, l: { workflowId: string; outcome: string; rtoMs: number | null } | null) =>
      l === null
        ? `<tr><td>${e(name)}</td><td colspan="3" class="muted">not run</td></tr>`
        : `<tr><td>${e(name)}</td><td><code>${e(l.workflowId)}</code></td><td>${e(l.outcome)}</td><td class="num">${duration(
            l.rtoMs === null ? null : Math.round(l.rtoMs),
          )}</td></tr>`;
    parts.push(
      `<table><thead><tr><th>Step</th><th>Workflow</th><th>Outcome</th><th>RTO</th></tr></thead><tbody>${leg(
        'switchover',
        f.switchover,
      )}${leg('switchback', f.switchback)}</tbody></table>`,
    );
  }
  return parts.length ? parts.join('') : '<p class="muted">No backup chain or failover was recorded.</p>';
}

function header(report: DrillReport, level: 'h1' | 'h2'): string {
  return `<${level}>Drill ${e(report.drillId)} — ${e(report.database)} ${badge(report.outcome)}</${level}>
<dl>
<dt>Database</dt><dd>${e(report.database)} (tier ${report.tier})</dd>
<dt>Region</dt><dd>${e(report.region)}</dd>
<dt>Mode</dt><dd>${e(report.mode)}</dd>
<dt>Plan</dt><dd>${e(report.plan.name)} (${e(report.plan.environment)})</dd>
<dt>Target</dt><dd>${text(report.target)}</dd>
<dt>Requested by</dt><dd>${text(report.requestedBy)}</dd>
<dt>Started</dt><dd>${e(report.startedAt)}</dd>
<dt>Ended</dt><dd>${e(report.endedAt)} (${e(
    formatDuration(Math.max(0, Date.parse(report.endedAt) - Date.parse(report.startedAt))),
  )})</dd>
<dt>Workflow</dt><dd><code>${e(report.workflowId)}</code> run <code>${e(report.runId)}</code></dd>
<dt>Temporal Web UI</dt><dd>${link(report.webUiUrl, 'open this run')}</dd>
</dl>`;
}

function reasonsSection(report: DrillReport): string {
  if (report.reasons.length === 0) return '<p class="ok">The drill passed: no reason to report.</p>';
  return `<ul>${report.reasons.map((r) => `<li>${e(r)}</li>`).join('')}</ul>`;
}

/** The body of one report, shared by the single page and the history. */
function reportBody(report: DrillReport, level: 'h1' | 'h2'): string {
  const sub = level === 'h1' ? 'h2' : 'h3';
  return `${header(report, level)}
<${sub}>Timeline</${sub}>
<div>${legend()}</div>
${renderTimelineSvg(report)}
${phasesTable(report)}
<${sub}>Recovery objectives</${sub}>
${objectivesTable(report)}
<${sub}>Why it did not pass</${sub}>
${reasonsSection(report)}
<${sub}>Validation</${sub}>
${validationTable(report)}
<${sub}>Table comparison with the source</${sub}>
${comparisonsTable(report)}
<${sub}>Backup chain used</${sub}>
${chainSection(report)}
<${sub}>Teardown</${sub}>
<p>${okCell(report.teardown.done)} ${text(report.teardown.detail)}</p>`;
}

/** One drill as a self-contained HTML page. */
export function renderDrillReportHtml(report: DrillReport): string {
  return htmlPage(
    `Lifeboat drill ${report.drillId} — ${report.database} — ${report.outcome}`,
    reportBody(report, 'h1'),
  );
}

export interface DrillHistoryOptions {
  /** When the page was generated (passed in: rendering is pure). */
  generatedAt: Date;
  title?: string;
  /** What the history covers, e.g. "orders, since 2026-08-24". */
  scope?: string;
  /** Reports that could not be read, each with why: listed, never silently dropped. */
  unreadable?: { key: string; reason: string }[];
}

/** Many drills, newest first, as one page: a summary table, then every report in full. */
export function renderDrillHistoryHtml(reports: DrillReport[], opts: DrillHistoryOptions): string {
  const title = opts.title ?? 'Lifeboat DR drill history';
  const sorted = [...reports].sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt));
  const anchor = (r: DrillReport) => `drill-${r.database}-${r.drillId}`.replace(/[^A-Za-z0-9_-]/g, '_');
  const summary = sorted.map(
    (r) =>
      `<tr><td><a href="#${e(anchor(r))}">${e(r.drillId)}</a></td><td>${e(r.database)}</td><td>${e(r.mode)}</td><td>${e(
        r.startedAt,
      )}</td><td>${badge(r.outcome)}</td><td class="num">${duration(r.measured.rtoMs)} / ${e(
        formatDuration(r.targets.rtoMs),
      )}</td><td>${verdictText(r.verdicts.rto)}</td><td class="num">${duration(r.measured.rpoMs)} / ${e(
        formatDuration(r.targets.rpoMs),
      )}</td><td>${verdictText(r.verdicts.rpo)}</td></tr>`,
  );
  const unreadable = opts.unreadable ?? [];
  const unreadableHtml = unreadable.length
    ? `<h2>Unreadable reports</h2><table><thead><tr><th>Object</th><th>Why</th></tr></thead><tbody>${unreadable
        .map((u) => `<tr><td><code>${e(u.key)}</code></td><td>${e(u.reason)}</td></tr>`)
        .join('')}</tbody></table>`
    : '';
  const body = `<h1>${e(title)}</h1>
<dl><dt>Generated</dt><dd>${e(opts.generatedAt.toISOString())}</dd>${
    opts.scope ? `<dt>Scope</dt><dd>${e(opts.scope)}</dd>` : ''
  }<dt>Drills</dt><dd>${sorted.length} (${sorted.filter((r) => r.outcome === 'passed').length} passed)</dd></dl>
${
  sorted.length
    ? `<table><thead><tr><th>Drill</th><th>Database</th><th>Mode</th><th>Started</th><th>Outcome</th><th>RTO measured / target</th><th>RTO</th><th>RPO measured / target</th><th>RPO</th></tr></thead><tbody>${summary.join(
        '',
      )}</tbody></table>`
    : '<p class="muted">No drill report in this scope.</p>'
}
${unreadableHtml}
${sorted.map((r) => `<section class="drill" id="${e(anchor(r))}">${reportBody(r, 'h2')}</section>`).join('\n')}`;
  return htmlPage(title, body);
}
