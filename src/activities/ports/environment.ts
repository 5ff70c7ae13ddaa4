// Activities resolve the secrets a plan names from the worker's environment, never from input.
import { LifeboatError } from '../../domain/errors.ts';

export type Environment = Readonly<Record<string, string | undefined>>;

export function requireEnv(env: Environment, name: string, purpose: string): string {
  const value = env[name];
  if (value === undefined || value === '')
    throw new LifeboatError(
      'MissingSecret',
      `${name} is not set in this worker's environment; it holds ${purpose}. Set it where the worker starts and restart the worker.`,
      { variable: name },
    );
  return value;
}
