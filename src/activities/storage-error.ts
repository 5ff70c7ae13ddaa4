// A failure of the object store, as the typed error the workflows' retry policies act on.
import { LifeboatError } from '../domain/errors.ts';
import { describeAwsError } from './storage.ts';

/** A storage failure as a typed error: refused credentials are final, the rest may pass. */
export function storageError(err: unknown, what: string): LifeboatError {
  if (err instanceof LifeboatError) return err;
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const name = (err as { name?: string }).name;
  if (
    status === 403 ||
    name === 'AccessDenied' ||
    name === 'InvalidAccessKeyId' ||
    name === 'SignatureDoesNotMatch'
  )
    return new LifeboatError('AccessDenied', `${what}: ${describeAwsError(err)}`);
  if (name === 'NoSuchBucket' || (status === 404 && /bucket/i.test(what)))
    return new LifeboatError('InvalidInput', `${what}: the bucket does not exist (${describeAwsError(err)})`);
  return new LifeboatError('Unreachable', `${what}: ${describeAwsError(err)}`);
}

/**
 * A failed curl transfer (a presigned download), typed as storageError types the SDK's: its
 * message carries the HTTP status (`The requested URL returned error: 403`) when there was one.
 */
export function curlError(err: unknown, what: string): LifeboatError {
  if (err instanceof LifeboatError) return err;
  const message = (err as Error).message;
  const status = Number(/returned error: (\d{3})/.exec(message)?.[1]);
  if (status === 403) return new LifeboatError('AccessDenied', `${what}: ${message}`);
  if (status === 404) return new LifeboatError('IntegrityError', `${what}: not in storage (${message})`);
  return new LifeboatError('Unreachable', `${what}: ${message}`);
}
