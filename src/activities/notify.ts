// Notifications: posts to the plan's webhooks, as generic JSON or in Slack's incoming-webhook
// shape. Temporal retries with backoff; a 4xx other than 408/429 will not get better by retrying.
import { ApplicationFailure } from '@temporalio/activity';
import { LifeboatError } from '../domain/errors.ts';
import type { NotifyEvent, Plan } from '../domain/plan.ts';
import { requireEnv, type Environment } from './ports/environment.ts';

export interface NotifyMessage {
  event: NotifyEvent;
  title: string;
  text: string;
  workflowId?: string;
  fields?: Record<string, string>;
}

export function slackPayload(m: NotifyMessage): object {
  const fields = Object.entries(m.fields ?? {}).map(([k, v]) => `*${k}:* ${v}`);
  return {
    text: `*${m.title}*\n${m.text}`,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `*${m.title}*\n${m.text}` } },
      ...(fields.length
        ? [{ type: 'section', fields: fields.map((f) => ({ type: 'mrkdwn', text: f })) }]
        : []),
      ...(m.workflowId
        ? [{ type: 'context', elements: [{ type: 'mrkdwn', text: `workflow \`${m.workflowId}\`` }] }]
        : []),
    ],
  };
}

export function createNotifyActivities(deps: { plan: Plan; env: Environment; fetch?: typeof fetch }) {
  const doFetch = deps.fetch ?? fetch;
  return {
    /** Posts one message to one webhook of the plan. */
    async notify(input: { webhook: string; message: NotifyMessage }): Promise<{ status: number }> {
      const hook = deps.plan.notifications.webhooks.find((w) => w.name === input.webhook);
      if (!hook) throw new LifeboatError('UnknownReference', `webhook "${input.webhook}" is not in the plan`);
      const url = hook.url ?? requireEnv(deps.env, hook.urlEnv!, `the URL of webhook ${hook.name}`);
      const body =
        hook.format === 'slack'
          ? slackPayload(input.message)
          : { source: 'lifeboat', plan: deps.plan.name, ...input.message, sentAt: new Date().toISOString() };
      let res: Response;
      try {
        res = await doFetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'lifeboat' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
      } catch (err) {
        throw new LifeboatError('Unreachable', `webhook ${hook.name} unreachable: ${(err as Error).message}`);
      }
      await res.body?.cancel();
      if (res.ok) return { status: res.status };
      const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
      throw ApplicationFailure.create({
        type: retryable ? 'WebhookUnavailable' : 'WebhookRejected',
        nonRetryable: !retryable,
        message: `webhook ${hook.name} answered HTTP ${res.status}`,
      });
    },
  };
}
