// zstd of whole WAL segments held in memory, the archiver's and `lifeboat wal-fetch`'s. node:zlib
// hands its output back in 16 KiB pieces by default: a 16 MiB segment took a thousand of them and
// a join, and decompressing took five times the CPU it needs. 1 MiB pieces instead.
import { promisify } from 'node:util';
import zlib from 'node:zlib';

const CHUNK_BYTES = 1 << 20;
const compress = promisify(zlib.zstdCompress);
const decompress = promisify(zlib.zstdDecompress);

/** Off the event loop: for the worker, whose loop also runs workflows and heartbeats. */
export function zstdCompressBuffer(data: Uint8Array, level: number): Promise<Buffer> {
  return compress(data, {
    chunkSize: CHUNK_BYTES,
    params: { [zlib.constants.ZSTD_c_compressionLevel]: level },
  });
}

export function zstdDecompressBuffer(data: Uint8Array): Promise<Buffer> {
  return decompress(data, { chunkSize: CHUNK_BYTES });
}

/**
 * On the calling thread: the least CPU (a 16 MiB segment in ~20 ms), for a process whose only
 * work is this (the restore's WAL prefetcher) and whose CPU the restore's download shares.
 */
export function zstdDecompressBufferSync(data: Uint8Array): Buffer {
  return zlib.zstdDecompressSync(data, { chunkSize: CHUNK_BYTES });
}
