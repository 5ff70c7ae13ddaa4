// The base backup's pipeline thread with its files checked as they stream, on the stack's real S3
// server. `cat` of a prepared tar stands in for pg_basebackup's stdout (the tar is what matters
// here; the real pg_basebackup runs in test/workflows/full-backup.test.ts): a tar whose files
// match backup_manifest becomes an object with the check's result, one with a changed file never
// becomes an object and leaves no upload behind.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { recipientOf } from '../../../src/activities/pipeline/age.ts';
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
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-base-task-'));
  const folder = `test/base-backup-task/${Date.now()}/`;

  const stream = async (tarFile: string, key: string) =>
    runInThread<BaseBackupTaskOptions, BaseBackupTaskResult>(TASK, {
      pgBasebackup: { command: 'cat', args: [tarFile], env: { PATH: process.env.PATH } },
      zstd: { command: 'zstd', args: ['-3', '-q', '-c'] },
      recipients: [recipient],
      algorithm: 'CRC32C',
      upload: {
        plan: stack.plan,
        env: { ...stack.env },
        key,
        uploadId: await store.createMultipartUpload(key),
        firstPartBytes: 5 << 20,
      },
    }).result;

  before(async () => {
    stack = await ensureStack();
    store = planStore(stack.plan, stack.env, 'primary');
    recipient = recipientOf(stack.env[stack.plan.storage.encryption.identityEnv]!);
  });

  after(async () => {
    for (const u of await store.listMultipartUploads(folder))
      await store.abortMultipartUpload(u.key, u.uploadId);
    for (const o of await store.list(folder)) await store.delete(o.key);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a tar whose files match backup_manifest: the object, and the files and WAL the check found', async () => {
    const tarFile = path.join(dir, 'good.tar');
    fs.writeFileSync(tarFile, baseTar(FILES, backupManifest('CRC32C', FILES)));
    const key = `${folder}good.tar.zst.age`;
    const result = await stream(tarFile, key);
    assert.equal(result.streamCheck.files, Object.keys(FILES).length);
    assert.deepEqual(result.streamCheck.walSegments, { [SEGMENT]: 1024 });
    assert.equal(result.rawBytes, fs.statSync(tarFile).size);
    assert.equal((await store.head(key))?.size, result.stored.bytes);
  });

  it('a tar with a changed file: an IntegrityError naming it, no object and no upload left', async () => {
    const changed = { ...FILES, 'global/pg_control': Buffer.from('d'.repeat(8192)) };
    const tarFile = path.join(dir, 'changed.tar');
    fs.writeFileSync(tarFile, baseTar(changed, backupManifest('CRC32C', FILES)));
    const key = `${folder}changed.tar.zst.age`;
    await assert.rejects(stream(tarFile, key), (err: LifeboatError) => {
      assert.equal(err.code, 'IntegrityError');
      assert.match(err.message, /global\/pg_control: CRC32C differs from the manifest/);
      return true;
    });
    assert.equal(await store.head(key), undefined);
    assert.deepEqual(await store.listMultipartUploads(key), []);
  });
});
