// A base backup restored by the stock tools (curl → age → bsdtar) from the stack's real S3
// server through a presigned URL: the files as stored, the byte count curl reports, the
// progress, each file flushed behind tar; and the cause named when the chain breaks.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { createAgeEncryptor, recipientOf } from '../../../src/activities/pipeline/age.ts';
import { processAlive, ToolError } from '../../../src/activities/pipeline/child.ts';
import { extractBaseBackup, type ExtractOptions } from '../../../src/activities/pipeline/extract.ts';
import { planStore, type ObjectStore } from '../../../src/activities/ports/object-store.ts';
import { backupManifest, baseTar, FILES, SEGMENT } from '../../support/base-tar.ts';
import { ensureStack, type TestStack } from '../../support/stack.ts';

describe('base backup extraction with curl, age and bsdtar', () => {
  let stack: TestStack;
  let store: ObjectStore;
  let identity: string;
  let tar: Buffer;
  let stored: Buffer;
  let scratch: string;
  const folder = `test/extract/${Date.now()}/`;
  const good = `${folder}base.tar.zst.age`;
  const flipped = `${folder}flipped.tar.zst.age`;
  const notTar = `${folder}not-a-tar.zst.age`;

  const extract = async (key: string, overrides: Partial<ExtractOptions> = {}) => {
    const dataDir = fs.mkdtempSync(path.join(scratch, 'data-'));
    const fractions: number[] = [];
    const result = extractBaseBackup({
      source: await store.presignGet(key, 60),
      identity,
      binaries: { curl: 'curl', age: 'age', bsdtar: 'bsdtar' },
      dataDir,
      runAs: (command, args) => [command, args],
      signal: new AbortController().signal,
      onProgress: (f) => fractions.push(f),
      ...overrides,
    });
    return { dataDir, fractions, result };
  };

  before(async () => {
    stack = await ensureStack();
    store = planStore(stack.plan, stack.env, 'primary');
    identity = stack.env[stack.plan.storage.encryption.identityEnv]!;
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-extract-test-'));
    tar = baseTar(FILES, backupManifest('CRC32C', FILES));
    const zst = execFileSync('zstd', ['-3', '-q', '-c'], { input: tar });
    stored = await buffer(Readable.from([zst]).pipe(createAgeEncryptor([recipientOf(identity)])));
    await store.put(good, stored);
    // One byte of the payload changed, far from the header: only that chunk's tag can tell.
    const changed = Buffer.from(stored);
    changed[changed.length - 20]! ^= 1;
    await store.put(flipped, changed);
    // Well encrypted, but what it holds is no archive.
    const noise = execFileSync('zstd', ['-3', '-q', '-c'], { input: Buffer.alloc(100_000, 'lifeboat ') });
    await store.put(
      notTar,
      await buffer(Readable.from([noise]).pipe(createAgeEncryptor([recipientOf(identity)]))),
    );
  });

  after(async () => {
    for (const o of await store.list(folder)) await store.delete(o.key);
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('restores every file as stored, says how many bytes it downloaded, and flushes each file', async () => {
    const { dataDir, fractions, result } = await extract(good);
    const out = await result;
    for (const [name, body] of Object.entries(FILES))
      assert.deepEqual(fs.readFileSync(path.join(dataDir, name)), body, name);
    assert.equal(fs.readFileSync(path.join(dataDir, 'pg_wal', SEGMENT)).length, 1024);
    assert.equal(out.storedBytes, stored.length);
    // The regular files of the tar: FILES, the WAL segment and backup_manifest; the directories
    // tar names are not flushed, and nothing was skipped.
    assert.deepEqual(out.flush, { flushed: Object.keys(FILES).length + 2, skipped: 0 });
    assert.equal(fractions.at(-1), 1);
  });

  it('a changed byte of the ciphertext fails in age, and the cause is age, not what followed it', async () => {
    const { result } = await extract(flipped);
    await assert.rejects(result, (err: unknown) => {
      assert.ok(err instanceof ToolError, String(err));
      assert.equal(err.tool, 'age');
      assert.equal(err.killed, false);
      return true;
    });
  });

  it('an object that is not there fails in curl with the HTTP status, not in age on its empty input', async () => {
    const { result } = await extract(`${folder}missing.tar.zst.age`);
    await assert.rejects(result, (err: unknown) => {
      assert.ok(err instanceof ToolError, String(err));
      assert.equal(err.tool, 'curl');
      assert.match(err.message, /404/);
      return true;
    });
  });

  it('the wrong identity fails in age, saying so', async () => {
    const other = execFileSync('age-keygen', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const { result } = await extract(good, { identity: other });
    await assert.rejects(result, (err: unknown) => {
      assert.ok(err instanceof ToolError, String(err));
      assert.equal(err.tool, 'age');
      assert.match(err.message, /no identity matched/);
      return true;
    });
  });

  it('a decrypted payload that is no tar fails in bsdtar, saying so', async () => {
    const { dataDir, result } = await extract(notTar);
    await assert.rejects(result, (err: unknown) => {
      assert.ok(err instanceof ToolError, String(err));
      assert.equal(err.tool, 'bsdtar');
      assert.match(err.message, /Unrecognized archive format/);
      return true;
    });
    assert.deepEqual(fs.readdirSync(dataDir), []);
  });

  it('a missing bsdtar is named as not found', async () => {
    const { result } = await extract(good, {
      binaries: { curl: 'curl', age: 'age', bsdtar: 'no-such-bsdtar' },
    });
    await assert.rejects(result, (err: unknown) => {
      assert.ok(err instanceof ToolError && err.notFound, String(err));
      assert.equal(err.tool, 'bsdtar');
      return true;
    });
  });

  it('a missing tool is named as not found', async () => {
    const { result } = await extract(good, {
      binaries: { curl: 'curl', age: 'no-such-age', bsdtar: 'bsdtar' },
    });
    await assert.rejects(result, (err: unknown) => {
      assert.ok(err instanceof ToolError && err.notFound, String(err));
      assert.equal(err.tool, 'age');
      return true;
    });
  });

  it('an abort ends the tools and rejects with its reason', async () => {
    // A curl that never sends a byte (it records its pid and sleeps), so the chain is mid-way.
    const pidFile = path.join(scratch, 'stalled.pid');
    const stalled = path.join(scratch, 'stalled-curl');
    fs.writeFileSync(stalled, `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 600\n`, { mode: 0o755 });
    const abort = new AbortController();
    const { result } = await extract(good, {
      binaries: { curl: stalled, age: 'age', bsdtar: 'bsdtar' },
      signal: abort.signal,
    });
    while (!fs.existsSync(pidFile) || !fs.readFileSync(pidFile, 'utf8').trim())
      await new Promise((r) => setTimeout(r, 20));
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    abort.abort(new Error('cancelled by the test'));
    await assert.rejects(result, /cancelled by the test/);
    assert.equal(processAlive(pid), false);
  });

  it('the tools die with the process that started them: none writes on after its worker is gone', async () => {
    // A worker (a Node process of its own) starts an extraction whose curl never sends a byte,
    // and is SIGKILLed; its curl must not outlive it.
    const pidFile = path.join(scratch, 'orphan.pid');
    const stalled = path.join(scratch, 'orphan-curl');
    fs.writeFileSync(stalled, `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 600\n`, { mode: 0o755 });
    const dataDir = fs.mkdtempSync(path.join(scratch, 'orphan-'));
    const extractModule = new URL('../../../src/activities/pipeline/extract.ts', import.meta.url).href;
    const worker = spawn(
      process.execPath,
      [
        '--disable-warning=ExperimentalWarning',
        '--input-type=module',
        '-e',
        `const { extractBaseBackup } = await import(${JSON.stringify(extractModule)});
         await extractBaseBackup({ source: { url: 'https://127.0.0.1:1/x' }, identity: 'x',
           binaries: { curl: ${JSON.stringify(stalled)}, age: 'age', bsdtar: 'bsdtar' },
           dataDir: ${JSON.stringify(dataDir)}, runAs: (c, a) => [c, a], signal: new AbortController().signal });`,
      ],
      { stdio: 'ignore' },
    );
    while (!fs.existsSync(pidFile) || !fs.readFileSync(pidFile, 'utf8').trim())
      await new Promise((r) => setTimeout(r, 20));
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    assert.equal(processAlive(pid), true);
    worker.kill('SIGKILL');
    await new Promise((r) => worker.once('exit', r));
    for (let i = 0; i < 100 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(processAlive(pid), false, 'the stalled curl outlived its worker');
  });
});
