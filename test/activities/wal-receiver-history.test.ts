// Which exits of pg_receivewal mean that the spool's resume point is on no timeline of the
// primary's history. The messages are pg_receivewal 15's own, captured against the local stack's
// primary (on timeline 3, forked from timeline 2 at 8/DE08D620), except the TIMELINE_HISTORY one,
// laid out from receivelog.c's format string and the server's error for a missing history file.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { offServerHistory } from '../../src/activities/pipeline/wal-receiver.ts';

const offHistory = {
  'a timeline the server does not know': `pg_receivewal: starting log streaming at A/2000000 (timeline 32)
pg_receivewal: error: starting timeline 32 is not present in the server
pg_receivewal: error: disconnected`,
  'a branch the server left before that position': `pg_receivewal: starting log streaming at A/2000000 (timeline 2)
pg_receivewal: error: could not send replication command "START_REPLICATION": ERROR:  requested starting point A/2000000 on timeline 2 is not in this server's history
DETAIL:  This server's history forked from timeline 2 at 8/DE08D620.
pg_receivewal: error: disconnected`,
  'a position past the end of the server’s WAL': `pg_receivewal: starting log streaming at FF/1000000 (timeline 3)
pg_receivewal: error: unexpected termination of replication stream: ERROR:  requested starting point FF/1000000 is ahead of the WAL flush position of this server A/2007408
pg_receivewal: error: disconnected`,
  'a timeline whose history file the server no longer has': `pg_receivewal: starting log streaming at 5/3000000 (timeline 7)
pg_receivewal: error: could not send replication command "TIMELINE_HISTORY": ERROR:  could not open file "pg_wal/00000007.history": No such file or directory
pg_receivewal: error: disconnected`,
};

const otherExits = {
  'WAL removed past the slot (handled by restarting at the slot)': `pg_receivewal: starting log streaming at 1/1000000 (timeline 3)
pg_receivewal: error: unexpected termination of replication stream: ERROR:  requested WAL segment 000000030000000100000001 has already been removed
pg_receivewal: error: disconnected`,
  'the primary unreachable': `pg_receivewal: error: could not connect to server: connection to server at "127.0.0.1", port 16332 failed: Connection refused`,
  'a clean stop': `pg_receivewal: finished segment at A/3000000 (timeline 3)
pg_receivewal: not renaming "000000030000000A00000003.partial", segment is not complete`,
};

describe('pg_receivewal exits off the primary’s history', () => {
  for (const [what, stderr] of Object.entries(offHistory))
    it(`recognises ${what}`, () => assert.equal(offServerHistory(stderr), true));
  for (const [what, stderr] of Object.entries(otherExits))
    it(`leaves alone ${what}`, () => assert.equal(offServerHistory(stderr), false));
});
