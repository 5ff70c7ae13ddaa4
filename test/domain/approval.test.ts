// The approval rules every gate shares: who may decide, and when the decision is made.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  approvalOutcome,
  approvalRecord,
  approvalRefusal,
  type ApprovalState,
} from '../../src/domain/approval.ts';

const open = (decisions: ApprovalState['decisions'] = []): ApprovalState => ({
  waiting: true,
  requestedBy: 'carol',
  policy: { approvers: ['alice', 'bob', 'carol'], minApprovals: 2 },
  decisions,
});
const approved = (approver: string) => approvalRecord({ approver }, new Date(0));

describe('approval rules', () => {
  const cases = [
    { name: 'a listed approver', state: open(), decision: { approver: 'alice' }, refusal: undefined },
    {
      name: 'not on the list',
      state: open(),
      decision: { approver: 'dave' },
      refusal: /dave is not an approver/,
    },
    {
      name: 'the requester',
      state: open(),
      decision: { approver: 'carol' },
      refusal: /carol requested this operation/,
    },
    {
      name: 'twice',
      state: open([approved('alice')]),
      decision: { approver: 'alice' },
      refusal: /already decided/,
    },
    {
      name: 'rejection without reason',
      state: open(),
      decision: { approver: 'bob', reject: true },
      refusal: /needs a reason/,
    },
    {
      name: 'nothing pending',
      state: { ...open(), waiting: false },
      decision: { approver: 'bob' },
      refusal: /no approval is pending/,
    },
    {
      name: 'malformed',
      state: open(),
      decision: { who: 'bob' },
      refusal: /invalid decision: input\.approver/,
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const refusal = approvalRefusal(c.state, c.decision);
      if (c.refusal) assert.match(refusal ?? '', c.refusal);
      else assert.equal(refusal, undefined);
    });

  it('needs minApprovals distinct approvers; one rejection ends it', () => {
    assert.equal(approvalOutcome(open([approved('alice')])), undefined);
    assert.equal(approvalOutcome(open([approved('alice'), approved('bob')])), 'approved');
    const no = approvalRecord({ approver: 'bob', reject: true, reason: 'fine' }, new Date(0));
    assert.deepEqual(no, {
      approver: 'bob',
      decision: 'rejected',
      at: '1970-01-01T00:00:00.000Z',
      comment: 'fine',
    });
    assert.equal(approvalOutcome(open([approved('alice'), no])), 'rejected');
  });
});
