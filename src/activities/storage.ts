// Storage activities: the plan's buckets, through the object-store port.
import type { Finding } from '../domain/doctor.ts';
import { doctorProbeKey } from '../domain/naming.ts';
import type { ObjectStore, StorageLocationName } from './ports/object-store.ts';

export type { StorageLocationName };

export function createStorageActivities(deps: { stores: Partial<Record<StorageLocationName, ObjectStore>> }) {
  return {
    /** The bucket exists and takes a write, a read-back and a delete of a probe object. */
    async checkStorage(input: { location: StorageLocationName; probeId: string }): Promise<Finding> {
      const store = deps.stores[input.location];
      const target = store ? `s3://${store.bucket}/${store.prefix}` : input.location;
      if (!store)
        return { system: 'storage', target, ok: false, detail: `no ${input.location} storage in the plan` };
      const key = doctorProbeKey('', input.probeId);
      const body = `lifeboat doctor probe ${input.probeId}`;
      let step = 'HeadBucket';
      try {
        await store.headBucket();
        step = 'GetObjectLockConfiguration';
        const lockProblem = await store.objectLockProblem();
        if (lockProblem) return { system: 'storage', target, ok: false, detail: lockProblem };
        step = 'PutObject';
        await store.put(key, body);
        step = 'GetObject';
        const back = Buffer.from(await store.get(key)).toString('utf8');
        step = 'DeleteObject';
        await store.delete(key);
        if (back !== body)
          return {
            system: 'storage',
            target,
            ok: false,
            detail: 'probe object read back differs from what was written',
          };
        return {
          system: 'storage',
          target,
          ok: true,
          detail: `${input.location} bucket writable (write, read, delete of a probe object)`,
        };
      } catch (err) {
        return { system: 'storage', target, ok: false, detail: `${step} failed: ${describeAwsError(err)}` };
      }
    },
  };
}

export function describeAwsError(err: unknown): string {
  const e = err as {
    name?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
    code?: string;
  };
  const status = e.$metadata?.httpStatusCode;
  return [e.name ?? e.code, status ? `HTTP ${status}` : undefined, e.message].filter(Boolean).join(': ');
}
