// Audit records in the repository: written once by every workflow run (through the audit
// interceptor), read back by `lifeboat audit list` straight from storage, so the evidence needs
// neither Temporal nor its retention period.
import {
  auditMonthPrefixes,
  auditRecordKey,
  auditRecordSchema,
  serializeAuditRecord,
  type AuditRecord,
} from '../domain/audit.ts';
import { LifeboatError } from '../domain/errors.ts';
import type { ObjectStore } from './ports/object-store.ts';
import { copyObject } from './replicate.ts';
import { describeAwsError, type StorageLocationName } from './storage.ts';

export function createAuditActivities(deps: { stores: Partial<Record<StorageLocationName, ObjectStore>> }) {
  return {
    /**
     * Writes a run's audit record once. A retry that finds the same bytes already there succeeds
     * (the first attempt's response was lost); a different record under the key is never
     * overwritten.
     */
    async writeAuditRecord(input: {
      record: AuditRecord;
    }): Promise<{ key: string; alreadyPresent: boolean }> {
      const parsed = auditRecordSchema.safeParse(input.record);
      if (!parsed.success)
        throw new LifeboatError(
          'InvalidInput',
          `audit record: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
        );
      const store = deps.stores.primary;
      if (!store) throw new LifeboatError('InvalidInput', 'the plan has no primary storage location');
      const written = await writeOnce(store, parsed.data);
      // The second copy (3-2-1), from what the primary holds; retried with this activity.
      const secondary = deps.stores.secondary;
      if (secondary)
        await copyObject(store, secondary, written.key).catch((err: unknown) => {
          if (err instanceof LifeboatError) throw err;
          throw storageFailure(err, `copying the audit record ${written.key} to the secondary location`);
        });
      return written;
    },
  };
}

export async function writeOnce(
  store: ObjectStore,
  record: AuditRecord,
): Promise<{ key: string; alreadyPresent: boolean }> {
  const key = auditRecordKey('', record);
  const body = serializeAuditRecord(record);
  try {
    if (await store.head(key)) {
      const existing = Buffer.from(await store.get(key)).toString('utf8');
      if (existing === body) return { key, alreadyPresent: true };
      throw new LifeboatError(
        'IntegrityError',
        `a different audit record already exists at ${key}; not overwritten`,
        {
          key,
        },
      );
    }
    await store.put(key, body);
    return { key, alreadyPresent: false };
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    throw storageFailure(err, `writing the audit record ${key}`);
  }
}

export interface AuditListing {
  /** Oldest first. */
  records: (AuditRecord & { key: string })[];
  /** Objects that could not be read or do not validate: reported, never hidden. */
  problems: { key: string; problems: string[] }[];
}

/** The records of runs started in [since, until], optionally of one database, oldest first. */
export async function readAuditRecords(
  store: ObjectStore,
  opts: { since: Date; until: Date; database?: string },
): Promise<AuditListing> {
  const listing: AuditListing = { records: [], problems: [] };
  for (const monthPrefix of auditMonthPrefixes('', opts.since, opts.until)) {
    const objects = (await store.list(monthPrefix))
      .filter((o) => o.key.endsWith('.json'))
      .sort((a, b) => a.key.localeCompare(b.key));
    const texts = await Promise.all(
      objects.map(async (o) => ({ key: o.key, text: Buffer.from(await store.get(o.key)).toString('utf8') })),
    );
    for (const { key, text } of texts) {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        listing.problems.push({ key, problems: [`not JSON: ${(err as Error).message}`] });
        continue;
      }
      const parsed = auditRecordSchema.safeParse(json);
      if (!parsed.success) {
        listing.problems.push({
          key,
          problems: parsed.error.issues.map((i) => `${i.path.join('.') || '(record)'}: ${i.message}`),
        });
        continue;
      }
      const started = Date.parse(parsed.data.startedAt);
      if (started < opts.since.getTime() || started > opts.until.getTime()) continue;
      if (opts.database && parsed.data.database !== opts.database) continue;
      listing.records.push({ ...parsed.data, key });
    }
  }
  return listing;
}

function storageFailure(err: unknown, what: string): LifeboatError {
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const name = (err as { name?: string }).name;
  if (status === 403 || name === 'AccessDenied' || name === 'InvalidAccessKeyId')
    return new LifeboatError('AccessDenied', `${what}: ${describeAwsError(err)}`);
  return new LifeboatError('Unreachable', `${what}: ${describeAwsError(err)}`);
}
