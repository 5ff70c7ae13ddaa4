import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { drillInputSchema } from '../../src/domain/drill.ts';
import { planSchema, type Plan } from '../../src/domain/plan.ts';
import {
  diffSchedules,
  driftOf,
  desiredSchedules,
  fingerprintFromNote,
  scheduledBackupInputSchema,
  scheduleNote,
  scheduleProblems,
  type DesiredSchedule,
  type ExistingSchedule,
} from '../../src/domain/schedules.ts';
import { editedPlan, rawExamplePlan } from '../support/plans.ts';

const plan = (raw: Record<string, unknown> = rawExamplePlan()): Plan => planSchema.parse(raw);

describe('desiredSchedules', () => {
  const desired = desiredSchedules(plan());
  const byId = new Map(desired.map((d) => [d.id, d]));

  it('the example plan: full, incremental and retention of its backup policy, and its drill', () => {
    assert.deepEqual(
      desired.map((d) => d.id),
      [
        'lifeboat-backup-full-orders-daily',
        'lifeboat-backup-incremental-orders-daily',
        'lifeboat-drill-orders-weekly',
        'lifeboat-retention-orders',
      ],
    );
  });

  it('backups start the scheduled wrapper with the policy, SKIP overlap and a catch-up window', () => {
    const full = byId.get('lifeboat-backup-full-orders-daily')!;
    assert.equal(full.workflowType, 'scheduledBackupWorkflow');
    assert.equal(full.taskQueue, 'lifeboat');
    assert.deepEqual(full.spec, { cron: '0 2 * * *' });
    assert.equal(full.overlap, 'SKIP');
    assert.equal(full.catchupWindow, '1d');
    assert.deepEqual(full.args, [
      {
        database: 'orders',
        kind: 'full',
        policy: 'orders-daily',
        requestedBy: 'schedule:lifeboat-backup-full-orders-daily',
      },
    ]);
    assert.deepEqual(byId.get('lifeboat-backup-incremental-orders-daily')!.spec, { every: '1h' });
    assert.equal((byId.get('lifeboat-backup-incremental-orders-daily')!.args[0] as any).kind, 'incremental');
  });

  it('the drill policy schedules drDrillWorkflow with database, region, requester and policy', () => {
    const drill = byId.get('lifeboat-drill-orders-weekly')!;
    assert.equal(drill.workflowType, 'drDrillWorkflow');
    assert.deepEqual(drill.spec, { cron: '0 4 * * 0' });
    assert.deepEqual(drill.args, [
      {
        database: 'orders',
        region: 'us-west-2',
        requestedBy: 'schedule:lifeboat-drill-orders-weekly',
        policy: 'orders-weekly',
      },
    ]);
    // What drDrillWorkflow accepts (its own input schema): the schedule's start is valid input.
    assert.ok(drillInputSchema.safeParse(drill.args[0]).success);
  });

  it('the wrapper accepts every backup and retention schedule input', () => {
    for (const d of desired.filter((x) => x.workflowType === 'scheduledBackupWorkflow'))
      assert.ok(scheduledBackupInputSchema.safeParse(d.args[0]).success, d.id);
  });

  it('windows, jitter and max rate of a policy reach the schedule; no incremental, no drill schedule', () => {
    const d = desiredSchedules(
      plan(
        editedPlan((p) => {
          p.backup.policies[0].full = { every: '6h', jitter: '10m' };
          delete p.backup.policies[0].incremental;
          p.backup.policies[0].startWindow = '1h';
          p.backup.policies[0].completionWindow = '4h';
          p.backup.policies[0].maxRate = '50M';
          delete p.drills.policies[0].schedule;
        }),
      ),
    );
    assert.deepEqual(
      d.map((s) => s.id),
      ['lifeboat-backup-full-orders-daily', 'lifeboat-retention-orders'],
    );
    assert.deepEqual(d[0]!.spec, { every: '6h', jitter: '10m' });
    assert.deepEqual(d[0]!.args[0], {
      database: 'orders',
      kind: 'full',
      policy: 'orders-daily',
      requestedBy: 'schedule:lifeboat-backup-full-orders-daily',
      startWindow: '1h',
      completionWindow: '4h',
      maxRate: '50M',
    });
  });

  it('fingerprints: the same plan gives the same ones; a changed cron changes only that schedule', () => {
    const again = desiredSchedules(plan());
    assert.deepEqual(
      again.map((d) => d.fingerprint),
      desired.map((d) => d.fingerprint),
    );
    const changed = desiredSchedules(
      plan(editedPlan((p) => (p.backup.policies[0].full = { cron: '0 3 * * *' }))),
    );
    const differs = changed.filter((c, i) => c.fingerprint !== desired[i]!.fingerprint).map((c) => c.id);
    assert.deepEqual(differs, ['lifeboat-backup-full-orders-daily']);
  });

  it('duplicate policy names are reported with their path', () => {
    const raw = editedPlan((p: { backup: { policies: object[] } }) => {
      p.backup.policies.push({ ...p.backup.policies[0] });
    });
    assert.deepEqual(scheduleProblems(plan(raw)), [
      'backup.policies[1].name: policy name "orders-daily" is already used by backup.policies[0].name',
    ]);
    assert.deepEqual(scheduleProblems(plan()), []);
  });

  it('the note carries the fingerprint back', () => {
    assert.equal(fingerprintFromNote(scheduleNote('dev', 'a1b2c3d4')), 'a1b2c3d4');
    assert.equal(fingerprintFromNote('paused by alice'), undefined);
    assert.equal(fingerprintFromNote(undefined), undefined);
  });
});

describe('diffSchedules', () => {
  const d = (id: string, fingerprint = 'f0000000'): DesiredSchedule =>
    ({ id, fingerprint }) as unknown as DesiredSchedule;
  const e = (id: string, managedByPlan?: string, fingerprint?: string): ExistingSchedule => ({
    id,
    ...(managedByPlan ? { managedByPlan } : {}),
    ...(fingerprint ? { fingerprint } : {}),
  });

  const cases: {
    name: string;
    desired: DesiredSchedule[];
    existing: ExistingSchedule[];
    changes: [string, string][];
    conflicts?: string[];
  }[] = [
    {
      name: 'nothing exists: all created',
      desired: [d('a'), d('b')],
      existing: [],
      changes: [
        ['a', 'create'],
        ['b', 'create'],
      ],
    },
    {
      name: 'same fingerprints: all unchanged',
      desired: [d('a'), d('b')],
      existing: [e('a', 'dev', 'f0000000'), e('b', 'dev', 'f0000000')],
      changes: [
        ['a', 'unchanged'],
        ['b', 'unchanged'],
      ],
    },
    {
      name: 'another fingerprint (or none: edited note) is updated',
      desired: [d('a', 'f1111111'), d('b')],
      existing: [e('a', 'dev', 'f0000000'), e('b', 'dev')],
      changes: [
        ['a', 'update'],
        ['b', 'update'],
      ],
    },
    {
      name: 'a schedule of this plan no longer wanted is deleted',
      desired: [d('a')],
      existing: [e('a', 'dev', 'f0000000'), e('gone', 'dev', 'f0000000')],
      changes: [
        ['a', 'unchanged'],
        ['gone', 'delete'],
      ],
    },
    {
      name: 'schedules of other plans and not made by lifeboat are never pruned',
      desired: [d('a')],
      existing: [e('a', 'dev', 'f0000000'), e('theirs', 'prod', 'f0000000'), e('hand-made')],
      changes: [['a', 'unchanged']],
    },
    {
      name: 'a wanted id held by a schedule lifeboat does not own is a conflict, not an update',
      desired: [d('a'), d('b')],
      existing: [e('a'), e('b', 'prod', 'f0000000')],
      changes: [],
      conflicts: ['a', 'b'],
    },
    {
      name: 'an empty plan deletes all of its own',
      desired: [],
      existing: [e('x', 'dev'), e('y', 'other')],
      changes: [['x', 'delete']],
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const diff = diffSchedules(c.desired, c.existing, 'dev');
      assert.deepEqual(
        diff.changes.map((x) => [x.id, x.action]),
        c.changes,
      );
      assert.deepEqual(
        diff.conflicts.map((x) => x.id),
        c.conflicts ?? [],
      );
    });

  it('a schedule edited by hand (note kept) is updated, saying what drifted', () => {
    const want = desiredSchedules(plan()).find((x) => x.id === 'lifeboat-backup-incremental-orders-daily')!;
    const asApplied = {
      workflowType: want.workflowType,
      taskQueue: want.taskQueue,
      args: structuredClone(want.args),
      overlap: 'SKIP',
      catchupWindowMs: 86_400_000,
      intervalsMs: [3_600_000],
      jitterMs: 0,
      calendars: 0,
    };
    const existing = (actual: typeof asApplied) => [
      { id: want.id, managedByPlan: 'dev', fingerprint: want.fingerprint, actual },
    ];
    const same = diffSchedules([want], existing(asApplied), 'dev');
    assert.deepEqual(
      same.changes.map((c) => c.action),
      ['unchanged'],
    );
    const edited = diffSchedules(
      [want],
      existing({ ...asApplied, overlap: 'ALLOW_ALL', intervalsMs: [60_000] }),
      'dev',
    );
    assert.equal(edited.changes[0]!.action, 'update');
    assert.deepEqual((edited.changes[0] as { drift: string[] }).drift, [
      'overlap policy is "ALLOW_ALL", the plan says "SKIP"',
      'intervals (ms) is [60000], the plan says [3600000]',
    ]);
  });

  it('driftOf: nothing for a schedule as applied; each hand edit named', () => {
    const want = desiredSchedules(plan()).find((x) => x.id === 'lifeboat-backup-full-orders-daily')!;
    const applied = {
      workflowType: 'scheduledBackupWorkflow',
      taskQueue: 'lifeboat',
      args: want.args,
      overlap: 'SKIP',
      catchupWindowMs: 86_400_000,
      intervalsMs: [],
      calendars: 1,
    };
    assert.deepEqual(driftOf(want, applied), []);
    assert.deepEqual(driftOf(want, { ...applied, taskQueue: 'elsewhere', jitterMs: 5000 }), [
      'task queue is "elsewhere", the plan says "lifeboat"',
      'jitter (ms) is 5000, the plan says 0',
    ]);
    assert.equal(driftOf(want, { ...applied, args: [{ database: 'orders' }] }).length, 1);
  });

  it('a conflict says why it is left alone', () => {
    const diff = diffSchedules([d('a')], [e('a')], 'dev');
    assert.match(diff.conflicts[0]!.message, /not created by lifeboat apply/);
  });
});
