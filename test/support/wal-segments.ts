// WAL segments laid out as PostgreSQL 15 writes them (8 KiB pages, page headers, 8-byte aligned
// records), holding commit records at given times: for the scanner of transaction end times and
// the prefetcher that stops at a target time. Only the fields those read are filled in (no CRCs).

export const PAGE = 8192;
const MAGIC = 0xd110;
const LONG_HEADER = 40;
const SHORT_HEADER = 24;
const POSTGRES_EPOCH_MS = 946_684_800_000;

export interface SegmentRecord {
  /** A commit at this time (Unix ms), or filler of this many bytes (not a transaction's end). */
  commitAt?: number;
  filler?: number;
}

/** A commit record: header, the short main-data block id and length, then xact_time. */
function commitRecord(atMs: number): Buffer {
  const r = Buffer.alloc(24 + 2 + 8);
  r.writeUInt32LE(r.length, 0); // xl_tot_len
  r.writeUInt8(0x00, 16); // xl_info: XLOG_XACT_COMMIT
  r.writeUInt8(1, 17); // xl_rmid: RM_XACT_ID
  r.writeUInt8(255, 24); // XLR_BLOCK_ID_DATA_SHORT
  r.writeUInt8(8, 25);
  r.writeBigInt64LE(BigInt(Math.round((atMs - POSTGRES_EPOCH_MS) * 1000)), 26);
  return r;
}

/** A record of another resource manager (heap), `size` bytes long. */
function fillerRecord(size: number): Buffer {
  const r = Buffer.alloc(size);
  r.writeUInt32LE(size, 0);
  r.writeUInt8(10, 17); // RM_HEAP_ID
  return r;
}

/**
 * One segment of `size` bytes at segment number `segno`: `continued` bytes of a record from the
 * segment before first, then the records in order, each 8-byte aligned, running on across page
 * headers. Pages past the last record stay zero.
 */
export function walSegment(
  segno: number,
  records: SegmentRecord[],
  options: { size?: number; continued?: number } = {},
): Buffer {
  const size = options.size ?? 1024 * 1024;
  const continued = options.continued ?? 0;
  const stream = Buffer.concat([
    Buffer.alloc((continued + 7) & ~7),
    ...records.map((r) => {
      const body = r.commitAt !== undefined ? commitRecord(r.commitAt) : fillerRecord(r.filler!);
      return Buffer.concat([body, Buffer.alloc(((body.length + 7) & ~7) - body.length)]);
    }),
  ]);
  const out = Buffer.alloc(size);
  let taken = 0;
  for (let page = 0; page < size && taken < stream.length; page += PAGE) {
    const header = page === 0 ? LONG_HEADER : SHORT_HEADER;
    out.writeUInt16LE(MAGIC, page);
    // The first page: XLP_LONG_HEADER, and XLP_FIRST_IS_CONTRECORD when a record runs on into the
    // segment (later pages' flags are not read by the scanner, so not set).
    if (page === 0) out.writeUInt16LE(0x0002 | (continued > 0 ? 0x0001 : 0), page + 2);
    out.writeUInt32LE(1, page + 4);
    out.writeBigUInt64LE(BigInt(segno * size + page), page + 8);
    if (page === 0) out.writeUInt32LE(continued, page + 16);
    const n = Math.min(PAGE - header, stream.length - taken);
    stream.copy(out, page + header, taken, taken + n);
    taken += n;
  }
  return out;
}
