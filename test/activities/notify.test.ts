// The notify activity against a local HTTP receiver: payload shapes, and which answers are
// worth a retry. (Retries with backoff through Temporal are exercised in doctor.test.ts.)
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { createNotifyActivities } from '../../src/activities/notify.ts';
import { validatePlan } from '../../src/domain/plan-validation.ts';
import type { LifeboatError } from '../../src/domain/errors.ts';
import { editedPlan } from '../support/plans.ts';

describe('notify', () => {
  const received: { path: string; body: any }[] = [];
  let answer = 200;
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: JSON.parse(text) });
      res.writeHead(answer).end();
    });
  });
  let base = '';
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  const activities = (env: Record<string, string> = {}) => {
    const result = validatePlan(
      editedPlan((p) => {
        p.notifications = {
          webhooks: [
            { name: 'generic', url: `${base}/generic` },
            { name: 'chat', urlEnv: 'LIFEBOAT_SLACK_URL', format: 'slack' },
          ],
        };
      }),
    );
    assert.ok(result.ok);
    return createNotifyActivities({ plan: result.plan, env });
  };
  const message = {
    event: 'outcome' as const,
    title: 'Failover of orders finished',
    text: 'us-west-2 is the primary',
    workflowId: 'failover-orders',
    fields: { RTO: '41s' },
  };

  it('posts generic JSON with the plan, event and workflow id', async () => {
    received.length = 0;
    answer = 200;
    assert.deepEqual(await activities().notify({ webhook: 'generic', message }), { status: 200 });
    assert.equal(received[0]!.path, '/generic');
    assert.equal(received[0]!.body.source, 'lifeboat');
    assert.equal(received[0]!.body.plan, 'local');
    assert.equal(received[0]!.body.event, 'outcome');
    assert.equal(received[0]!.body.workflowId, 'failover-orders');
    assert.deepEqual(received[0]!.body.fields, { RTO: '41s' });
  });

  it("posts Slack's incoming-webhook shape to a URL read from the environment", async () => {
    received.length = 0;
    answer = 200;
    await activities({ LIFEBOAT_SLACK_URL: `${base}/slack` }).notify({ webhook: 'chat', message });
    assert.equal(received[0]!.path, '/slack');
    assert.match(received[0]!.body.text, /\*Failover of orders finished\*/);
    assert.equal(received[0]!.body.blocks[0].type, 'section');
    assert.match(JSON.stringify(received[0]!.body.blocks), /\*RTO:\* 41s/);
  });

  it('a 5xx or 429 is retryable, another 4xx is not', async () => {
    for (const [status, retryable] of [
      [503, true],
      [429, true],
      [404, false],
      [401, false],
    ] as const) {
      answer = status;
      await assert.rejects(
        activities().notify({ webhook: 'generic', message }),
        (err: ApplicationFailure) => {
          assert.ok(err instanceof ApplicationFailure);
          assert.equal(err.nonRetryable, !retryable, `HTTP ${status}`);
          assert.match(err.message, new RegExp(`HTTP ${status}`));
          return true;
        },
      );
    }
  });

  it('names the missing environment variable instead of posting', async () => {
    await assert.rejects(activities({}).notify({ webhook: 'chat', message }), (err: LifeboatError) => {
      assert.equal(err.code, 'MissingSecret');
      assert.match(err.message, /LIFEBOAT_SLACK_URL is not set/);
      return true;
    });
  });

  it('an unreachable receiver is a retryable error', async () => {
    const plan = validatePlan(
      editedPlan((p) => (p.notifications = { webhooks: [{ name: 'gone', url: 'http://127.0.0.1:1/hook' }] })),
    );
    assert.ok(plan.ok);
    await assert.rejects(
      createNotifyActivities({ plan: plan.plan, env: {} }).notify({ webhook: 'gone', message }),
      (err: LifeboatError) => err.code === 'Unreachable',
    );
  });
});
