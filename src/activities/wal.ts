// WAL activities other than the streaming itself (wal-archive-run.ts): a forced switch, the
// archive's listing, and the verification of a range of stored segments.
import { createHash } from 'node:crypto';
import { cancellationSignal, heartbeat, log } from '@temporalio/activity';
import { LifeboatError } from '../domain/errors.ts';
import { pickStoredSegment, type SealedWal, type WalRangeVerification } from '../domain/incremental.ts';
import { dbnameOf, type Plan } from '../domain/plan.ts';
import { repository } from '../domain/repository.ts';
import {
  segmentName,
  segmentNumber,
  timelineOf,
  type ArchiveWalInput,
  type ArchiveWalResult,
} from '../domain/wal.ts';
import { loadRecipients } from './backup.ts';
import type { Environment } from './ports/environment.ts';
import type { ObjectStore } from './ports/object-store.ts';
import { connectPostgres, type SqlClient } from './ports/postgres.ts';
import { describeAwsError, type StorageLocationName } from './storage.ts';
import { ArchiveRun, primaryStore } from './wal-archive-run.ts';
import { openWal } from './wal-seal.ts';

export interface WalActivityDeps {
  plan: Plan;
  env: Environment;
  stores: Partial<Record<StorageLocationName, ObjectStore>>;
  /** Root of the worker-local WAL spools (one folder per plan and database). */
  spoolDir?: string;
  /**
   * Aborted when the worker begins to shut down. The SDK tells activities only once the grace
   * time is over (20 s); a streaming run returns at once instead, and the next run of the
   * workflow goes on from the slot on whichever worker polls next: Ctrl-C stops in a second.
   */
  shutdown?: AbortSignal;
}

export function createWalActivities(deps: WalActivityDeps) {
  return {
    /**
     * Streams WAL from the database's primary and stores it for `runForMs`, or until something an
     * operator must hear about happens (storage lost or back, a gap, the slot lost, the receiver
     * down or back): then it returns, so the workflow can raise the alert at once.
     */
    async archiveWal(input: ArchiveWalInput): Promise<ArchiveWalResult> {
      return new ArchiveRun(deps, input).run();
    },

    /** Forces a WAL switch on the primary: the WAL up to now ends in a completed segment. */
    async switchWal(input: { database: string; region: string }): Promise<SealedWal> {
      const c = await connectPrimary(deps, input.database, input.region);
      try {
        // pg_switch_wal() returns the end of the switch record, inside the segment it completed
        // (or, with nothing written since the last switch, the start of the current one); either
        // way pg_walfile_name() of it names the last completed segment, as it takes a boundary
        // LSN to belong to the segment before.
        const r = await c.query<{
          lsn: string;
          walfile: string;
          seg: string;
          sysid: string;
          version: string;
          vnum: number;
          recovery: boolean;
        }>(
          `select lsn::text, pg_walfile_name(lsn) as walfile,
                  (select setting from pg_settings where name = 'wal_segment_size') as seg,
                  (select system_identifier::text from pg_control_system()) as sysid,
                  current_setting('server_version') as version,
                  current_setting('server_version_num')::int as vnum,
                  pg_is_in_recovery() as recovery
             from (select pg_switch_wal() as lsn) s`,
        );
        const row = r.rows[0]!;
        return {
          switchLsn: row.lsn,
          segment: row.walfile,
          timeline: timelineOf(row.walfile),
          walSegmentSize: Number(row.seg),
          systemIdentifier: row.sysid,
          serverVersion: row.version,
          versionNum: row.vnum,
          at: new Date().toISOString(),
        };
      } catch (err) {
        if (/recovery is in progress/.test((err as Error).message))
          throw new LifeboatError(
            'InvalidInput',
            `the ${input.region} server of ${input.database} is in recovery, not a primary: WAL cannot be switched there`,
          );
        throw err;
      } finally {
        await c.end().catch(() => undefined);
      }
    },

    /**
     * Waits until the archiver has stored a completed segment, looking every second (and
     * heartbeating); false after `timeoutMs`.
     */
    async waitForWalSegment(input: {
      database: string;
      segment: string;
      timeoutMs: number;
    }): Promise<{ stored: boolean; waitedMs: number }> {
      const store = primaryStore(deps);
      const key = repository.walSegment('', input.database, input.segment);
      const started = Date.now();
      const signal = cancellationSignal();
      for (;;) {
        heartbeat({ segment: input.segment, waitedMs: Date.now() - started });
        try {
          if (await store.head(key)) return { stored: true, waitedMs: Date.now() - started };
        } catch (err) {
          log.warn(`looking for ${key}: ${describeAwsError(err)}`);
        }
        if (Date.now() - started >= input.timeoutMs) return { stored: false, waitedMs: Date.now() - started };
        await new Promise((resolve) => setTimeout(resolve, 1000));
        if (signal.aborted) throw signal.reason as Error;
      }
    },

    /**
     * Every segment from `firstSegno` to `lastSegno` in storage: read back, sha256 taken, and with
     * the age identity opened and its first page header checked (address, system, size).
     */
    async verifyWalRange(input: {
      database: string;
      firstSegno: number;
      lastSegno: number;
      timeline: number;
      walSegmentSize: number;
      systemIdentifier: string;
    }): Promise<WalRangeVerification> {
      const store = primaryStore(deps);
      const size = input.walSegmentSize;
      const stored = new Map<number, string[]>();
      for (const o of await store.list(repository.walPrefix('', input.database))) {
        const name = /\/([0-9A-F]{24})\.zst\.age$/.exec(o.key)?.[1];
        if (!name) continue;
        const n = segmentNumber(name, size);
        if (n >= input.firstSegno && n <= input.lastSegno) stored.set(n, [...(stored.get(n) ?? []), name]);
      }
      const identityEnv = deps.plan.storage.encryption.identityEnv;
      const identity = deps.env[identityEnv];
      const result: WalRangeVerification = {
        objects: [],
        missing: [],
        rawBytes: 0,
        method: identity ? 'content' : 'checksums',
        detail: '',
        recipients: loadRecipients(deps.plan),
      };
      for (let n = input.firstSegno; n <= input.lastSegno; n++) {
        heartbeat({ segno: n, of: input.lastSegno });
        const segment = pickStoredSegment(stored, n, input.timeline);
        if (!segment) {
          result.missing.push(segmentName(input.timeline, n, size));
          continue;
        }
        const key = repository.walSegment('', input.database, segment);
        const sealed = Buffer.from(await store.get(key));
        result.objects.push({
          segment,
          key,
          bytes: sealed.length,
          sha256: createHash('sha256').update(sealed).digest('hex'),
        });
        result.rawBytes += size;
        if (identity) {
          const problem = checkSegment(
            await openWal(sealed, identity),
            segment,
            size,
            input.systemIdentifier,
          );
          if (problem) throw new LifeboatError('IntegrityError', `${key}: ${problem}`);
        }
      }
      const mib = (result.objects.reduce((t, o) => t + o.bytes, 0) / 2 ** 20).toFixed(1);
      result.detail =
        `${result.objects.length} WAL segment(s), ${mib} MiB stored: sha256 taken` +
        (identity
          ? '; each opened (age, zstd) and its page header checked (address, system identifier, size)'
          : ` (content not opened: ${identityEnv} is not set on this worker)`);
      return result;
    },
  };
}

async function connectPrimary(deps: WalActivityDeps, database: string, region: string): Promise<SqlClient> {
  const r = deps.plan.regions[region];
  if (!r) throw new LifeboatError('UnknownReference', `region "${region}" is not in the plan`);
  if (!deps.plan.databases[database])
    throw new LifeboatError('UnknownReference', `database "${database}" is not in the plan`);
  return connectPostgres(r.postgres, dbnameOf(deps.plan, database), deps.env);
}

/**
 * The first page of a segment starts with XLogLongPageHeaderData: magic, info (2 + 2 bytes), timeline
 * (4), the page's address (8 at offset 8), rem_len (4) and padding to 24, then the system identifier
 * (8 at 24) and the segment size (4 at 32).
 */
export function checkSegment(
  data: Buffer,
  segment: string,
  size: number,
  systemIdentifier: string,
): string | undefined {
  if (data.length !== size) return `${data.length} bytes, not ${size}`;
  const pageAddr = data.readBigUInt64LE(8);
  const expected = BigInt(segmentNumber(segment, size)) * BigInt(size);
  if (pageAddr !== expected) return `first page at ${pageAddr.toString(16)}, not ${expected.toString(16)}`;
  const sysid = data.readBigUInt64LE(24).toString();
  if (sysid !== systemIdentifier) return `system identifier ${sysid}, not ${systemIdentifier}`;
  const segSize = data.readUInt32LE(32);
  if (segSize !== size) return `segment size ${segSize} in its header, not ${size}`;
  return undefined;
}
