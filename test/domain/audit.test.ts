// The audit record's contract: where it is kept, that its bytes are reproducible (a retry writes
// the same text), and that the schema refuses what a record must not carry.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AUDIT_RECORD_VERSION,
  auditMonthPrefixes,
  auditRecordKey,
  auditRecordSchema,
  serializeAuditRecord,
  type AuditRecord,
} from '../../src/domain/audit.ts';

const record: AuditRecord = {
  version: AUDIT_RECORD_VERSION,
  workflowId: 'failover-orders',
  runId: '01a2-run',
  firstExecutionRunId: '01a2-run',
  workflowType: 'regionalFailoverWorkflow',
  taskQueue: 'lifeboat',
  namespace: 'default',
  requestedBy: 'carol',
  database: 'orders',
  startedAt: '2026-11-30T23:59:59.500Z',
  endedAt: '2026-12-01T00:00:03.000Z',
  outcome: 'completed',
  approvals: [
    {
      requestedBy: 'carol',
      outcome: 'approved',
      decisions: [{ approver: 'alice', decision: 'approved', at: '2026-12-01T00:00:01.000Z' }],
      refused: [],
    },
  ],
  steps: [
    {
      kind: 'activity',
      name: 'promoteReplica',
      startedAt: '2026-12-01T00:00:01.000Z',
      endedAt: '2026-12-01T00:00:02.000Z',
      outcome: 'completed',
    },
  ],
  stepsOmitted: 0,
};

describe('audit record', () => {
  it('is kept under the month the run started, named by start time, workflow id and run id', () => {
    assert.equal(auditRecordKey('', record), 'audit/2026/11/20261130T235959Z-failover-orders-01a2-run.json');
    assert.equal(
      auditRecordKey('lifeboat', { ...record, workflowId: 'a/b' }),
      'lifeboat/audit/2026/11/20261130T235959Z-a_b-01a2-run.json',
    );
  });

  it('gives two runs of the same workflow id two keys', () => {
    assert.notEqual(auditRecordKey('', record), auditRecordKey('', { ...record, runId: '01a2-other' }));
  });

  it('lists the month folders of a time range, across a year end', () => {
    assert.deepEqual(
      auditMonthPrefixes('', new Date('2026-11-15T00:00:00Z'), new Date('2027-01-02T00:00:00Z')),
      ['audit/2026/11/', 'audit/2026/12/', 'audit/2027/01/'],
    );
    assert.deepEqual(auditMonthPrefixes('', new Date('2026-11-15Z'), new Date('2026-11-16Z')), [
      'audit/2026/11/',
    ]);
  });

  it('serializes to the same bytes whatever the order of the fields given', () => {
    const reordered = Object.fromEntries(Object.entries(record).reverse()) as AuditRecord;
    assert.equal(serializeAuditRecord(reordered), serializeAuditRecord(record));
  });

  const refusals = [
    { name: 'an unknown field (an input copied whole)', patch: { input: { passwordEnv: 'X' } } },
    { name: 'an unknown outcome', patch: { outcome: 'terminated' } },
    { name: 'a time that is not ISO-8601', patch: { startedAt: 'yesterday' } },
    { name: 'a negative omitted count', patch: { stepsOmitted: -1 } },
  ];
  for (const c of refusals)
    it(`refuses ${c.name}`, () => {
      assert.equal(auditRecordSchema.safeParse({ ...record, ...c.patch }).success, false);
    });
});
