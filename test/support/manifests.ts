// A base backup result as the streaming activity returns it, and the full backup manifest built
// from it, for tests that build manifests without running pg_basebackup: schema-valid figures a
// test overrides where it matters.
import type { BaseBackupResult } from '../../src/domain/backup.ts';
import {
  fullBackupManifest,
  type BackupManifest,
  type FullManifestInput,
} from '../../src/domain/manifest.ts';

export function baseBackupFixture(overrides: Partial<BaseBackupResult> = {}): BaseBackupResult {
  return {
    attempt: 2,
    recipients: ['age1659k84s526tad7y85cw5fjeczdqtxpj2y5jkkrj8plq63ajlavhqgxsxev'],
    object: {
      key: 'databases/orders/backups/orders-full-20261122T163500Z/attempt-2/base.tar.zst.age',
      bytes: 3727612,
      sha256: '5bd430f25a09d39f1d4a990e546e58ede1893b32fe8b743bd63a42e4eb4f7d78',
    },
    rawBytes: 48373760,
    postgres: {
      systemIdentifier: '7711032694785212813',
      version: '15.18',
      versionNum: 150018,
      timeline: 1,
      walSegmentSize: 16777216,
    },
    startLsn: '0/8000028',
    stopLsn: '0/8000100',
    startTime: '2026-11-22T16:35:00.000Z',
    stopTime: '2026-11-22T16:35:01.154Z',
    label: 'lifeboat orders-full-20261122T163500Z',
    postgresManifest: {
      checksum: '3ea906cbc536cb591a3a646bcea7e974bbfc49ba730e843032cbe30bb0f9836c',
      files: 1270,
    },
    timings: { checkpointMs: 74, streamMs: 447 },
    ...overrides,
  };
}

/** The manifest of a full backup of `orders` (its base: `baseBackupFixture()` unless given). */
export function fullManifestFixture(overrides: Partial<FullManifestInput> = {}): BackupManifest {
  const base = overrides.base ?? baseBackupFixture();
  return fullBackupManifest({
    id: 'orders-full-20261122T163500Z',
    database: 'orders',
    plan: 'local',
    workflowId: 'backup-orders',
    runId: '01a2041c-6936-7737-ad30-5656250a1d7e',
    recipients: base.recipients,
    base,
    verification: { method: 'content', verifiedBytes: 3727612, files: 1270, walSegments: 1, detail: 'ok' },
    startedAt: new Date('2026-11-22T16:35:00.534Z'),
    verifiedAt: new Date('2026-11-22T16:35:01.473Z'),
    finishedAt: new Date('2026-11-22T16:35:01.473Z'),
    verifyMs: 219,
    ...overrides,
  });
}
