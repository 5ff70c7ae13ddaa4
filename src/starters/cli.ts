// The `lifeboat` CLI: dispatches to one module per operator command.
// Exit codes scripts can trust: 0 success, 1 the operation failed, 2 bad input.
import { EXIT, printError } from './output.ts';

// `--help` lists these without loading a module: loading them all took 0.7 s.
type Command = { run(argv: string[]): Promise<number> };
const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  validate: {
    summary: 'check the plan; nothing is started',
    load: () => import('./validate.ts'),
  },
  stack: {
    summary: 'the local stack on loopback: up | down | status',
    load: () => import('./stack.ts'),
  },
  worker: {
    summary: 'run a worker for a region (polls lifeboat and lifeboat-<region>)',
    load: () => import('./worker.ts'),
  },
  doctor: {
    summary: 'pre-flight: every database, bucket, zone and cluster reachable and as the plan says',
    load: () => import('./doctor.ts'),
  },
  backup: {
    summary:
      'take a backup: full|incremental --database <db> [--detach] [--max-rate 50M] [--checkpoint spread]',
    load: () => import('./backup.ts'),
  },
  backups: {
    summary:
      'the backup catalog: list --database <db> [--json]; hold|release --database <db> --backup <id> --reason <text>; show-k8s --database <db> --backup <id>',
    load: () => import('./backups.ts'),
  },
  failover: {
    summary: 'fail a database over to another region (--planned: switchover with no loss)',
    load: () => import('./failover.ts'),
  },
  approve: {
    summary: 'approve (or --reject --reason) a pending approval of a workflow',
    load: () => import('./approve.ts'),
  },
  status: {
    summary: 'progress of any Lifeboat workflow [--watch]',
    load: () => import('./status.ts'),
  },
  archiver: {
    summary: 'continuous WAL archiving: start|stop|status --database <db>',
    load: () => import('./archiver.ts'),
  },
  monitor: {
    summary: 'region health monitor: start|stop|pause|resume|status --database <db>',
    load: () => import('./monitor.ts'),
  },
  'codec-server': {
    summary: 'serve the payload codec to the Web UI (needs LIFEBOAT_CODEC_KEY)',
    load: () => import('./codec-server.ts'),
  },
  restore: {
    summary:
      'point-in-time restore: --database <db> --to <ISO time | lsn:<LSN> | name:<point> | latest> --region <r> [--port N] [--pause] [--cutover [--approval-timeout D]] [--detach]; `restore discard <id>` removes a restored instance',
    load: () => import('./restore.ts'),
  },
  'wal-fetch': {
    summary: 'restore_command of a restored server: wal-fetch --config <f> --env-file <f> %f %p',
    load: () => import('./wal-fetch.ts'),
  },
  retention: {
    summary:
      'GFS pruning of backups, WAL and Kubernetes objects at every storage location: --database <db> [--dry-run] [--pitr-window 7d] [--kubernetes-grace 1d] [--json]',
    load: () => import('./retention.ts'),
  },
  drill: {
    summary:
      'DR drill: --database <db> --region <r> [--to <target>] [--policy <name>] [--failover [--i-understand-this-is-production]] [--detach]; `drill report` for the history',
    load: () => import('./drill.ts'),
  },
  apply: {
    summary: 'make Temporal Schedules match the plan; start archivers and monitors [--dry-run]',
    load: () => import('./apply.ts'),
  },
  compliance: {
    summary: 'the plan and repository against audit rules, with evidence: [--json] [--html <file>]',
    load: () => import('./compliance.ts'),
  },
  audit: {
    summary:
      'audit records of every workflow run, from the repository: list [--since 30d | <ISO time>] [--database <db>] [--json]',
    load: () => import('./audit.ts'),
  },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const lines = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(13)} ${c.summary}`);
    process.stdout.write(`usage: lifeboat <command> [options]\n\ncommands:\n${lines.join('\n')}\n`);
    return name ? EXIT.ok : EXIT.badInput;
  }
  // `drill report` reads the repository, not Temporal: its own module beside `drill`'s.
  if (name === 'drill' && rest[0] === 'report') return (await import('./drill-report.ts')).run(rest.slice(1));
  // `restore discard` removes what a restore left running: its own module beside `restore`'s.
  if (name === 'restore' && rest[0] === 'discard')
    return (await import('./restore-discard.ts')).run(rest.slice(1));
  const command = commands[name];
  if (!command) {
    printError(`unknown command "${name}"; run lifeboat --help`);
    return EXIT.badInput;
  }
  return (await command.load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    printError(err instanceof Error ? err.message : String(err));
    process.exitCode = EXIT.failed;
  },
);
