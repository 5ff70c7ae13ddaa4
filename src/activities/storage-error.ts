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
