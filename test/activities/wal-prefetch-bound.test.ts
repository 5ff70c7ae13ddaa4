// The WAL prefetcher told where replay will stop, against a WAL archive on the stack's real S3:
// for a target LSN, up to its segment; for a target time, up to the first segment with a commit at
// or after it (each segment here holds commits a second apart). It fetches no further until replay
// has taken that segment; then it goes on as without a bound (replay may read on: the stop's record
// can lie in the next segment).
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
import { segmentName } from '../../src/domain/wal.ts';
import type { PrefetchUntil } from '../../src/domain/wal-prefetch.ts';
import { emptyStores } from '../support/scratch-stores.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { walSegment } from '../support/wal-segments.ts';

const SEGMENT = 1024 * 1024;
const TIMELINE = 1;
const SEGMENTS = 12;
const seg = (n: number) => segmentName(TIMELINE, n, SEGMENT);
/** Segment n holds commits at BASE + n s and BASE + n s + 500 ms. */
const BASE = Date.parse('2026-12-07T06:00:00Z');

describe('the WAL prefetcher bounded by the restore target', () => {
  let stack: TestStack;
  let work: string;
  const stores: ObjectStore[] = [];
  const segments = new Map<string, Buffer>();
  before(async () => {
    stack = await ensureStack();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-prefetch-bound-'));
    for (let n = 1; n <= SEGMENTS; n++) {
      const wal = walSegment(n, [{ commitAt: BASE + n * 1000 }, { commitAt: BASE + n * 1000 + 500 }], {
        size: SEGMENT,
      });
      // The rest of each segment random, past the zeroes that end its records: distinct bytes.
      randomBytes(SEGMENT - 64 * 1024).copy(wal, 64 * 1024);
      segments.set(seg(n), wal);
    }
  });

  after(async () => {
    fs.rmSync(work, { recursive: true, force: true });
    await emptyStores(...stores);
  });

  async function archive(name: string): Promise<{ location: typeof stack.plan.storage.primary }> {
    const location = {
      ...stack.plan.storage.primary,
      url: `${stack.plan.storage.primary.url}/prefetch-bound-${name}-${process.pid.toString(36)}${Date.now().toString(36)}`,
    };
    const store = createObjectStore(location, stack.secrets);
    stores.push(store);
    const recipients = loadRecipients(stack.plan);
    const put = async (n: number) =>
      store.put(
        repository.walSegment('', 'orders', seg(n)),
        await buffer(
          Readable.from([zlib.zstdCompressSync(segments.get(seg(n))!)]).pipe(createAgeEncryptor(recipients)),
        ),
      );
    for (let n = 1; n <= SEGMENTS; n++) await put(n);
    return { location };
  }

  function startPrefetching(name: string, location: typeof stack.plan.storage.primary, until: PrefetchUntil) {
    const dataDir = path.join(work, name, 'data');
    fs.mkdirSync(dataDir, { recursive: true });
    const sidecar = sidecarOf(dataDir);
    writeWalFetchSidecar({
      plan: { ...stack.plan, storage: { ...stack.plan.storage, primary: location } },
      env: stack.secrets,
      sidecar,
      database: 'orders',
      walSegmentSize: SEGMENT,
    });
    startWalPrefetcher(sidecar, seg(1), (command, args) => [command, args], until);
    const prefetched = (n: number) => fs.existsSync(path.join(sidecar, 'prefetch', seg(n)));
    /** PostgreSQL's call: restore-command.sh %f %p. */
    const take = (n: number) => {
      const dest = path.join(work, name, `got-${seg(n)}`);
      const r = spawnSync('bash', [path.join(sidecar, 'restore-command.sh'), seg(n), dest], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, `${seg(n)}: ${r.stderr}`);
      assert.ok(fs.readFileSync(dest).equals(segments.get(seg(n))!), `${seg(n)}: the archived bytes`);
    };
    return { dataDir, prefetched, take };
  }

  async function until(what: string, ok: () => boolean, seconds = 30): Promise<void> {
    for (let i = 0; i < seconds * 10; i++) {
      if (ok()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`${what}: not within ${seconds} s`);
  }
  const settle = () => new Promise((r) => setTimeout(r, 1500));

  it('a target LSN: fetches up to its segment, and past it once replay has taken it', async () => {
    const { location } = await archive('lsn');
    const p = startPrefetching('lsn', location, { segment: seg(5) });
    await until('segments 1-5 prefetched', () => [1, 2, 3, 4, 5].every(p.prefetched));
    await settle();
    assert.equal(p.prefetched(6), false, 'nothing past the target’s segment while replay has not reached it');
    for (const n of [1, 2, 3, 4]) p.take(n);
    await settle();
    assert.equal(p.prefetched(6), false, 'still held: the target’s segment is not taken yet');
    p.take(5);
    // Replay wanted more than the target's segment: the prefetcher goes on, and 6 is served.
    await until('segments past the target prefetched', () => [6, 7, 8].every(p.prefetched));
    p.take(6);
    fs.rmSync(p.dataDir, { recursive: true });
  });

  it('a target time: fetches up to the first segment with a commit at or after it, and past it once taken', async () => {
    const { location } = await archive('time');
    // Segment 5's second commit (BASE + 5.5 s) is the first at or after the target.
    const p = startPrefetching('time', location, { time: new Date(BASE + 5_200) });
    await until('segments 1-5 prefetched', () => [1, 2, 3, 4, 5].every(p.prefetched));
    await settle();
    // 6 may be there: it was fetched alongside 5 (three at a time) before 5 was read.
    assert.deepEqual(
      [7, 8, 9].filter(p.prefetched),
      [],
      'nothing past the segment where replay stops, but for the downloads already under way',
    );
    for (const n of [1, 2, 3, 4, 5]) p.take(n);
    await until('segments past the stop prefetched once it was taken', () => [6, 7, 8].every(p.prefetched));
    p.take(6);
    fs.rmSync(p.dataDir, { recursive: true });
  });

  it('no bound (a restore point or latest): fetches as far ahead as it may', async () => {
    const { location } = await archive('latest');
    const p = startPrefetching('latest', location, {});
    await until('all the archive’s segments prefetched', () =>
      Array.from({ length: SEGMENTS }, (_, i) => i + 1).every(p.prefetched),
    );
    fs.rmSync(p.dataDir, { recursive: true });
  });
});
