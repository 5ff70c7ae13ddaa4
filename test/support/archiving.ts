// What test files that archive WAL on the real stack share: a copy of the stack's plan under a
// storage prefix of their own (their archive starts empty and no other file's objects are seen),
// a session on the primary, and a start from nothing: no WAL archiver running and no replication
// slot left by an earlier or interrupted run, since a slot left behind holds WAL and a new
// archiver would go on from it.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, WorkflowHandle } from '@temporalio/client';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { workflowIds } from '../../src/domain/naming.ts';
import type { Plan } from '../../src/domain/plan.ts';
import { archiverSlotName } from '../../src/domain/wal.ts';
import { loadPlan } from '../../src/workers/plan-file.ts';
import type { fullBackupWorkflow } from '../../src/workflows/full-backup.ts';
import type { TestStack } from './stack.ts';

/** The database every archiving test works on. */
export const DB = 'orders';

export interface ArchivingPlan {
  planFile: string;
  plan: Plan;
  /** The storage prefix of this plan, `test-<name>-<time>`, under the stack's bucket. */
  folder: string;
}

/**
 * The stack's plan with a storage prefix of its own, `walPartialUpload` set on the database's
 * policy when given, `edit` applied to the raw YAML data; written to `<dir>/lifeboat.yaml`.
 */
export function writeArchivingPlan(
  stack: TestStack,
  dir: string,
  opts: { name: string; walPartialUpload?: string; edit?: (raw: any, folder: string) => void },
): ArchivingPlan {
  const raw = parse(fs.readFileSync(stack.planFile, 'utf8'));
  const folder = `test-${opts.name}-${Date.now()}`;
  raw.storage.primary.url = `s3://${stack.layout.s3.bucket}/${folder}`;
  if (opts.walPartialUpload)
    for (const p of raw.backup.policies as { database: string; walPartialUpload?: string }[])
      if (p.database === DB) p.walPartialUpload = opts.walPartialUpload;
  opts.edit?.(raw, folder);
  const planFile = path.join(dir, 'lifeboat.yaml');
  fs.writeFileSync(planFile, stringify(raw));
  return { planFile, plan: loadPlan(planFile), folder };
}

/** A session on the primary's database as the plan's role. */
export async function connectPrimary(stack: TestStack): Promise<pg.Client> {
  const conn = stack.plan.regions['us-east-1']!.postgres;
  const c = new pg.Client({
    host: conn.host,
    port: conn.port,
    user: conn.user,
    database: DB,
    password: stack.secrets.LIFEBOAT_PG_PASSWORD,
  });
  await c.connect();
  return c;
}

/** Terminates the database's WAL archiver workflow, if one runs. */
export async function terminateArchiver(client: Client, reason: string): Promise<void> {
  await client.workflow
    .getHandle(workflowIds.walArchiver(DB))
    .terminate(reason)
    .catch(() => undefined);
}

/**
 * Drops a replication slot (the archiver's by default) once no walsender holds it: the
 * pg_receivewal of a run just ended may take a moment to go. Throws when it stays held 10 s.
 */
export async function dropSlot(c: pg.Client, slot = archiverSlotName(DB)): Promise<void> {
  for (let i = 0; i < 40; i++) {
    const r = await c.query<{ active: boolean }>(
      'select active from pg_replication_slots where slot_name = $1',
      [slot],
    );
    if (r.rowCount === 0) return;
    if (!r.rows[0]!.active) {
      await c.query('select pg_drop_replication_slot($1)', [slot]);
      return;
    }
    await sleep(250);
  }
  throw new Error(`slot ${slot} stays active`);
}

/**
 * A test file's clean-up of the primary: the archiver's slot (and `slots`) and the test's tables
 * go, then the session closes. Best effort: a clean-up never hides the test's own failure.
 */
export async function releasePrimary(
  admin: pg.Client | undefined,
  tables: string,
  slots: string[] = [],
): Promise<void> {
  if (!admin) return;
  for (const slot of slots) await dropSlot(admin, slot).catch(() => undefined);
  await dropSlot(admin).catch(() => undefined);
  await admin.query(`drop table if exists ${tables}`).catch(() => undefined);
  await admin.end();
}

/** A start from nothing: no archiver workflow, no archiver slot. */
export async function resetArchiver(client: Client, admin: pg.Client): Promise<void> {
  await terminateArchiver(client, 'test starts afresh');
  await dropSlot(admin);
}

/** Starts the database's WAL archiver workflow: streaming runs of `runFor` each. */
export function startArchiver(client: Client, runFor: string): Promise<WorkflowHandle> {
  return client.workflow.start('walArchiverWorkflow', {
    taskQueue: 'lifeboat',
    workflowId: workflowIds.walArchiver(DB),
    args: [{ database: DB, requestedBy: 'test', runFor }],
  });
}

/** A full backup of the database, run to its end under the id that locks backups of it. */
export function fullBackup(client: Client): ReturnType<typeof fullBackupWorkflow> {
  return client.workflow.execute<typeof fullBackupWorkflow>('fullBackupWorkflow', {
    taskQueue: 'lifeboat',
    workflowId: workflowIds.backup(DB),
    workflowIdConflictPolicy: 'FAIL',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    args: [{ database: DB, requestedBy: 'test' }],
  });
}
