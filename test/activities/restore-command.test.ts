// The restore_command of a restored server, against a WAL archive on the stack's real S3: the
// background prefetcher, started while the base backup would still be downloading (no server, no
// recovery.signal yet), fetches the timeline history files and the segments ahead; the shell
// script answers PostgreSQL from its folder without starting Node — segments read again and the
// archive's partial end are fetched on request by the running prefetcher — and falls back to
// `lifeboat wal-fetch` once the prefetcher is gone. The fallback is made visible here by taking
// the secrets from wal-fetch.env after the prefetcher has read them: Node then exits 200 (FATAL),
// an answer the script itself never gives.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { loadRecipients } from '../../src/activities/backup.ts';
import { createAgeEncryptor } from '../../src/activities/pipeline/age.ts';
import { createObjectStore, type ObjectStore } from '../../src/activities/ports/object-store.ts';
import { sidecarOf } from '../../src/activities/restore.ts';
import { startWalPrefetcher, writeWalFetchSidecar } from '../../src/activities/restore-wal-fetch.ts';
import { repository } from '../../src/domain/repository.ts';
import { lsnInSegment, segmentName } from '../../src/domain/wal.ts';
import { emptyStores } from '../support/scratch-stores.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';

const SEGMENT = 1024 * 1024;
const TIMELINE = 2;
/** More than the prefetcher keeps ahead (16), so that it is still running, waiting for room. */
const SEGMENTS = 20;

describe('restore_command and the WAL prefetcher', () => {
  let stack: TestStack;
  let store: ObjectStore;
  let work: string;
  let dataDir: string;
  let sidecar: string;
  const segments = new Map<string, Buffer>();
  const history = Buffer.from('1\t0/3000000\tno recovery target specified\n');
  /** The archive's end: segment 21 only as a partial upload (its first 1000 bytes). */
  const end = segmentName(TIMELINE, SEGMENTS + 1, SEGMENT);
  const partial = randomBytes(1000);

  before(async () => {
    stack = await ensureStack();
    const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
    const location = {
      ...stack.plan.storage.primary,
      url: `${stack.plan.storage.primary.url}/restore-command-${run}`,
    };
    store = createObjectStore(location, stack.secrets);
    const recipients = loadRecipients(stack.plan);
    const seal = (data: Buffer) => buffer(Readable.from([data]).pipe(createAgeEncryptor(recipients)));
    for (let segno = 1; segno <= SEGMENTS; segno++) {
      const name = segmentName(TIMELINE, segno, SEGMENT);
      const data = randomBytes(SEGMENT);
      segments.set(name, data);
      await store.put(repository.walSegment('', 'orders', name), await seal(zlib.zstdCompressSync(data)));
    }
    await store.put(repository.timelineHistory('', 'orders', TIMELINE), await seal(history));
    await store.put(
      repository.walPartial('', 'orders', end, lsnInSegment(end, partial.length, SEGMENT)),
      await seal(zlib.zstdCompressSync(partial)),
    );

    work = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-restore-command-'));
    dataDir = path.join(work, 'data');
    fs.mkdirSync(dataDir);
    sidecar = sidecarOf(dataDir);
    writeWalFetchSidecar({
      plan: { ...stack.plan, storage: { ...stack.plan.storage, primary: location } },
      env: stack.secrets,
      sidecar,
      database: 'orders',
      walSegmentSize: SEGMENT,
    });
    startWalPrefetcher(sidecar, segmentName(TIMELINE, 1, SEGMENT), (command, args) => [command, args]);
  });

  after(async () => {
    fs.rmSync(work, { recursive: true, force: true });
    await emptyStores(store);
  });

  const prefetch = (name: string) => path.join(sidecar, 'prefetch', name);
  const prefetcherPid = () => Number(fs.readFileSync(prefetch('.prefetcher'), 'utf8'));
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  async function until(what: string, ok: () => boolean, seconds = 30): Promise<void> {
    for (let i = 0; i < seconds * 10; i++) {
      if (ok()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`${what}: not within ${seconds} s`);
  }
  /** PostgreSQL's call: restore-command.sh %f %p, as the restore_command setting says. */
  function restoreCommand(name: string): { status: number | null; dest: string; stderr: string } {
    const dest = path.join(work, `got-${name}`);
    const r = spawnSync('bash', [path.join(sidecar, 'restore-command.sh'), name, dest], { encoding: 'utf8' });
    return { status: r.status, dest, stderr: r.stderr };
  }

  it('fetches history files and segments ahead before any server runs, and serves them without Node', async () => {
    const first = segmentName(TIMELINE, 1, SEGMENT);
    const sixteenth = segmentName(TIMELINE, 16, SEGMENT);
    await until('history files listed and 16 segments ahead', () =>
      ['.histories', `0000000${TIMELINE}.history`, first, sixteenth].every((f) => fs.existsSync(prefetch(f))),
    );
    assert.ok(
      alive(prefetcherPid()),
      'the prefetcher waits for the server: no recovery.signal yet is no reason to stop',
    );
    // From here on, `lifeboat wal-fetch` itself would fail (FATAL 200): every answer below is the script's.
    fs.writeFileSync(path.join(sidecar, 'wal-fetch.env'), '\n');

    const h = restoreCommand(`0000000${TIMELINE}.history`);
    assert.equal(h.status, 0, h.stderr);
    assert.deepEqual(fs.readFileSync(h.dest), history);
    const absent = restoreCommand(`0000000${TIMELINE + 1}.history`);
    assert.equal(
      absent.status,
      1,
      `a history file the archive lacks is "not there" (1), not FATAL: ${absent.stderr}`,
    );

    for (const segno of [1, 2, 17]) {
      // 17 was beyond the prefetcher's window until 1 was taken: the script waits for it.
      const name = segmentName(TIMELINE, segno, SEGMENT);
      const got = restoreCommand(name);
      assert.equal(got.status, 0, `${name}: ${got.stderr}`);
      assert.ok(fs.readFileSync(got.dest).equals(segments.get(name)!), `${name}: the archived bytes`);
      assert.equal(fs.existsSync(prefetch(name)), false, `${name} was moved out of the prefetch folder`);
    }
  });

  it('serves a segment read again and the archive’s partial end through the running prefetcher', async () => {
    // Replay takes the rest: the prefetcher then reaches the archive's end (segment 21).
    for (let segno = 3; segno <= SEGMENTS; segno++) {
      if (segno === 17) continue;
      const got = restoreCommand(segmentName(TIMELINE, segno, SEGMENT));
      assert.equal(got.status, 0, got.stderr);
    }
    await until('the prefetcher marks the archive’s end', () => fs.existsSync(prefetch('.end')));
    assert.equal(fs.readFileSync(prefetch('.end'), 'utf8'), end);

    const again = segmentName(TIMELINE, 2, SEGMENT);
    const reread = restoreCommand(again);
    assert.equal(reread.status, 0, reread.stderr);
    assert.ok(
      fs.readFileSync(reread.dest).equals(segments.get(again)!),
      'a segment read again: the archived bytes',
    );

    const padded = Buffer.concat([partial, Buffer.alloc(SEGMENT - partial.length)]);
    for (const time of ['first', 'again']) {
      const last = restoreCommand(end);
      assert.equal(last.status, 0, `${time}: ${last.stderr}`);
      assert.ok(fs.readFileSync(last.dest).equals(padded), `${time}: the partial upload, zero-padded`);
    }
    const beyond = restoreCommand(segmentName(TIMELINE, SEGMENTS + 2, SEGMENT));
    assert.equal(beyond.status, 1, `past the archive's end: "not there" (1), not FATAL: ${beyond.stderr}`);
    assert.ok(
      alive(prefetcherPid()),
      'the prefetcher stays at the end: promotion still asks for history files',
    );
  });

  it('falls back to lifeboat wal-fetch once the prefetcher is gone, and the prefetcher stops with the directory', async () => {
    const pid = prefetcherPid();
    fs.rmSync(dataDir, { recursive: true });
    await until('the prefetcher exits once the data directory is gone', () => !alive(pid));
    const name = segmentName(TIMELINE, 18, SEGMENT);
    const got = restoreCommand(name);
    assert.equal(
      got.status,
      200,
      `served by lifeboat wal-fetch (which lacks its secrets here): ${got.stderr}`,
    );
    assert.match(got.stderr, /is not set/);
  });
});
