// PostgreSQL's backup_manifest, read, and a base backup's tar checked file by file against it:
// what verification does once it has decrypted and decompressed a backup.
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { LifeboatError } from '../domain/errors.ts';
import { fileChecksum, type FileChecksum, type FileChecksumAlgorithm } from './pipeline/file-checksum.ts';
import { TarReader, type TarEntry } from './pipeline/tar.ts';

export interface PostgresManifest {
  checksum: string;
  files: number;
  stopLsn: string;
  /** Per file: size, and the checksum with its algorithm unless the manifest says NONE. */
  entries: Map<string, { size: number; algorithm?: string; checksum?: string }>;
}

/** PostgreSQL's backup_manifest: its own checksum checked, the WAL range's end, every file. */
export function parsePostgresManifest(bytes: Buffer): PostgresManifest {
  const text = bytes.toString('utf8');
  let doc: {
    Files?: { Path: string; Size: number; 'Checksum-Algorithm'?: string; Checksum?: string }[];
    'WAL-Ranges'?: { Timeline: number; 'Start-LSN': string; 'End-LSN': string }[];
    'Manifest-Checksum'?: string;
  };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch (err) {
    throw new Error(`backup_manifest is not JSON: ${(err as Error).message}`, { cause: err });
  }
  // The checksum covers everything up to and including the newline before its own line.
  const cut = text.lastIndexOf('\n"Manifest-Checksum"');
  const checksum = doc['Manifest-Checksum'];
  if (
    cut < 0 ||
    !checksum ||
    createHash('sha256')
      .update(bytes.subarray(0, Buffer.byteLength(text.slice(0, cut + 1))))
      .digest('hex') !== checksum
  )
    throw new Error('backup_manifest fails its own Manifest-Checksum');
  const ranges = doc['WAL-Ranges'] ?? [];
  const stopLsn = ranges.at(-1)?.['End-LSN'];
  if (!stopLsn) throw new Error('backup_manifest has no WAL-Ranges');
  const entries: PostgresManifest['entries'] = new Map();
  for (const f of doc.Files ?? [])
    entries.set(
      f.Path,
      f['Checksum-Algorithm'] && f['Checksum-Algorithm'] !== 'NONE' && f.Checksum
        ? { size: f.Size, algorithm: f['Checksum-Algorithm'], checksum: f.Checksum }
        : { size: f.Size },
    );
  return { checksum, files: entries.size, stopLsn, entries };
}

export interface ContentCheck {
  files: number;
  /** WAL segment name → size, as found under pg_wal/. */
  wal: Map<string, number>;
}

/**
 * A tar sink checksumming every file (with the algorithm backup_manifest used, known beforehand:
 * the manifest comes last), checked against backup_manifest once it arrives.
 */
export function contentChecker(algorithm: FileChecksumAlgorithm): {
  sink: Writable;
  /** The next piece of the tar, for a caller that taps a stream rather than ends one (throws). */
  push(chunk: Buffer): void;
  finish(key: string): ContentCheck;
} {
  const seen = new Map<string, { size: number; checksum: string }>();
  let manifestBytes: Buffer[] = [];
  let hashing: { name: string; sum: FileChecksum } | undefined;
  const nameOf = (entry: TarEntry) => entry.name.replace(/^\.\//, '');
  const reader = new TarReader({
    entry(entry) {
      if (entry.type !== '0') return undefined;
      const name = nameOf(entry);
      if (name === 'backup_manifest') {
        manifestBytes = [];
        return (chunk) => manifestBytes.push(Buffer.from(chunk));
      }
      const sum = fileChecksum(algorithm);
      hashing = { name, sum };
      return (chunk) => sum.update(chunk);
    },
    entryEnd(entry) {
      if (entry.type !== '0' || nameOf(entry) === 'backup_manifest') return;
      const sum = hashing?.name === nameOf(entry) ? hashing.sum : fileChecksum(algorithm);
      seen.set(nameOf(entry), { size: entry.size, checksum: sum.hex() });
      hashing = undefined;
    },
  });
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      try {
        reader.push(chunk);
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });
  return {
    sink,
    push: (chunk) => reader.push(chunk),
    finish(key: string): ContentCheck {
      if (!reader.ended) throw new LifeboatError('IntegrityError', `${key}: the tar inside ends early`);
      if (manifestBytes.length === 0)
        throw new LifeboatError('IntegrityError', `${key}: no backup_manifest inside the tar`);
      let manifest;
      try {
        manifest = parsePostgresManifest(Buffer.concat(manifestBytes));
      } catch (err) {
        throw new LifeboatError('IntegrityError', `${key}: ${(err as Error).message}`);
      }
      const problems: string[] = [];
      const wal = new Map<string, number>();
      for (const [name, got] of seen) {
        const want = manifest.entries.get(name);
        if (!want) {
          // WAL fetched into the tar is not in the manifest's file list; it is checked by range.
          const segment = /^pg_wal\/([0-9A-F]{24})$/.exec(name)?.[1];
          if (segment) wal.set(segment, got.size);
          else problems.push(`${name}: in the tar, not in backup_manifest`);
        } else if (want.size !== got.size)
          problems.push(`${name}: ${got.size} bytes, manifest says ${want.size}`);
        else if (want.algorithm && want.algorithm !== algorithm)
          problems.push(
            `${name}: backup_manifest has a ${want.algorithm} checksum, ${algorithm} was computed`,
          );
        else if (want.checksum && want.checksum !== got.checksum)
          problems.push(`${name}: ${algorithm} differs from the manifest`);
      }
      for (const name of manifest.entries.keys())
        if (!seen.has(name)) problems.push(`${name}: in backup_manifest, not in the tar`);
      if (problems.length)
        throw new LifeboatError(
          'IntegrityError',
          `${key}: ${problems.length} file(s) do not match backup_manifest: ${problems.slice(0, 5).join('; ')}`,
        );
      return { files: manifest.files, wal };
    },
  };
}
