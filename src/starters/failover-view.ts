// How a failover's progress reads in a terminal: one line per step, with state and timing.
import { formatDuration } from '../domain/duration.ts';
import type { FailoverProgress, FailoverResult } from '../domain/failover.ts';
import { describeApprovals } from '../domain/approval.ts';

export function renderFailoverProgress(p: FailoverProgress | FailoverResult): string {
  const lines = [
    `${p.planned ? 'switchover' : 'failover'} of ${p.database}: ${p.sourceRegion ?? '?'} → ${p.targetRegion}  phase: ${p.phase}${p.outcome ? `  outcome: ${p.outcome}` : ''}`,
  ];
  for (const s of p.steps)
    lines.push(
      `  ${s.name.padEnd(8)} ${s.state.padEnd(8)} ${s.durationMs !== undefined ? formatDuration(s.durationMs).padStart(6) : '      '}  ${s.detail ?? ''}`.trimEnd(),
    );
  if (p.lag)
    lines.push(
      `  lag: ${p.lag.bytes !== null ? `${p.lag.bytes} bytes` : 'unknown bytes (source unreachable)'}${p.lag.lastReplaySeconds !== null ? `, last replay ${p.lag.lastReplaySeconds.toFixed(1)}s ago` : ''}`,
    );
  if (p.approval && (p.approval.waiting || p.approval.decisions.length || p.approval.outcome))
    lines.push(
      `  approval: ${p.approval.outcome ?? (p.approval.waiting ? 'waiting' : 'not asked yet')}; ${describeApprovals(p.approval)}${p.approval.waiting && p.approval.deadline ? `; until ${p.approval.deadline}` : ''}`,
    );
  if (p.fencing) lines.push(`  fencing: ${p.fencing.detail}`);
  if (p.message) lines.push(`  ${p.message}`);
  const r = p as Partial<FailoverResult>;
  if (r.rtoMs !== undefined)
    lines.push(`  RTO ${formatDuration(r.rtoMs)}; RPO ${r.rpo?.estimate ?? 'unknown'}`);
  if (r.operatorActions?.length)
    lines.push('  operator actions:', ...r.operatorActions.map((a) => `    - ${a}`));
  return `${lines.join('\n')}\n`;
}
