// A small base backup's tar as pg_basebackup writes it (GNU tar, WAL in pg_wal/, backup_manifest
// last, with CRC32C or SHA256 file checksums), for the tests of verification's content check.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { manifestCrc32c } from './crc32c.ts';

export const FILES: Record<string, Buffer> = {
  PG_VERSION: Buffer.from('15\n'),
  'base/1/1259': Buffer.alloc(8192 * 3, 7),
  'global/pg_control': Buffer.from('c'.repeat(8192)),
};
export const SEGMENT = '000000010000000000000002';

function checksumOf(algorithm: 'CRC32C' | 'SHA256', body: Buffer): string {
  return algorithm === 'CRC32C' ? manifestCrc32c(body) : createHash('sha256').update(body).digest('hex');
}

/** backup_manifest as PostgreSQL 15 writes it, with its own checksum over what precedes its line. */
export function backupManifest(algorithm: 'CRC32C' | 'SHA256', files: Record<string, Buffer>): Buffer {
  const body =
    `{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n` +
    Object.entries(files)
      .map(
        ([p, b]) =>
          `{ "Path": "${p}", "Size": ${b.length}, "Last-Modified": "2026-11-23 08:29:11 GMT", "Checksum-Algorithm": "${algorithm}", "Checksum": "${checksumOf(algorithm, b)}" }`,
      )
      .join(',\n') +
    `\n],\n"WAL-Ranges": [\n{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }\n],\n`;
  return Buffer.from(`${body}"Manifest-Checksum": "${createHash('sha256').update(body).digest('hex')}"}\n`);
}

/** The tar: the data files as given, WAL in pg_wal/, backup_manifest (of `manifestOf`) last. */
export function baseTar(files: Record<string, Buffer>, manifest: Buffer): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-manifest-'));
  const all = { ...files, [`pg_wal/${SEGMENT}`]: Buffer.alloc(1024, 1), backup_manifest: manifest };
  try {
    for (const [name, body] of Object.entries(all)) {
      fs.mkdirSync(path.join(dir, path.dirname(name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), body);
    }
    return execFileSync('tar', ['--format=ustar', '-c', '-C', dir, ...Object.keys(all)], {
      maxBuffer: 1 << 26,
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
