// The plan (`lifeboat.yaml`): the one file that says what Lifeboat protects and how.
// Secrets never appear in it: credentials are named by the environment variable that holds them
// (`passwordEnv: PGPASSWORD_ORDERS`), resolved by activities from the worker's environment.
import { z } from 'zod';
import { EXPORTABLE_RESOURCES, isExportableResource } from './kubernetes-snapshot.ts';
import { parseDuration } from './duration.ts';

/** A Kubernetes resource the backup export knows (configmaps, ConfigMap, deployments.apps, …). */
const exportableResource = z
  .string()
  .min(1)
  .refine(isExportableResource, {
    message: `not a resource Lifeboat exports (${Object.keys(EXPORTABLE_RESOURCES).join(', ')})`,
  });

const envName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]*$/, 'expected the name of an environment variable, such as PGPASSWORD_ORDERS');
const duration = z
  .string()
  .refine((s) => parseDuration(s) !== undefined, 'expected a duration such as 30s, 5m, 2h or 7d');
const name = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-_]*[a-z0-9])?$/, 'expected lowercase letters, digits, - and _');
const port = z.number().int().min(1).max(65535);
const fqdn = z
  .string()
  .regex(/^([a-z0-9_]([a-z0-9-_]*[a-z0-9])?\.)+[a-z]{2,}\.?$/i, 'expected a DNS name such as db.example.com')
  .transform((s) => (s.endsWith('.') ? s : `${s}.`).toLowerCase());
const schedule = z
  .strictObject({
    cron: z.string().min(1).optional(),
    every: duration.optional(),
    jitter: duration.optional(),
  })
  .refine((s) => (s.cron === undefined) !== (s.every === undefined), 'give exactly one of cron or every');

const postgresConnection = z.strictObject({
  host: z.string().min(1),
  port: port.default(5432),
  user: z.string().min(1),
  passwordEnv: envName.optional(),
  sslMode: z.enum(['disable', 'require', 'verify-full']).default('disable'),
  caFile: z.string().optional(),
});

const healthCheck = z.strictObject({
  name,
  kind: z.enum(['postgres', 'tcp', 'http']),
  /** host:port for tcp, a URL for http; postgres checks use the region's connection. */
  target: z.string().optional(),
  timeout: duration.default('5s'),
});

const region = z.strictObject({
  /** Task queue of the activities that must run in this region; default `lifeboat-<region>`. */
  taskQueue: z.string().min(1).optional(),
  postgres: postgresConnection,
  kubernetes: z
    .strictObject({ kubeconfig: z.string().min(1), context: z.string().min(1).optional() })
    .optional(),
  healthChecks: z.array(healthCheck).default([]),
});

const validationQuery = z.strictObject({
  name,
  sql: z.string().min(1),
  /** When given, the first column of the first row must equal this text. */
  expect: z.string().optional(),
});

const database = z.strictObject({
  /** PostgreSQL database name; defaults to the plan's key. */
  dbname: z.string().min(1).optional(),
  primaryRegion: name,
  replicas: z
    .array(
      z.strictObject({
        region: name,
        slot: z
          .string()
          .regex(/^[a-z0-9_]+$/)
          .optional(),
      }),
    )
    .default([]),
  /** Recovery tier: 1 (RTO < 15 min, RPO < 5 min) … 5 (RTO < 72 h, RPO < 24 h). */
  tier: z.number().int().min(1).max(5).default(3),
  /** Recovery objectives stricter than the tier's (a DR drill judges against these when given). */
  objectives: z.strictObject({ rto: duration.optional(), rpo: duration.optional() }).optional(),
  validationQueries: z.array(validationQuery).default([]),
});

/** S3 storage classes whose objects can be read at once, as verification and restores must. */
const READABLE_STORAGE_CLASSES = [
  'STANDARD',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER_IR',
  'REDUCED_REDUNDANCY',
  'EXPRESS_ONEZONE',
  'OUTPOSTS',
  'SNOW',
] as const;
const storageClass = z.string().superRefine((value, ctx) => {
  if (value === 'GLACIER' || value === 'DEEP_ARCHIVE')
    ctx.addIssue({
      code: 'custom',
      message: `${value} objects must be restored (hours) before they can be read, and Lifeboat reads every backup back to verify it and reads WAL at once to restore: write STANDARD, STANDARD_IA or GLACIER_IR and let a bucket lifecycle rule move old backups to ${value}`,
    });
  else if (!(READABLE_STORAGE_CLASSES as readonly string[]).includes(value))
    ctx.addIssue({
      code: 'custom',
      message: `unknown S3 storage class "${value}": expected one of ${READABLE_STORAGE_CLASSES.join(', ')}`,
    });
});

const storageLocation = z.strictObject({
  url: z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/, 'expected s3://bucket[/prefix]'),
  endpoint: z.url().optional(),
  region: z.string().min(1).default('us-east-1'),
  forcePathStyle: z.boolean().default(true),
  caFile: z.string().optional(),
  accessKeyIdEnv: envName.optional(),
  secretAccessKeyEnv: envName.optional(),
  storageClass: storageClass.optional(),
  /**
   * S3 Object Lock retention set on every object as it is written (the bucket must have Object
   * Lock enabled), so a stolen worker credential cannot delete backups: under COMPLIANCE nobody
   * can before the date, under GOVERNANCE only a principal allowed s3:BypassGovernanceRetention.
   */
  objectLock: z.strictObject({ mode: z.enum(['GOVERNANCE', 'COMPLIANCE']), retain: duration }).optional(),
});

const storage = z.strictObject({
  primary: storageLocation,
  secondary: storageLocation.optional(),
  encryption: z
    .strictObject({
      /** age recipients (public keys, not secret), inline or one per line in a file. */
      recipients: z
        .array(z.string().regex(/^age1[0-9a-z]{58}$/, 'expected an age public key (age1…)'))
        .min(1)
        .optional(),
      recipientsFile: z.string().min(1).optional(),
      /** Environment variable holding the age identity that decrypts, needed for restores. */
      identityEnv: envName,
    })
    .refine(
      (e) => (e.recipients === undefined) !== (e.recipientsFile === undefined),
      'give exactly one of recipients or recipientsFile',
    ),
});

const dnsRecord = z.strictObject({
  name: fqdn,
  type: z.enum(['A', 'AAAA', 'CNAME']),
  ttl: z.number().int().min(1).max(86400).default(60),
  /** The database whose primary this record follows. */
  database: name,
  /** The record's values when that region holds the primary. */
  values: z.record(name, z.array(z.string().min(1)).min(1)),
});

const dns = z.strictObject({
  provider: z.literal('route53').default('route53'),
  endpoint: z.url().optional(),
  zone: fqdn,
  accessKeyIdEnv: envName.optional(),
  secretAccessKeyEnv: envName.optional(),
  records: z.array(dnsRecord).default([]),
});

export const NOTIFY_EVENTS = ['failure', 'approval-needed', 'outcome'] as const;
const webhook = z
  .strictObject({
    name,
    /** A URL that carries no credential; otherwise use urlEnv. */
    url: z.url().optional(),
    urlEnv: envName.optional(),
    format: z.enum(['json', 'slack']).default('json'),
    events: z.array(z.enum(NOTIFY_EVENTS)).default([...NOTIFY_EVENTS]),
  })
  .refine((w) => (w.url === undefined) !== (w.urlEnv === undefined), 'give exactly one of url or urlEnv');

const backupPolicy = z.strictObject({
  name,
  database: name,
  full: schedule,
  incremental: schedule.optional(),
  /** How often the WAL archiver uploads the partial segment: the RPO bound. */
  walPartialUpload: duration.default('60s'),
  /** A scheduled backup that cannot start this long after its scheduled time is recorded as missed. */
  startWindow: duration.optional(),
  /** A scheduled backup still running this long after it started is cancelled and reported. */
  completionWindow: duration.optional(),
  /**
   * The S3 storage class of the database's objects (base backups, WAL, manifests, legal holds,
   * drill reports) at every storage location, instead of that location's own storageClass.
   */
  storageClass: storageClass.optional(),
  /** pg_basebackup's --max-rate for scheduled full backups (e.g. 50M), to spare the primary's disk. */
  maxRate: z
    .string()
    .regex(/^[1-9]\d*[kM]?$/, 'expected a rate such as 50M or 800k (pg_basebackup --max-rate)')
    .optional(),
  retention: z
    .strictObject({
      daily: z.number().int().min(0).default(7),
      weekly: z.number().int().min(0).default(4),
      monthly: z.number().int().min(0).default(12),
      yearly: z.number().int().min(0).default(0),
      minAge: duration.default('1d'),
      /**
       * How many years the backups must be kept (a regulator's requirement, e.g. 7); checked by
       * `lifeboat compliance` against what daily/weekly/monthly/yearly actually keep.
       */
      requiredYears: z.number().int().min(1).optional(),
    })
    .default({ daily: 7, weekly: 4, monthly: 12, yearly: 0, minAge: '1d' }),
  kubernetes: z
    .strictObject({
      region: name.optional(),
      namespaces: z.array(z.string().min(1)).default([]),
      includeResources: z.array(exportableResource).default([]),
      excludeResources: z.array(exportableResource).default([]),
      labelSelector: z.string().optional(),
    })
    .optional(),
});

const approvalPolicy = z
  .strictObject({
    mode: z.enum(['required', 'automatic-within-lag']).default('required'),
    approvers: z.array(z.string().min(1)).default([]),
    minApprovals: z.number().int().min(1).default(1),
    timeout: duration.default('30m'),
    /** For automatic-within-lag: the largest replica lag promoted without a human. */
    maxLagBytes: z.number().int().min(0).optional(),
  })
  .refine((a) => a.mode !== 'required' || a.approvers.length >= a.minApprovals, {
    message: 'needs at least minApprovals approvers',
    path: ['approvers'],
  });

const failoverPolicy = z.strictObject({
  database: name,
  detection: z
    .strictObject({ checks: z.number().int().min(1).default(3), interval: duration.default('10s') })
    .default({ checks: 3, interval: '10s' }),
  approval: approvalPolicy.default({ mode: 'required', approvers: [], minApprovals: 1, timeout: '30m' }),
  traffic: z
    .strictObject({
      namespace: z.string().min(1),
      deployments: z
        .array(z.strictObject({ name: z.string().min(1), replicas: z.number().int().min(1) }))
        .default([]),
      endpointConfigMap: z.strictObject({ name: z.string().min(1), key: z.string().min(1) }).optional(),
    })
    .optional(),
});

const drillPolicy = z.strictObject({
  name,
  database: name,
  region: name,
  schedule: schedule.optional(),
  compareTables: z.array(z.string().min(1)).default([]),
  /** Compare every user table of the database instead of (as well as) compareTables. */
  compareAllTables: z.boolean().default(false),
});

export const planSchema = z.strictObject({
  apiVersion: z.literal('lifeboat/v1'),
  name,
  environment: z.enum(['production', 'staging', 'development']).default('production'),
  regions: z.record(name, region).refine((r) => Object.keys(r).length > 0, 'declare at least one region'),
  databases: z
    .record(name, database)
    .refine((d) => Object.keys(d).length > 0, 'declare at least one database'),
  storage,
  dns: dns.optional(),
  notifications: z.strictObject({ webhooks: z.array(webhook).default([]) }).default({ webhooks: [] }),
  backup: z.strictObject({ policies: z.array(backupPolicy).default([]) }).default({ policies: [] }),
  failover: z.strictObject({ policies: z.array(failoverPolicy).default([]) }).default({ policies: [] }),
  drills: z.strictObject({ policies: z.array(drillPolicy).default([]) }).default({ policies: [] }),
});

export type Plan = z.output<typeof planSchema>;
export type PlanRegion = Plan['regions'][string];
export type PlanDatabase = Plan['databases'][string];
export type PostgresConnection = PlanRegion['postgres'];
export type StorageLocation = Plan['storage']['primary'];
export type DnsPlan = NonNullable<Plan['dns']>;
export type Webhook = Plan['notifications']['webhooks'][number];
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

/** The task queue of every workflow and of the activities that may run in any region. */
export const SHARED_TASK_QUEUE = 'lifeboat';

/** The region-bound task queue for a region: activities there touch that region's systems. */
export function regionTaskQueue(plan: Plan, region: string): string {
  return plan.regions[region]?.taskQueue ?? `lifeboat-${region}`;
}

/** The PostgreSQL database name of a plan database. */
export function dbnameOf(plan: Plan, database: string): string {
  return plan.databases[database]?.dbname ?? database;
}
