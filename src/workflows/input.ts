// A workflow whose input is wrong must fail at once, naming every problem, instead of failing
// its workflow task over and over (which is what an ordinary thrown error would do).
import { ApplicationFailure } from '@temporalio/workflow';
import type { z } from 'zod';
import { formatPath } from '../domain/plan-validation.ts';

export function parseWorkflowInput<S extends z.ZodType>(
  schema: S,
  raw: unknown,
  workflow: string,
): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${formatPath(['input', ...i.path])}: ${i.message}`);
  throw ApplicationFailure.create({
    type: 'InvalidInput',
    nonRetryable: true,
    message: `${workflow}: invalid input; ${problems.join('; ')}`,
    details: [problems],
  });
}
