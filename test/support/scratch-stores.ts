// Object stores on the stack's primary bucket under prefixes of their own, for tests that write a
// repository by hand: each run gets fresh, empty locations, emptied again afterwards.
import { createObjectStore, type ObjectStore } from '../../src/activities/ports/object-store.ts';
import type { TestStack } from './stack.ts';

/** `<bucket>/<prefix>/<name>-<run>`: a location no other test or run writes to. */
export function scratchStore(stack: TestStack, name: string): ObjectStore {
  const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  return createObjectStore(
    { ...stack.plan.storage.primary, url: `${stack.plan.storage.primary.url}/${name}-${run}` },
    stack.secrets,
  );
}

/** Deletes every object a scratch store holds. */
export async function emptyStores(...stores: (ObjectStore | undefined)[]): Promise<void> {
  for (const store of stores) if (store) for (const o of await store.list('')) await store.delete(o.key);
}
