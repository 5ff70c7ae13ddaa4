// incrementalBackupWorkflow against the real local stack, through the CLI: a full backup, a small
// change, an incremental that names the WAL since (far fewer bytes than the full), the catalog
// listing both, and the clear failures: no backup to build on, no archiver storing the WAL.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import type pg from 'pg';
import { createObjectStore, type ObjectStore } from '../../src/activities/ports/object-store.ts';
import type { IncrementalBackupResult } from '../../src/domain/incremental.ts';
import { parseManifest } from '../../src/domain/manifest.ts';
import { repository } from '../../src/domain/repository.ts';
import {
  connectPrimary,
  DB,
  releasePrimary,
  resetArchiver,
  terminateArchiver,
  writeArchivingPlan,
} from '../support/archiving.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';
import { tempDir } from '../support/temp-dir.ts';

describe('incremental backup on the local stack', () => {
  let stack: TestStack;
  let worker: WorkerProcess;
  let connection: Connection;
  let client: Client;
  let store: ObjectStore;
  let planFile: string;
  let admin: pg.Client;
  const cli = (args: string[]) => runCli([...args, '-f', planFile], stack.env);

  before(async () => {
    stack = await ensureStack();
    connection = await Connection.connect({ address: stack.layout.temporal.address });
    client = new Client({ connection });
    const tmp = tempDir('lifeboat-incremental-');
    const archiving = writeArchivingPlan(stack, tmp, { name: 'incremental' });
    planFile = archiving.planFile;
    store = createObjectStore(archiving.plan.storage.primary, stack.env);
    admin = await connectPrimary(stack);
    await resetArchiver(client, admin);
    await admin.query('create table if not exists incremental_probe (id bigserial primary key, note text)');
    worker = await startWorker('us-east-1', stack.layout.secretsFile, planFile, {
      ...stack.env,
      LIFEBOAT_SPOOL: path.join(tmp, 'spool'),
    });
  });

  after(async () => {
    if (client) await terminateArchiver(client, 'test over');
    await worker?.stop('SIGTERM');
    await releasePrimary(admin, 'incremental_probe');
    await connection?.close();
  });

  it('refuses without a backup to build on, saying what to do', async () => {
    const run = await cli(['backup', 'incremental', '--database', DB]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /no backup of orders to build on: take a full backup first/);
  });

  it('seals the WAL since a full backup: far fewer bytes, parent named, in the catalog', async () => {
    const archiver = await cli(['archiver', 'start', '--database', DB]);
    assert.equal(archiver.code, 0, archiver.stderr);
    const full = await cli(['backup', 'full', '--database', DB, '--json']);
    assert.equal(full.code, 0, full.stderr);
    const fullResult = JSON.parse(full.stdout) as { backupId: string; storedBytes: number; stopLsn: string };

    await admin.query(
      `insert into incremental_probe (note) select 'small change ' || g from generate_series(1, 500) g`,
    );
    const run = await cli(['backup', 'incremental', '--database', DB, '--json']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const inc = JSON.parse(run.stdout) as IncrementalBackupResult;
    assert.equal(inc.outcome, 'completed');
    assert.equal(inc.parent, fullResult.backupId);
    assert.equal(inc.startLsn, fullResult.stopLsn);
    assert.ok(inc.segments >= 1);
    assert.ok(
      inc.storedBytes * 5 < fullResult.storedBytes,
      `incremental ${inc.storedBytes} bytes vs full ${fullResult.storedBytes}`,
    );
    process.stderr.write(
      `# full ${fullResult.storedBytes} bytes stored; incremental after 500 rows: ${inc.segments} segment(s), ${inc.storedBytes} bytes, archived ${inc.archiveWaitMs} ms after the switch, ${inc.durationMs} ms in all\n`,
    );

    const text = Buffer.from(await store.get(repository.manifest('', DB, inc.backupId))).toString('utf8');
    const parsed = parseManifest(text);
    assert.ok(parsed.ok, JSON.stringify(parsed));
    assert.equal(parsed.manifest.kind, 'incremental');
    assert.equal(parsed.manifest.verification.method, 'content');
    assert.ok(parsed.manifest.objects.every((o) => o.role === 'wal' && o.format === 'zstd+age'));

    const list = await cli(['backups', 'list', '--database', DB, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.stringify(JSON.parse(list.stdout));
    assert.match(
      listed,
      new RegExp(`"id":"${inc.backupId}","kind":"incremental","parent":"${fullResult.backupId}"`),
    );

    // The next incremental builds on this one: consecutive ranges never overlap.
    await admin.query(`insert into incremental_probe (note) values ('another change')`);
    const next = JSON.parse(
      (await cli(['backup', 'incremental', '--database', DB, '--json'])).stdout,
    ) as IncrementalBackupResult;
    assert.equal(next.parent, inc.backupId);
    assert.equal(next.startLsn, inc.stopLsn);
    assert.notEqual(next.firstSegment, inc.lastSegment);

    // The catalog lists oldest first across kinds, a full taken after incrementals last.
    const later = await cli(['backup', 'full', '--database', DB, '--json']);
    assert.equal(later.code, 0, later.stderr);
    const laterId = (JSON.parse(later.stdout) as { backupId: string }).backupId;
    const ids = (
      JSON.parse((await cli(['backups', 'list', '--database', DB, '--json'])).stdout) as {
        backups: { id: string }[];
      }
    ).backups.map((b) => b.id);
    assert.deepEqual(ids.slice(-4), [fullResult.backupId, inc.backupId, next.backupId, laterId]);
  });

  it('fails clearly when the archiver does not store the WAL', async () => {
    const stop = await cli(['archiver', 'stop', '--database', DB]);
    assert.equal(stop.code, 0, stop.stderr);
    await admin.query(`insert into incremental_probe (note) values ('while nobody archives')`);
    const run = await cli(['backup', 'incremental', '--database', DB, '--archive-timeout', '3s']);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /was not archived within 3s: is the WAL archiver of orders running/);
  });
});
