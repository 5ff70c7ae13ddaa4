// Typed errors with a code and context. At the activity boundary they become ApplicationFailures
// whose `type` is the code, so retry policies can list the non-retryable ones by name.
export const ERROR_CODES = {
  /** The plan or an input is wrong; retrying cannot help. */
  InvalidInput: { retryable: false },
  /** A secret named by the plan is missing from the worker's environment. */
  MissingSecret: { retryable: false },
  /** A plan reference (database, region) that does not exist. */
  UnknownReference: { retryable: false },
  /** An external system did not answer; retrying may help. */
  Unreachable: { retryable: true },
  /** An external system refused our credentials or permissions; retrying cannot help. */
  AccessDenied: { retryable: false },
  /** Stored data does not match what was written (size or checksum); never retried silently. */
  IntegrityError: { retryable: false },
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

export class LifeboatError extends Error {
  readonly code: ErrorCode;
  readonly context: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, context: Record<string, unknown> = {}) {
    super(message);
    this.name = 'LifeboatError';
    this.code = code;
    this.context = context;
  }
}

/** Error types a retry policy must not retry. */
export const NON_RETRYABLE_ERROR_TYPES: string[] = Object.entries(ERROR_CODES)
  .filter(([, v]) => !v.retryable)
  .map(([k]) => k);
