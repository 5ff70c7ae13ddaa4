// The base backup's pipeline thread with its files checked as they stream, on the stack's real S3
// server, both ways of compressing: by pg_basebackup itself (its compressed tar read through
// `zstd -d` on the side) and by a `zstd` process after the tar. `cat` of a prepared tar (or of
// its .zst) stands in for pg_basebackup's stdout (the tar is what matters here; the real
// pg_basebackup runs in test/workflows/full-backup.test.ts): a tar whose files match
// backup_manifest becomes an object with the check's result, one with a changed file never
// becomes an object and leaves no upload behind.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { recipientOf } from '../../../src/activities/pipeline/age.ts';
import { processAlive } from '../../../src/activities/pipeline/child.ts';
import type {
  BaseBackupTaskOptions,
  BaseBackupTaskResult,
} from '../../../src/activities/pipeline/base-backup-task.ts';
import { runInThread } from '../../../src/activities/pipeline/in-thread.ts';
import { planStore, type ObjectStore } from '../../../src/activities/ports/object-store.ts';
import type { LifeboatError } from '../../../src/domain/errors.ts';
import { backupManifest, baseTar, FILES, SEGMENT } from '../../support/base-tar.ts';
import { ensureStack, type TestStack } from '../../support/stack.ts';

const TASK = new URL('../../../src/activities/pipeline/base-backup-task.ts', import.meta.url);

describe('base backup task (files checked as they stream)', () => {
  let stack: TestStack;
  let store: ObjectStore;
  let recipient: string;
  let identityFile: string;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-base-task-'));
  const folder = `test/base-backup-task/${Date.now()}/`;

  type By = BaseBackupTaskOptions['compression']['by'];
  /** The tar as "pg_basebackup" writes it: compressed already when it compresses. */
  const output = (name: string, tar: Buffer, by: By) => {
    const file = path.join(dir, `${name}-${by}.tar${by === 'pg_basebackup' ? '.zst' : ''}`);
    fs.writeFileSync(
      file,
      by === 'pg_basebackup' ? execFileSync('zstd', ['-3', '-q', '-c'], { input: tar }) : tar,
    );
    return file;
  };
  const stream = async (file: string, key: string, by: By) => (await start(file, key, by)).result;
  const start = async (file: string, key: string, by: By, producer = { command: 'cat', args: [file] }) =>
    runInThread<BaseBackupTaskOptions, BaseBackupTaskResult>(TASK, {
      pgBasebackup: { ...producer, env: { PATH: process.env.PATH } },
      compression:
        by === 'pg_basebackup' ? { by, zstd: 'zstd' } : { by, command: 'zstd', args: ['-3', '-q', '-c'] },
      age: 'age',
      recipients: [recipient],
      algorithm: 'CRC32C',
      upload: {
        plan: stack.plan,
        env: { ...stack.env },
        key,
        uploadId: await store.createMultipartUpload(key),
        firstPartBytes: 5 << 20,
      },
    });

  before(async () => {
    stack = await ensureStack();
    store = planStore(stack.plan, stack.env, 'primary');
    const identity = stack.env[stack.plan.storage.encryption.identityEnv]!;
    recipient = recipientOf(identity);
    identityFile = path.join(dir, 'identity');
    fs.writeFileSync(identityFile, identity, { mode: 0o600 });
  });

  after(async () => {
    for (const u of await store.listMultipartUploads(folder))
      await store.abortMultipartUpload(u.key, u.uploadId);
    for (const o of await store.list(folder)) await store.delete(o.key);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const by of ['pg_basebackup', 'zstd'] as const) {
    it(`compressed by ${by}: a tar whose files match backup_manifest becomes the object, with the files and WAL found`, async () => {
      const tar = baseTar(FILES, backupManifest('CRC32C', FILES));
      const key = `${folder}good-${by}.tar.zst.age`;
      const file = output('good', tar, by);
      const result = await stream(file, key, by);
      assert.equal(result.streamCheck.files, Object.keys(FILES).length);
      assert.deepEqual(result.streamCheck.walSegments, { [SEGMENT]: 1024 });
      assert.equal(result.rawBytes, tar.length);
      // pg_basebackup's compressed bytes went to both the check and age: opening the object is
      // all verification has left to do; a tar compressed by zstd after the check needs zstd's
      // checksum too.
      assert.equal(result.streamCheck.checked, by === 'pg_basebackup' ? 'compressed' : 'tar');
      const object = Buffer.from(await store.get(key));
      assert.equal(object.length, result.stored.bytes);
      assert.equal(createHash('sha256').update(object).digest('hex'), result.stored.sha256);
      // The stock age opens it to the very bytes "pg_basebackup" wrote (and zstd to the tar).
      const opened = execFileSync('age', ['-d', '-i', identityFile], { input: object, maxBuffer: 1 << 26 });
      const written = fs.readFileSync(file);
      assert.deepEqual(
        by === 'pg_basebackup' ? opened : execFileSync('zstd', ['-d', '-q', '-c'], { input: opened }),
        by === 'pg_basebackup' ? written : tar,
      );
    });

    it(`compressed by ${by}: a tar with a changed file fails naming it, no object and no upload left`, async () => {
      const changed = { ...FILES, 'global/pg_control': Buffer.from('d'.repeat(8192)) };
      const key = `${folder}changed-${by}.tar.zst.age`;
      await assert.rejects(
        stream(output('changed', baseTar(changed, backupManifest('CRC32C', FILES)), by), key, by),
        (err: LifeboatError) => {
          assert.equal(err.code, 'IntegrityError');
          assert.match(err.message, /global\/pg_control: CRC32C differs from the manifest/);
          return true;
        },
      );
      assert.equal(await store.head(key), undefined);
      assert.deepEqual(await store.listMultipartUploads(key), []);
    });
  }

  it('an abort while the producer is silent ends every tool at once, and the upload with them', async () => {
    // A "pg_basebackup" that sends nothing (as one waiting on a spread checkpoint, or throttled)
    // and records its pid: the thread waits in a read of age's output that only its end ends.
    const pidFile = path.join(dir, 'silent.pid');
    const silent = path.join(dir, 'silent-pg_basebackup');
    fs.writeFileSync(silent, `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 600\n`, { mode: 0o755 });
    const key = `${folder}aborted.tar.zst.age`;
    const run = await start('', key, 'pg_basebackup', { command: silent, args: [] });
    while (!fs.existsSync(pidFile) || !fs.readFileSync(pidFile, 'utf8').trim())
      await new Promise((r) => setTimeout(r, 20));
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    run.abort(new Error('cancelled by the test'));
    await assert.rejects(run.result, /cancelled by the test/);
    assert.equal(processAlive(pid), false);
    assert.deepEqual(await store.listMultipartUploads(key), []);
  });
});
