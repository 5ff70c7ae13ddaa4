// One streaming run of continuous WAL archiving, on the primary region's worker: it streams for a
// bounded time and returns; the workflow loops (and continues-as-new) around it.
//
// Why it is built this way:
// - pg_receivewal streams into a worker-local spool **without a slot of its own**. The archiver's
//   physical slot `lifeboat_wal_<db>` is never active: it is advanced with
//   pg_replication_slot_advance() only once a segment is in storage. So the primary keeps every
//   segment that is not yet archived — losing the worker and its spool loses nothing — bounded by
//   max_slot_wal_keep_size, past which PostgreSQL invalidates the slot (reported as slot-lost)
//   rather than fill its disk.
// - A session advisory lock on the primary makes one archiver per database the only streamer; a
//   walsender left by a dead archiver is ended, and its pg_receivewal gets SIGINT when its worker
//   dies (setpriv --pdeathsig).
// - Objects are written once: a segment is uploaded only if its key is absent; each partial
//   upload has its own key (the LSN it reaches).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  activityInfo,
  ApplicationFailure,
  cancellationSignal,
  heartbeat,
  log,
  metricMeter,
} from '@temporalio/activity';
import type { MetricCounter, MetricGauge } from '@temporalio/common';
import type pg from 'pg';
import { LifeboatError } from '../domain/errors.ts';
import { lsnDistance } from '../domain/lsn.ts';
import { dbnameOf } from '../domain/plan.ts';
import { repository } from '../domain/repository.ts';
import {
  archiverSlotName,
  continuity,
  lsnInSegment,
  segmentEndLsn,
  segmentName,
  segmentNumber,
  segmentOfLsn,
  timelineOf,
  type ArchiveWalEndReason,
  type ArchiveWalInput,
  type ArchiveWalProgress,
  type ArchiveWalResult,
  type WalFile,
} from '../domain/wal.ts';
import { loadRecipients } from './backup.ts';
import {
  conninfoValue,
  offServerHistory,
  startWalReceiver,
  type WalReceiver,
} from './pipeline/wal-receiver.ts';
import { scanSpool, seedPartial, spoolHasWal, validExtent } from './pipeline/wal-spool.ts';
import { copyObject } from './replicate.ts';
import type { Environment } from './ports/environment.ts';
import type { ObjectStore } from './ports/object-store.ts';
import { connectPostgres, type SqlClient } from './ports/postgres.ts';
import { describeAwsError } from './storage.ts';
import type { WalActivityDeps } from './wal.ts';
import { sealWal } from './wal-seal.ts';

const TICK_MS = 500;
const HEARTBEAT_MS = 2000;
const RETRY_CONTROL_MS = 5000;
const RETRY_STORAGE_MS = 3000;
const SLOT_CHECK_MS = 10_000;
/** A receiver that stays up this long is streaming; one down this long is reported. */
const RECEIVER_STABLE_MS = 5000;
const RECEIVER_DOWN_REPORT_MS = 15_000;

/** Spools in use by a run in this worker process: two runs on one spool would corrupt it. */
const activeSpools = new Set<string>();

/** The timeline the primary writes on now. */
async function primaryTimeline(c: SqlClient): Promise<number> {
  const r = await c.query<{ walfile: string }>(`select pg_walfile_name(pg_current_wal_lsn()) as walfile`);
  return timelineOf(r.rows[0]!.walfile);
}

/** The plan's primary storage location, where the archive is written. */
export function primaryStore(deps: WalActivityDeps): ObjectStore {
  const store = deps.stores.primary;
  if (!store) throw new LifeboatError('InvalidInput', 'the plan has no primary storage location');
  return store;
}

function pgBinary(env: Environment, versionNum: number, name: string): string {
  if (env.LIFEBOAT_PG_BINDIR) return path.join(env.LIFEBOAT_PG_BINDIR, name);
  const debian = `/usr/lib/postgresql/${Math.floor(versionNum / 10000)}/bin/${name}`;
  return fs.existsSync(debian) ? debian : name;
}

class StorageError extends Error {}

export class ArchiveRun {
  readonly deps: WalActivityDeps;
  readonly input: ArchiveWalInput;
  readonly slot: string;
  readonly signal = cancellationSignal();
  readonly store: ObjectStore;
  /** storage.secondary: each object goes there too before its spool file is let go (3-2-1). */
  readonly secondary?: ObjectStore;
  readonly recipients: string[];
  readonly spool: string;
  readonly deadline: number;
  readonly metrics: {
    archived: MetricCounter;
    storedBytes: MetricCounter;
    spoolSegments: MetricGauge;
    storageReachable: MetricGauge;
    slotSafeBytes: MetricGauge;
    lastArchivedTime: MetricGauge;
  };

  control: SqlClient | undefined;
  controlError: string | undefined;
  nextControlAttempt = 0;
  versionNum = 0;
  segmentSize: number | undefined;
  timeline: number | undefined;

  receiver: WalReceiver | undefined;
  receiverError: string | undefined;
  receiverDownSince: number | undefined;
  receiverUp: boolean;
  nextReceiverStart = 0;
  receiverFailures = 0;

  storageReachable: boolean;
  storageProbed = false;
  storageError: string | undefined;
  nextStorageAttempt = 0;

  lastArchived: string | undefined;
  slotTarget: string | undefined;
  slotAdvanced: string | undefined;
  nextSlotCheck = 0;
  lastPartialAt = 0;
  lastPartialKey: string | undefined;
  uploadedHistories = new Set<number>();
  end: ArchiveWalEndReason | undefined;

  result: ArchiveWalResult;

  constructor(deps: WalActivityDeps, input: ArchiveWalInput) {
    this.deps = deps;
    this.input = input;
    if (!deps.plan.databases[input.database])
      throw new LifeboatError('UnknownReference', `database "${input.database}" is not in the plan`);
    this.slot = archiverSlotName(input.database);
    this.store = primaryStore(deps);
    this.secondary = deps.stores.secondary;
    this.recipients = loadRecipients(deps.plan);
    this.spool = path.join(
      deps.spoolDir ?? path.resolve('.lifeboat', 'spool'),
      deps.plan.name,
      input.database,
    );
    this.deadline = Date.now() + input.runForMs;
    this.storageReachable = input.storageReachable;
    this.receiverUp = input.receiverRunning;
    this.lastArchived = input.lastArchived;
    // A retried attempt goes on from its predecessor's last heartbeat, not from the run's start.
    const before = activityInfo().heartbeatDetails as ArchiveWalProgress | undefined;
    const resumed =
      before?.lastArchived && (!input.lastArchived || before.lastArchived > input.lastArchived)
        ? { segment: before.lastArchived, at: before.lastArchivedAt ?? new Date().toISOString() }
        : undefined;
    if (resumed) this.lastArchived = resumed.segment;
    const meter = metricMeter.withTags({ database: input.database });
    this.metrics = {
      archived: meter.createCounter('lifeboat_wal_segments_archived', 'segments', 'WAL segments stored'),
      storedBytes: meter.createCounter('lifeboat_wal_stored_bytes', 'By', 'bytes of WAL stored (zstd + age)'),
      spoolSegments: meter.createGauge(
        'lifeboat_wal_spool_segments',
        'int',
        'segments',
        'completed segments waiting in the spool',
      ),
      storageReachable: meter.createGauge(
        'lifeboat_wal_storage_reachable',
        'int',
        '',
        '1 when storage takes uploads',
      ),
      slotSafeBytes: meter.createGauge(
        'lifeboat_wal_slot_safe_bytes',
        'int',
        'By',
        'WAL the primary can still write before the slot is lost',
      ),
      // The archive lag: time() minus this in PromQL (a gauge of an age would be stale between sets).
      lastArchivedTime: meter.createGauge(
        'lifeboat_wal_last_archived_timestamp_seconds',
        'float',
        's',
        'when the newest completed segment was stored (Unix seconds)',
      ),
    };
    this.result = {
      reason: 'time-budget',
      segmentsArchived: 0,
      segmentsAlreadyStored: 0,
      rawBytes: 0,
      storedBytes: 0,
      partialsUploaded: 0,
      historyFilesUploaded: [],
      gaps: [],
      storage: { reachable: input.storageReachable },
      receiver: { running: input.receiverRunning },
      spool: { segments: 0, bytes: 0 },
      slot: { name: this.slot },
      ...(resumed ? { lastArchived: resumed } : {}),
    };
  }

  async run(): Promise<ArchiveWalResult> {
    fs.mkdirSync(this.spool, { recursive: true, mode: 0o700 });
    if (activeSpools.has(this.spool))
      throw ApplicationFailure.retryable(
        `another archiver run of ${this.input.database} is active in this worker (spool ${this.spool})`,
        'ArchiverBusy',
      );
    activeSpools.add(this.spool);
    const beat = setInterval(() => heartbeat(this.progress()), HEARTBEAT_MS);
    heartbeat(this.progress());
    const onShutdown = () => (this.end ??= 'worker-shutdown');
    if (this.deps.shutdown?.aborted) onShutdown();
    this.deps.shutdown?.addEventListener('abort', onShutdown);
    try {
      while (!this.signal.aborted && Date.now() < this.deadline && !this.end) {
        await this.tick();
        await this.pause(TICK_MS);
      }
    } finally {
      clearInterval(beat);
      this.deps.shutdown?.removeEventListener('abort', onShutdown);
      // Forgotten first, so that its exit is not taken for a failure.
      const receiver = this.receiver;
      this.receiver = undefined;
      await receiver?.stop();
      await this.control?.end().catch(() => undefined);
      this.control = undefined;
      activeSpools.delete(this.spool);
    }
    if (this.signal.aborted) throw this.signal.reason as Error;
    return this.finish();
  }

  async tick(): Promise<void> {
    const now = Date.now();
    if (!this.storageProbed) await this.probeStorage();
    if (!this.control && now >= this.nextControlAttempt) await this.connectControl();
    if (this.control && !this.receiver && now >= this.nextReceiverStart) await this.startReceiver();
    this.watchReceiver(now);
    if (this.segmentSize) await this.drain();
    if (this.control) await this.maintainSlot(now);
    if (
      this.input.announceStart &&
      this.storageProbed &&
      this.receiver &&
      now - this.receiver.startedAt >= RECEIVER_STABLE_MS
    )
      this.end ??= 'started';
  }

  /**
   * Storage is asked once at the start of a run, so an outage shows even when no WAL is written.
   * A new archiver (no last segment known) reads where the archive ends, so that it goes on from
   * there and a hole since is reported, e.g. after a stop or a failover.
   */
  async probeStorage(): Promise<void> {
    if (!this.storageReachable && Date.now() < this.nextStorageAttempt) return;
    try {
      await this.store.headBucket();
      if (!this.lastArchived) {
        const last = (await this.store.list(repository.walPrefix('', this.input.database)))
          .map((o) => /\/([0-9A-F]{24})\.zst\.age$/.exec(o.key)?.[1])
          .filter((name): name is string => name !== undefined)
          .sort()
          .at(-1);
        if (last) {
          this.lastArchived = last;
          log.info(
            `WAL archiver of ${this.input.database}: the archive ends at ${last}; going on from there`,
          );
        }
      }
      this.storageProbed = true;
      this.storageUp();
    } catch (err) {
      this.storageDown(describeAwsError(err) || (err as Error).message);
    }
  }

  pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.signal.addEventListener('abort', done, { once: true });
    });
  }

  // -------------------------------------------------------------------------------------------
  // The primary: control connection, advisory lock, slot

  async connectControl(): Promise<void> {
    const region = this.deps.plan.regions[this.input.region];
    if (!region)
      throw new LifeboatError('UnknownReference', `region "${this.input.region}" is not in the plan`);
    let c: SqlClient | undefined;
    try {
      c = await connectPostgres(
        region.postgres,
        dbnameOf(this.deps.plan, this.input.database),
        this.deps.env,
      );
      // A long-lived client must listen for errors, or a dropped connection crashes the worker.
      (c as pg.Client).on('error', (err) => {
        this.controlError = err.message;
        if (this.control === c) this.control = undefined;
      });
      const lock = await c.query<{ ok: boolean }>(`select pg_try_advisory_lock(hashtext($1)) as ok`, [
        `lifeboat:${this.slot}`,
      ]);
      if (!lock.rows[0]!.ok)
        throw new Error(
          `another archiver of ${this.input.database} holds the lock on the primary; waiting for it`,
        );
      const facts = await c.query<{ vnum: number; seg: string; recovery: boolean }>(
        `select current_setting('server_version_num')::int as vnum, pg_is_in_recovery() as recovery,
                (select setting from pg_settings where name = 'wal_segment_size') as seg`,
      );
      const f = facts.rows[0]!;
      if (f.recovery)
        throw new Error(`${region.postgres.host}:${region.postgres.port} is in recovery, not a primary`);
      this.versionNum = f.vnum;
      this.segmentSize = Number(f.seg);
      this.timeline = await primaryTimeline(c);
      await c.query(
        `select pg_create_physical_replication_slot($1, true)
           where not exists (select from pg_replication_slots where slot_name = $1)`,
        [this.slot],
      );
      // A walsender still streaming under our name belongs to an archiver that lost the lock (its
      // worker died): end it so that it cannot write next to ours.
      await c.query(`select pg_terminate_backend(pid) from pg_stat_replication where application_name = $1`, [
        this.slot,
      ]);
      this.control = c;
      this.controlError = undefined;
    } catch (err) {
      if (err instanceof LifeboatError) throw err;
      await c?.end().catch(() => undefined);
      this.controlError = (err as Error).message;
      this.receiverError = `primary ${region.postgres.host}:${region.postgres.port}: ${this.controlError}`;
      this.receiverDownSince ??= Date.now();
      this.nextControlAttempt = Date.now() + RETRY_CONTROL_MS;
    }
  }

  async maintainSlot(now: number): Promise<void> {
    const c = this.control!;
    try {
      if (this.slotTarget && this.slotTarget !== this.slotAdvanced) {
        // Never past what the primary has written: a fresh segment end is always at or behind it.
        await c.query(`select pg_replication_slot_advance($1, $2::pg_lsn)`, [this.slot, this.slotTarget]);
        this.slotAdvanced = this.slotTarget;
      }
      if (now < this.nextSlotCheck) return;
      this.nextSlotCheck = now + SLOT_CHECK_MS;
      const r = await c.query<{ restart_lsn: string | null; wal_status: string | null; safe: string | null }>(
        `select restart_lsn::text, wal_status, safe_wal_size::text as safe from pg_replication_slots where slot_name = $1`,
        [this.slot],
      );
      const row = r.rows[0];
      this.result.slot = {
        name: this.slot,
        restartLsn: row?.restart_lsn ?? undefined,
        walStatus: row?.wal_status ?? 'missing',
        safeWalSizeBytes: row?.safe ? Number(row.safe) : undefined,
      };
      if (row?.safe) this.metrics.slotSafeBytes.set(Number(row.safe));
      if (!row || row.wal_status === 'lost') {
        // PostgreSQL gave up the slot at max_slot_wal_keep_size: WAL not yet archived is gone from
        // the primary. Recreate it so archiving goes on; the missing segments show up as a gap.
        this.result.slot.lost = true;
        log.error(
          `WAL archiver of ${this.input.database}: slot ${this.slot} ${row ? 'lost' : 'missing'}; recreating it`,
        );
        if (row) await c.query(`select pg_drop_replication_slot($1)`, [this.slot]);
        await c.query(`select pg_create_physical_replication_slot($1, true)`, [this.slot]);
        this.slotAdvanced = undefined;
        this.end ??= 'slot-lost';
      }
    } catch (err) {
      this.controlError = (err as Error).message;
      log.warn(`WAL archiver of ${this.input.database}: slot upkeep failed: ${this.controlError}`);
      await c.end().catch(() => undefined);
      if (this.control === c) this.control = undefined;
      this.nextControlAttempt = now + RETRY_CONTROL_MS;
    }
  }

  // -------------------------------------------------------------------------------------------
  // pg_receivewal

  async startReceiver(): Promise<void> {
    const region = this.deps.plan.regions[this.input.region]!;
    const segmentSize = this.segmentSize!;
    if (this.spoolOffHistory && !(await this.leaveSpoolTimeline())) return;
    if (!spoolHasWal(this.spool)) {
      // Resume where the archive ends; on a first start, where the slot holds WAL from (the redo
      // point of the last checkpoint). Always on the server's current timeline: the walsender
      // serves older positions of its history under it.
      let start: string;
      if (this.lastArchived) {
        start = segmentName(this.timeline!, segmentNumber(this.lastArchived, segmentSize) + 1, segmentSize);
      } else {
        const r = await this.control!.query<{ restart_lsn: string | null }>(
          `select restart_lsn::text from pg_replication_slots where slot_name = $1`,
          [this.slot],
        );
        start = segmentOfLsn(this.timeline!, r.rows[0]?.restart_lsn ?? '0/0', segmentSize);
      }
      seedPartial(this.spool, start, segmentSize);
    }
    const conninfo = [
      `host=${conninfoValue(region.postgres.host)}`,
      `port=${region.postgres.port}`,
      `user=${conninfoValue(region.postgres.user)}`,
      `application_name=${this.slot}`,
      `sslmode=${region.postgres.sslMode}`,
      ...(region.postgres.caFile ? [`sslrootcert=${conninfoValue(region.postgres.caFile)}`] : []),
    ].join(' ');
    const password = region.postgres.passwordEnv ? this.deps.env[region.postgres.passwordEnv] : undefined;
    const receiver = startWalReceiver({
      binary: pgBinary(this.deps.env, this.versionNum, 'pg_receivewal'),
      spool: this.spool,
      conninfo,
      password,
      log: (line) => {
        log.debug(`pg_receivewal: ${line}`);
      },
    });
    this.receiver = receiver;
    void receiver.exited.then((exit) => {
      if (this.receiver !== receiver) return;
      this.receiver = undefined;
      this.receiverFailures++;
      this.receiverError = exit.stderr || `pg_receivewal exited with ${exit.code ?? exit.signal}`;
      this.receiverDownSince ??= Date.now();
      this.nextReceiverStart = Date.now() + Math.min(30_000, 1000 * 2 ** Math.min(this.receiverFailures, 5));
      log.warn(`WAL archiver of ${this.input.database}: pg_receivewal stopped: ${this.receiverError}`);
      if (/has already been removed/.test(exit.stderr)) this.restartAtSlot();
      else if (offServerHistory(exit.stderr)) this.spoolOffHistory = true;
    });
  }

  /**
   * The primary no longer has the WAL the archive needs next (removed past the slot, e.g. a slot
   * recreated after a failover or after it was lost): stream from what the slot holds; the
   * segments in between are reported as a gap when the next one is archived.
   */
  restartAtSlot(): void {
    for (const name of fs.readdirSync(this.spool))
      if (name.endsWith('.partial')) fs.rmSync(path.join(this.spool, name), { force: true });
    this.lastArchivedBeforeReseed = this.lastArchived;
    this.lastArchived = undefined;
    this.nextReceiverStart = 0;
  }
  lastArchivedBeforeReseed: string | undefined;

  /**
   * pg_receivewal resumes from the spool's newest file, and that file is on no timeline of the
   * primary's history. Store everything the spool holds (completed segments as such, partials as
   * partials), then stream on the primary's current timeline from what the slot holds; segments
   * in between are in storage already or reported as a gap. False while storage is down: the
   * spool is kept until its WAL is stored.
   */
  async leaveSpoolTimeline(): Promise<boolean> {
    await this.drain();
    try {
      for (const p of scanSpool(this.spool, this.segmentSize!).partials)
        await this.uploadPartial(p as WalFile & { segment: string }, true);
    } catch (err) {
      if (!(err instanceof StorageError)) throw err;
      this.storageDown(err.message);
    }
    if (spoolHasWal(this.spool)) {
      this.nextReceiverStart = Date.now() + RETRY_STORAGE_MS;
      return false;
    }
    const from = this.timeline;
    this.timeline = await primaryTimeline(this.control!);
    log.warn(
      `WAL archiver of ${this.input.database}: the spool's WAL is on no timeline of the primary's history (${this.receiverError ?? ''}); stored it and streaming on timeline ${this.timeline}${from !== this.timeline ? ` (was ${from})` : ''} from the slot`,
    );
    this.restartAtSlot();
    this.spoolOffHistory = false;
    this.result.spoolTimelineLeft = (this.result.spoolTimelineLeft ?? 0) + 1;
    return true;
  }
  spoolOffHistory = false;

  watchReceiver(now: number): void {
    if (this.receiver && now - this.receiver.startedAt >= RECEIVER_STABLE_MS) {
      this.receiverFailures = 0;
      this.receiverDownSince = undefined;
      this.receiverError = undefined;
      if (!this.receiverUp) {
        this.receiverUp = true;
        this.end ??= 'receiver-restored';
      }
    }
    if (
      this.receiverUp &&
      this.receiverDownSince &&
      now - this.receiverDownSince >= RECEIVER_DOWN_REPORT_MS
    ) {
      this.receiverUp = false;
      this.end ??= 'receiver-down';
    }
  }

  // -------------------------------------------------------------------------------------------
  // Uploads

  async drain(): Promise<void> {
    if (!this.storageReachable && Date.now() < this.nextStorageAttempt) return;
    const segmentSize = this.segmentSize!;
    const contents = scanSpool(this.spool, segmentSize);
    try {
      for (const h of contents.histories) await this.uploadHistory(h);
      for (const s of contents.segments) await this.uploadSegment(s as WalFile & { segment: string });
      // Partials other than the newest are left behind by a timeline switch (or a reseed): store
      // what they hold once, as partials, and let them go.
      for (const p of contents.partials.slice(0, -1))
        await this.uploadPartial(p as WalFile & { segment: string }, true);
      const current = contents.partials.at(-1);
      if (current && Date.now() - this.lastPartialAt >= this.input.partialEveryMs)
        await this.uploadPartial(current as WalFile & { segment: string }, false);
      this.storageUp();
    } catch (err) {
      if (!(err instanceof StorageError)) throw err;
      this.storageDown(err.message);
    }
  }

  async put(key: string, body: Buffer): Promise<'stored' | 'present'> {
    let outcome: 'stored' | 'present';
    try {
      outcome = (await this.store.head(key)) ? 'present' : 'stored';
      if (outcome === 'stored') await this.store.put(key, body);
    } catch (err) {
      throw new StorageError(describeAwsError(err) || (err as Error).message);
    }
    // The second copy is taken from what the primary holds (an earlier attempt's sealing differs
    // byte for byte from this one's). Until it is there, the spool keeps the file and the archiver
    // reports storage as down, naming the secondary: both copies, or the alert.
    if (this.secondary)
      try {
        const sha256 = outcome === 'stored' ? createHash('sha256').update(body).digest('hex') : undefined;
        await copyObject(this.store, this.secondary, key, { expectedSha256: sha256 });
      } catch (err) {
        const why =
          err instanceof LifeboatError ? err.message : describeAwsError(err) || (err as Error).message;
        throw new StorageError(
          `second copy to s3://${this.secondary.bucket}/${this.secondary.prefix}: ${why}`,
        );
      }
    return outcome;
  }

  async uploadHistory(h: WalFile): Promise<void> {
    const file = path.join(this.spool, h.name);
    if (!this.uploadedHistories.has(h.timeline)) {
      const body = await sealWal(fs.readFileSync(file), this.recipients, false);
      await this.put(repository.timelineHistory('', this.input.database, h.timeline), body);
      this.uploadedHistories.add(h.timeline);
      this.result.historyFilesUploaded.push(h.timeline);
    }
    fs.rmSync(file, { force: true });
  }

  async uploadSegment(s: WalFile & { segment: string }): Promise<void> {
    const segmentSize = this.segmentSize!;
    const file = path.join(this.spool, s.name);
    const previous = this.lastArchived ?? this.lastArchivedBeforeReseed;
    let link = previous ? continuity(previous, s.segment, segmentSize) : undefined;
    if (link?.kind === 'gap' && (await this.storedBetween(previous!, s.segment))) link = { kind: 'next' };
    const data = fs.readFileSync(file);
    if (data.length !== segmentSize)
      throw new LifeboatError('IntegrityError', `${file} has ${data.length} bytes, not ${segmentSize}`);
    const sealed = await sealWal(data, this.recipients);
    const outcome = await this.put(repository.walSegment('', this.input.database, s.segment), sealed);
    if (outcome === 'present') this.result.segmentsAlreadyStored++;
    else {
      this.result.segmentsArchived++;
      this.result.rawBytes += data.length;
      this.result.storedBytes += sealed.length;
      this.metrics.archived.add(1);
      this.metrics.storedBytes.add(sealed.length);
    }
    fs.rmSync(file, { force: true });
    if (link?.kind === 'behind') return;
    if (link?.kind === 'gap') {
      const gap = { at: new Date().toISOString(), after: previous!, next: s.segment, missing: link.missing };
      this.result.gaps.push(gap);
      log.error(
        `WAL archiver of ${this.input.database}: gap of ${link.missing} segment(s) between ${previous} and ${s.segment}`,
      );
      this.end ??= 'gap';
    }
    this.lastArchivedBeforeReseed = undefined;
    this.lastArchived = s.segment;
    this.timeline = Math.max(this.timeline ?? 0, timelineOf(s.segment));
    this.result.lastArchived = { segment: s.segment, at: new Date().toISOString() };
    this.metrics.lastArchivedTime.set(Date.parse(this.result.lastArchived.at) / 1000);
    const end = segmentEndLsn(s.segment, segmentSize);
    if (!this.slotTarget || lsnDistance(end, this.slotTarget) > 0) this.slotTarget = end;
  }

  /**
   * Whether every segment between two is in storage already: an attempt that died after uploading
   * (and after its last heartbeat) leaves the archive ahead of what this one was told, which is
   * not a gap. Up to 64 segments are looked up; a longer hole is a gap in any case.
   */
  async storedBetween(previous: string, next: string): Promise<boolean> {
    const size = this.segmentSize!;
    const from = segmentNumber(previous, size) + 1;
    const to = segmentNumber(next, size);
    if (to - from > 64) return false;
    for (let n = from; n < to; n++) {
      const names = new Set([
        segmentName(timelineOf(next), n, size),
        segmentName(timelineOf(previous), n, size),
      ]);
      let found = false;
      for (const name of names)
        if (await this.present(repository.walSegment('', this.input.database, name))) found = true;
      if (!found) return false;
    }
    return true;
  }

  async present(key: string): Promise<boolean> {
    try {
      return (await this.store.head(key)) !== undefined;
    } catch (err) {
      throw new StorageError(describeAwsError(err) || (err as Error).message);
    }
  }

  async uploadPartial(p: WalFile & { segment: string }, stale: boolean): Promise<void> {
    const file = path.join(this.spool, p.name);
    let data: Buffer;
    try {
      data = fs.readFileSync(file);
    } catch {
      return; // renamed to a completed segment in between: uploaded as such next tick
    }
    if (!stale) this.lastPartialAt = Date.now();
    const extent = validExtent(data);
    if (extent > 0) {
      const upToLsn = lsnInSegment(p.segment, extent, this.segmentSize!);
      const key = repository.walPartial('', this.input.database, p.segment, upToLsn);
      if (key !== this.lastPartialKey) {
        const outcome = await this.put(key, await sealWal(data, this.recipients));
        this.lastPartialKey = key;
        if (outcome === 'stored') this.result.partialsUploaded++;
        this.result.lastPartial = { segment: p.segment, upToLsn, at: new Date().toISOString() };
      }
    }
    if (stale) fs.rmSync(file, { force: true });
  }

  storageDown(error: string): void {
    this.storageError = error;
    this.nextStorageAttempt = Date.now() + RETRY_STORAGE_MS;
    if (this.storageReachable) {
      this.storageReachable = false;
      log.error(`WAL archiver of ${this.input.database}: storage unreachable: ${error}`);
      this.end ??= 'storage-unreachable';
    }
  }

  storageUp(): void {
    this.storageError = undefined;
    if (!this.storageReachable) {
      this.storageReachable = true;
      log.info(`WAL archiver of ${this.input.database}: storage reachable again`);
      this.end ??= 'storage-restored';
    }
  }

  // -------------------------------------------------------------------------------------------

  progress(): ArchiveWalProgress {
    let spoolSegments = 0;
    try {
      spoolSegments = fs.readdirSync(this.spool).filter((n) => /^[0-9A-F]{24}$/.test(n)).length;
    } catch {
      // the spool is being created
    }
    this.metrics.spoolSegments.set(spoolSegments);
    this.metrics.storageReachable.set(this.storageReachable ? 1 : 0);
    return {
      lastArchived: this.lastArchived,
      lastArchivedAt: this.result.lastArchived?.at,
      segmentsArchived: this.result.segmentsArchived,
      partialsUploaded: this.result.partialsUploaded,
      lastPartialLsn: this.result.lastPartial?.upToLsn,
      ...(this.result.spoolTimelineLeft ? { spoolTimelineLeft: this.result.spoolTimelineLeft } : {}),
      spoolSegments,
      storageReachable: this.storageReachable,
      receiverRunning: this.receiver?.running() ?? false,
    };
  }

  finish(): ArchiveWalResult {
    const r = this.result;
    r.reason = this.end ?? 'time-budget';
    r.walSegmentSize = this.segmentSize;
    r.timeline = this.timeline;
    r.storage = {
      reachable: this.storageReachable,
      ...(this.storageError ? { error: this.storageError } : {}),
    };
    r.receiver = {
      running: this.receiverUp,
      ...(this.receiverError ? { error: this.receiverError } : {}),
    };
    if (this.segmentSize) {
      const contents = scanSpool(this.spool, this.segmentSize);
      r.spool = { segments: contents.segments.length, bytes: contents.bytes };
    }
    return r;
  }
}
