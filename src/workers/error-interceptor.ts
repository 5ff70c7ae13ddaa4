// Typed errors become ApplicationFailures at the activity boundary: their code is the failure
// type the retry policies name, and non-retryable codes stop retries at once.
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInboundCallsInterceptor, ActivityExecuteInput, Next } from '@temporalio/worker';
import { ERROR_CODES, LifeboatError } from '../domain/errors.ts';

export class TypedErrorInterceptor implements ActivityInboundCallsInterceptor {
  async execute(
    input: ActivityExecuteInput,
    next: Next<ActivityInboundCallsInterceptor, 'execute'>,
  ): Promise<unknown> {
    try {
      return await next(input);
    } catch (err) {
      if (err instanceof LifeboatError) {
        throw ApplicationFailure.create({
          type: err.code,
          message: err.message,
          nonRetryable: !ERROR_CODES[err.code].retryable,
          details: [err.context],
        });
      }
      throw err;
    }
  }
}
