// `lifeboat backups show-k8s --database <db> --backup <id>`: the Kubernetes objects a backup exported
// (its snapshot: kind, namespace, name, storage key, which were stored by this backup) and the deletions
// since its parent. Read straight from storage, like `backups list`. Dispatched from `lifeboat backups`.
import { createObjectStore } from '../activities/ports/object-store.ts';
import { describeAwsError } from '../activities/storage.ts';
import { parseSnapshot } from '../domain/kubernetes-snapshot.ts';
import { parseManifest } from '../domain/manifest.ts';
import { repository } from '../domain/repository.ts';
import { parseCommandArgs } from './args.ts';
import { databaseInto, envFilesInto, loadEnvFiles, loadPlanInto } from './plan-args.ts';
import { EXIT, printError, printJson, table } from './output.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs(
    'backups show-k8s',
    argv,
    {
      file: { type: 'string', short: 'f' },
      json: { type: 'boolean' },
      database: { type: 'string' },
      backup: { type: 'string' },
      'env-file': { type: 'string', multiple: true },
    },
    true,
  );
  if (!args) return EXIT.badInput;
  const problems: string[] = [];
  if (args._[0] !== 'show-k8s' || args._.length > 1)
    problems.push('expected: lifeboat backups show-k8s --database <db> --backup <id>');
  const plan = loadPlanInto(problems, args.file as string | undefined);
  const database = databaseInto(problems, plan, args.database as string | undefined);
  const backup = args.backup as string | undefined;
  if (!backup) problems.push('--backup: required (a backup id from lifeboat backups list)');
  const envFiles = envFilesInto(problems, args['env-file']);
  if (problems.length || !plan || !database || !backup) {
    for (const p of problems) printError(p);
    return EXIT.badInput;
  }
  loadEnvFiles(envFiles);

  const store = createObjectStore(plan.storage.primary, process.env);
  try {
    const manifestKey = repository.manifest('', database, backup);
    if (!(await store.head(manifestKey))) {
      printError(`--backup: no backup "${backup}" of ${database} in ${plan.storage.primary.url}`);
      return EXIT.badInput;
    }
    const manifest = parseManifest(Buffer.from(await store.get(manifestKey)).toString('utf8'));
    if (!manifest.ok) {
      printError(`${manifestKey}: unreadable manifest: ${manifest.problems.join('; ')}`);
      return EXIT.failed;
    }
    const k = manifest.manifest.kubernetes;
    if (!k) {
      printError(
        `${backup} exported no Kubernetes objects (its backup policy selects none, or it predates the export)`,
      );
      return EXIT.failed;
    }
    const snapshot = parseSnapshot(Buffer.from(await store.get(k.snapshot)).toString('utf8'));
    if (!snapshot.ok) {
      printError(`${k.snapshot}: unreadable snapshot: ${snapshot.problems.join('; ')}`);
      return EXIT.failed;
    }
    const s = snapshot.snapshot;
    if (args.json) {
      printJson({ database, backup, summary: k, snapshot: s });
      return EXIT.ok;
    }
    const stored = new Set(s.newKeys);
    process.stdout.write(
      `${backup}: cluster ${s.cluster}, ${s.objects.length} object(s), ${s.newKeys.length} stored by this backup` +
        `${s.parent ? `, ${s.deletions.length} deleted since ${s.parent}` : ''}\n`,
    );
    process.stdout.write(
      table(
        ['kind', 'namespace', 'name', 'object', 'stored here'],
        s.objects.map((o) => [
          o.kind,
          o.namespace ?? '',
          o.name,
          // The digest part of the key (a keyed hash, or v1's sha256), shortened.
          (/([0-9a-f]{64})\.json\.zst\.age$/.exec(o.key)?.[1] ?? o.key).slice(0, 12),
          stored.has(o.key) ? 'yes' : '',
        ]),
      ),
    );
    for (const d of s.deletions) process.stdout.write(`deleted: ${d.kind} ${d.namespace ?? ''}/${d.name}\n`);
    return EXIT.ok;
  } catch (err) {
    printError(`cannot read ${plan.storage.primary.url}: ${describeAwsError(err)}`);
    return EXIT.failed;
  }
}
