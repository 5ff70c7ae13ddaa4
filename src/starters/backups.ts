// `lifeboat backups list --database <db>`: the catalog, read straight from storage (the manifests),
// so it answers when Temporal or the workers are down. Storage credentials come from this
// process's environment (or --env-file), as for a worker.
import { readCatalog } from '../activities/catalog.ts';
import { createObjectStore } from '../activities/ports/object-store.ts';
import { describeAwsError } from '../activities/storage.ts';
import { formatDuration } from '../domain/duration.ts';
import { LifeboatError } from '../domain/errors.ts';
import { repository } from '../domain/repository.ts';
import { parseCommandArgs } from './args.ts';
import { databaseInto, envFilesInto, loadEnvFiles, loadPlanInto } from './plan-args.ts';
import { mib } from './backup-view.ts';
import { EXIT, printError, printJson, table } from './output.ts';

export async function run(argv: string[]): Promise<number> {
  if (argv[0] === 'hold' || argv[0] === 'release') return (await import('./backups-hold.ts')).run(argv);
  if (argv[0] === 'show-k8s') return (await import('./backups-show-k8s.ts')).run(argv);
  const args = parseCommandArgs(
    'backups',
    argv,
    {
      file: { type: 'string', short: 'f' },
      json: { type: 'boolean' },
      database: { type: 'string' },
      'env-file': { type: 'string', multiple: true },
    },
    true,
  );
  if (!args) return EXIT.badInput;
  const problems: string[] = [];
  if (args._[0] !== 'list' || args._.length > 1)
    problems.push('expected: lifeboat backups list --database <db>');
  const plan = loadPlanInto(problems, args.file as string | undefined);
  const database = databaseInto(problems, plan, args.database as string | undefined);
  const envFiles = envFilesInto(problems, args['env-file']);
  if (problems.length || !plan || !database) {
    for (const p of problems) printError(p);
    return EXIT.badInput;
  }
  loadEnvFiles(envFiles);

  let catalog;
  try {
    catalog = await readCatalog(createObjectStore(plan.storage.primary, process.env), database);
  } catch (err) {
    printError(
      err instanceof LifeboatError
        ? err.message
        : `cannot list ${plan.storage.primary.url}: ${describeAwsError(err)}`,
    );
    return EXIT.failed;
  }
  for (const p of catalog.problems) printError(`${p.key}: unreadable manifest: ${p.problems.join('; ')}`);
  // With storage.secondary: which backups have their manifest (written last) there too.
  const secondary = plan.storage.secondary;
  let copied: Set<string> | undefined;
  if (secondary)
    try {
      const keys = await createObjectStore(secondary, process.env).list(
        repository.manifestsPrefix('', database),
      );
      copied = new Set(keys.map((o) => o.key.slice(o.key.lastIndexOf('/') + 1).replace(/\.json$/, '')));
    } catch (err) {
      printError(`cannot list the second copy in ${secondary.url}: ${describeAwsError(err)}`);
    }
  const copyOf = (id: string) => (copied ? (copied.has(id) ? 'yes' : 'no') : '?');
  if (args.json) {
    printJson({
      database,
      location: plan.storage.primary.url,
      ...(secondary ? { secondLocation: secondary.url } : {}),
      backups: secondary
        ? catalog.entries.map((e) => ({ ...e, secondCopy: copied ? copied.has(e.id) : null }))
        : catalog.entries,
      problems: catalog.problems,
    });
  } else if (catalog.entries.length === 0) {
    process.stdout.write(`no backups of ${database} in ${plan.storage.primary.url}\n`);
  } else {
    process.stdout.write(
      table(
        [
          'id',
          'kind',
          'time',
          'lsn',
          'raw',
          'stored',
          'took',
          'verified',
          ...(secondary ? ['2nd copy'] : []),
        ],
        catalog.entries.map((e) => [
          e.id,
          e.kind,
          e.time.replace(/\.\d{3}Z$/, 'Z'),
          `${e.startLsn}–${e.stopLsn}`,
          mib(e.rawBytes),
          mib(e.storedBytes),
          formatDuration(e.durationMs),
          e.verified ? 'yes' : 'no',
          ...(secondary ? [copyOf(e.id)] : []),
        ]),
      ),
    );
  }
  return catalog.problems.length ? EXIT.failed : EXIT.ok;
}
