// `lifeboat backups hold|release --database <db> --backup <id> --reason <text>`: a legal hold is a
// write-once marker object in storage (repository.legalHoldEvent), never an edit: releasing writes
// a release marker beside the hold, and the latest marker decides. Retention never deletes a held
// backup nor what it needs. Written straight to storage, like `backups list`, so it works while
// Temporal is down. Dispatched from `lifeboat backups`.
import os from 'node:os';
import { readCatalog } from '../activities/catalog.ts';
import { readHoldEvents } from '../activities/retention.ts';
import { planStore } from '../activities/ports/object-store.ts';
import { copyObject } from '../activities/replicate.ts';
import { describeAwsError } from '../activities/storage.ts';
import { repository } from '../domain/repository.ts';
import { activeHolds, type LegalHoldEvent } from '../domain/retention.ts';
import { parseCommandArgs } from './args.ts';
import { envFilesInto, loadEnvFiles, loadPlanInto } from './plan-args.ts';
import { EXIT, printError, printJson } from './output.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs(
    'backups hold|release',
    argv,
    {
      file: { type: 'string', short: 'f' },
      json: { type: 'boolean' },
      database: { type: 'string' },
      backup: { type: 'string' },
      reason: { type: 'string' },
      'env-file': { type: 'string', multiple: true },
    },
    true,
  );
  if (!args) return EXIT.badInput;
  const problems: string[] = [];
  const action = args._[0];
  if ((action !== 'hold' && action !== 'release') || args._.length > 1)
    problems.push('expected: lifeboat backups hold|release --database <db> --backup <id> --reason <text>');
  const plan = loadPlanInto(problems, args.file as string | undefined);
  const database = args.database as string | undefined;
  const backup = args.backup as string | undefined;
  const reason = args.reason as string | undefined;
  if (!database) problems.push('--database: required');
  else if (plan && !plan.databases[database])
    problems.push(
      `--database: "${database}" is not in the plan; declared: ${Object.keys(plan.databases).join(', ')}`,
    );
  if (!backup) problems.push('--backup: required (a backup id from lifeboat backups list)');
  if (!reason?.trim()) problems.push('--reason: required (it is the audit record)');
  const envFiles = envFilesInto(problems, args['env-file']);
  if (problems.length || !plan || !database || !backup || !reason) {
    for (const p of problems) printError(p);
    return EXIT.badInput;
  }
  loadEnvFiles(envFiles);

  const store = planStore(plan, process.env, 'primary');
  try {
    const catalog = await readCatalog(store, database);
    if (!catalog.entries.some((e) => e.id === backup)) {
      printError(`--backup: no backup "${backup}" of ${database} in ${plan.storage.primary.url}`);
      return EXIT.badInput;
    }
    const held = activeHolds(await readHoldEvents(store, database)).some((h) => h.backupId === backup);
    if (action === 'release' && !held) {
      printError(`${backup} is not under legal hold`);
      return EXIT.failed;
    }
    const at = new Date();
    const event: LegalHoldEvent = {
      backupId: backup,
      action: action as 'hold' | 'release',
      at: at.toISOString(),
      by: process.env.LIFEBOAT_USER ?? os.userInfo().username,
      reason,
    };
    const key = repository.legalHoldEvent('', database, backup, at, event.action);
    // Write-once: a marker is never overwritten (two in the same second: the second is refused).
    if (await store.head(key)) {
      printError(`${key} already exists; try again in a second`);
      return EXIT.failed;
    }
    await store.put(key, `${JSON.stringify(event, null, 2)}\n`);
    // The second copy (3-2-1): a hold must survive the loss of the primary location too.
    const secondary = plan.storage.secondary;
    if (secondary)
      try {
        await copyObject(store, planStore(plan, process.env, 'secondary'), key);
      } catch (err) {
        printError(
          `${key} is on ${plan.storage.primary.url}, but copying it to ${secondary.url} failed: ${err instanceof Error && !('$metadata' in err) ? err.message : describeAwsError(err)}`,
        );
        return EXIT.failed;
      }
    if (args.json) printJson({ database, key, ...event, alreadyHeld: held });
    else
      process.stdout.write(
        action === 'hold'
          ? `${backup} is under legal hold${held ? ' (it already was; this adds a marker)' : ''}: ${reason}\n`
          : `${backup} released from legal hold: ${reason}\n`,
      );
    return EXIT.ok;
  } catch (err) {
    printError(`cannot reach ${plan.storage.primary.url}: ${describeAwsError(err)}`);
    return EXIT.failed;
  }
}
