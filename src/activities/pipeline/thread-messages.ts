// What a pipeline thread and the worker's main thread say to each other. Errors cross as plain
// data and come back as the typed errors they were (retry policies act on LifeboatError codes).
import { LifeboatError, type ErrorCode } from '../../domain/errors.ts';
import { ToolError } from './child.ts';

/** Main → thread: abort. Thread → main: progress, then a result or an error. */
export type ThreadMessage =
  | { t: 'progress'; value: unknown }
  | { t: 'result'; value: unknown }
  | { t: 'error'; error: SerializedError }
  | { t: 'abort'; error: SerializedError };

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  context?: Record<string, unknown>;
  tool?: string;
  stderr?: string;
  notFound?: boolean;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof LifeboatError)
    return { name: err.name, message: err.message, code: err.code, context: err.context };
  if (err instanceof ToolError)
    return {
      name: err.name,
      message: err.message,
      tool: err.tool,
      stderr: err.stderr,
      notFound: err.notFound,
    };
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: 'Error', message: String(err) };
}

export function deserializeError(e: SerializedError): Error {
  if (e.name === 'LifeboatError' && e.code)
    return new LifeboatError(e.code as ErrorCode, e.message, e.context);
  if (e.name === 'ToolError') return new ToolError(e.tool ?? '', e.message, e.stderr ?? '', e.notFound);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}
