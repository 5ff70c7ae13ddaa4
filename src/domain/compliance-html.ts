// The compliance report as a self-contained HTML page for the audit file: one row per rule and
// subject with its evidence, everything escaped, no external resource (same page as the drill
// report's).
import type { ComplianceReport, RuleStatus } from './compliance.ts';
import { escapeHtml as e, htmlPage } from './drill-html.ts';

const STATUS: Record<RuleStatus, { label: string; colour: string }> = {
  pass: { label: 'pass', colour: '#157347' },
  fail: { label: 'fail', colour: '#b02a37' },
  'not-applicable': { label: 'n/a', colour: '#6c757d' },
};

export function renderComplianceHtml(report: ComplianceReport): string {
  const rows = report.results.map((r) => {
    const s = STATUS[r.status];
    return `<tr><td><span class="badge" style="background:${s.colour}">${e(s.label)}</span></td><td>${e(
      r.title,
    )}<br><code class="muted">${e(r.rule)}</code></td><td>${e(r.subject)}</td><td><ul>${r.evidence
      .map((line) => `<li>${e(line)}</li>`)
      .join('')}</ul></td></tr>`;
  });
  const overall = report.passed
    ? '<span class="badge" style="background:#157347">all rules pass</span>'
    : `<span class="badge" style="background:#b02a37">${report.counts.fail} failing</span>`;
  const body = `<h1>Lifeboat compliance — ${e(report.plan)} ${overall}</h1>
<dl><dt>Plan</dt><dd>${e(report.plan)} (${e(report.environment)})</dd><dt>Evaluated</dt><dd>${e(
    report.evaluatedAt,
  )}</dd><dt>Results</dt><dd>${report.counts.pass} pass, ${report.counts.fail} fail, ${
    report.counts['not-applicable']
  } not applicable</dd></dl>
<table><thead><tr><th>Status</th><th>Rule</th><th>Subject</th><th>Evidence</th></tr></thead><tbody>${rows.join(
    '',
  )}</tbody></table>`;
  return htmlPage(`Lifeboat compliance — ${report.plan}`, body);
}
