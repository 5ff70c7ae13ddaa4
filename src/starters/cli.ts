// The `lifeboat` CLI: dispatches to one module per operator command.
// Exit codes scripts can trust: 0 success, 1 the operation failed, 2 bad input.
import { EXIT, printError } from './output.ts';

type Command = { run(argv: string[]): Promise<number>; summary: string };
const commands: Record<string, () => Promise<Command>> = {
  validate: () => import('./validate.ts'),
  stack: () => import('./stack.ts'),
  worker: () => import('./worker.ts'),
  doctor: () => import('./doctor.ts'),
  backup: () => import('./backup.ts'),
  backups: () => import('./backups.ts'),
  failover: () => import('./failover.ts'),
  approve: () => import('./approve.ts'),
  status: () => import('./status.ts'),
  archiver: () => import('./archiver.ts'),
  monitor: () => import('./monitor.ts'),
  'codec-server': () => import('./codec-server.ts'),
  restore: () => import('./restore.ts'),
  'wal-fetch': () => import('./wal-fetch.ts'),
  retention: () => import('./retention.ts'),
  drill: () => import('./drill.ts'),
  apply: () => import('./apply.ts'),
  compliance: () => import('./compliance.ts'),
  audit: () => import('./audit.ts'),
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const lines = await Promise.all(
      Object.entries(commands).map(async ([n, load]) => `  ${n.padEnd(13)} ${(await load()).summary}`),
    );
    process.stdout.write(`usage: lifeboat <command> [options]\n\ncommands:\n${lines.join('\n')}\n`);
    return name ? EXIT.ok : EXIT.badInput;
  }
  // `drill report` reads the repository, not Temporal: its own module beside `drill`'s.
  if (name === 'drill' && rest[0] === 'report') return (await import('./drill-report.ts')).run(rest.slice(1));
  // `restore discard` removes what a restore left running: its own module beside `restore`'s.
  if (name === 'restore' && rest[0] === 'discard')
    return (await import('./restore-discard.ts')).run(rest.slice(1));
  const load = commands[name];
  if (!load) {
    printError(`unknown command "${name}"; run lifeboat --help`);
    return EXIT.badInput;
  }
  return (await load()).run(rest);
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
