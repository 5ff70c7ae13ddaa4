// The commit and abort times a WAL segment holds, read from its records the way PostgreSQL lays
// them out (8 KiB pages, 8-byte aligned records that run on across page headers). A time target
// stops replay at the first commit or abort after it, so the segment holding one is the last
// that replay of such a target reads: the restore's prefetcher fetches nothing past it.
// Only what that needs is decoded; a page or record that does not look like WAL ends the scan.

/** xlp_magic of every supported version: 0xD097 (PostgreSQL 10) … 0xD116 (17). */
const isPageMagic = (magic: number) => magic >= 0xd000 && magic <= 0xdfff;
const XLP_FIRST_IS_CONTRECORD = 0x0001;
const XLP_LONG_HEADER = 0x0002;
const SHORT_PAGE_HEADER = 24;
const LONG_PAGE_HEADER = 40;
const RECORD_HEADER = 24;
const RM_XACT_ID = 1;
const XLOG_XACT_OPMASK = 0x70;
/** Commit, abort, commit prepared, abort prepared: each starts its main data with xact_time. */
const XACT_ENDS = new Set([0x00, 0x20, 0x30, 0x40]);
const BLOCK_ID_DATA_SHORT = 255;
const BLOCK_ID_DATA_LONG = 254;
const BLOCK_ID_ORIGIN = 253;
const BLOCK_ID_TOPLEVEL_XID = 252;
/** PostgreSQL's epoch (2000-01-01 UTC) in Unix milliseconds. */
const POSTGRES_EPOCH_MS = 946_684_800_000;

const maxAlign = (n: number) => (n + 7) & ~7;

/**
 * The times (Unix milliseconds, with microseconds as a fraction) of the commits and aborts whose
 * records start in this segment, in WAL order.
 */
export function transactionEndTimes(segment: Uint8Array, pageSize = 8192): number[] {
  const wal = pagedRecords(segment, pageSize);
  if (!wal) return [];
  const times: number[] = [];
  for (let pos = wal.start; pos + RECORD_HEADER <= wal.length;) {
    const at = wal.headerAt(pos);
    const total = at >= 0 ? wal.view.getUint32(at, true) : wal.uint32(pos);
    // Zeroes past the last record (a switched or unfinished segment), or not a record at all.
    if (total < RECORD_HEADER || pos + total > wal.length) break;
    const info = at >= 0 ? wal.view.getUint8(at + 16) : wal.byte(pos + 16);
    const rmid = at >= 0 ? wal.view.getUint8(at + 17) : wal.byte(pos + 17);
    if (rmid === RM_XACT_ID && XACT_ENDS.has(info & XLOG_XACT_OPMASK)) {
      const time = xactTime(wal, pos + RECORD_HEADER, pos + total);
      if (time !== undefined) times.push(time);
    }
    pos += maxAlign(total);
  }
  return times;
}

/** Whether replay of a time target stops in this segment: a commit or abort at or after `time`. */
export function endsTransactionAtOrAfter(segment: Uint8Array, time: Date, pageSize = 8192): boolean {
  const at = time.getTime();
  return transactionEndTimes(segment, pageSize).some((t) => t >= at);
}

interface PagedRecords {
  /** Bytes of records in the segment's valid pages, page headers left out. */
  length: number;
  /** Where the first record that starts in this segment begins (after one continued into it). */
  start: number;
  byte(at: number): number;
  uint32(at: number): number;
  /** The segment itself. */
  view: DataView;
  /** Where in the segment the record header at `at` is, when it lies within one page (most do), else -1. */
  headerAt(at: number): number;
}

/**
 * The segment's records as one run of bytes without the page headers between them (page and
 * header sizes are multiples of 8, so records keep their alignment), read in place: copying the
 * 16 MiB cost more than the scan.
 */
function pagedRecords(segment: Uint8Array, pageSize: number): PagedRecords | undefined {
  if (segment.length < pageSize) return undefined;
  const view = new DataView(segment.buffer, segment.byteOffset, segment.byteLength);
  const firstInfo = view.getUint16(2, true);
  const first = firstInfo & XLP_LONG_HEADER ? LONG_PAGE_HEADER : SHORT_PAGE_HEADER;
  const firstAddress = view.getBigUint64(8, true);
  let pages = 0;
  for (let page = 0; page + pageSize <= segment.length; page += pageSize, pages++) {
    // Unwritten (zeroes), not WAL, or a page left from the file's earlier use (its address is not
    // this segment's): the segment's records end here.
    if (!isPageMagic(view.getUint16(page, true))) break;
    if (view.getBigUint64(page + 8, true) !== firstAddress + BigInt(page)) break;
  }
  if (pages === 0) return undefined;
  const firstPayload = pageSize - first;
  const payload = pageSize - SHORT_PAGE_HEADER;
  const at = (logical: number) => {
    if (logical < firstPayload) return first + logical;
    const rest = logical - firstPayload;
    return (1 + Math.floor(rest / payload)) * pageSize + SHORT_PAGE_HEADER + (rest % payload);
  };
  const byte = (logical: number) => segment[at(logical)]!;
  return {
    view,
    headerAt: (logical) => {
      const p = at(logical);
      return p % pageSize <= pageSize - RECORD_HEADER ? p : -1;
    },
    length: firstPayload + (pages - 1) * payload,
    start: firstInfo & XLP_FIRST_IS_CONTRECORD ? maxAlign(view.getUint32(16, true)) : 0,
    byte,
    // A field may straddle a page header: read byte by byte only then.
    uint32: (logical) => {
      const p = at(logical);
      if (at(logical + 3) === p + 3) return view.getUint32(p, true);
      return (
        (byte(logical) | (byte(logical + 1) << 8) | (byte(logical + 2) << 16) | (byte(logical + 3) << 24)) >>>
        0
      );
    },
  };
}

/** xact_time of a commit or abort record, from its main data (after any origin or xid fields). */
function xactTime(wal: PagedRecords, from: number, end: number): number | undefined {
  let pos = from;
  while (pos < end) {
    const id = wal.byte(pos);
    if (id === BLOCK_ID_DATA_SHORT) {
      pos += 2;
      break;
    }
    if (id === BLOCK_ID_DATA_LONG) {
      pos += 5;
      break;
    }
    if (id === BLOCK_ID_ORIGIN) pos += 3;
    else if (id === BLOCK_ID_TOPLEVEL_XID) pos += 5;
    else return undefined; // block references: not a transaction's end as these are written
  }
  if (pos + 8 > end) return undefined;
  // int64 microseconds since PostgreSQL's epoch, little-endian; within 2^53 for 285 years.
  const low = wal.uint32(pos);
  const high = wal.uint32(pos + 4) | 0;
  return POSTGRES_EPOCH_MS + (high * 2 ** 32 + low) / 1000;
}
