// Drill reports get the second copy too (3-2-1): writeDrillReport on the stack's real S3 with a
// secondary location stores report.json and report.html in both, byte for byte; a retry finds
// both and succeeds; a different report under the same id is refused in both and overwrites none.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createDrillActivities } from '../../src/activities/drill.ts';
import type { ObjectStore } from '../../src/activities/ports/object-store.ts';
import { LifeboatError } from '../../src/domain/errors.ts';
import type { Plan } from '../../src/domain/plan.ts';
import { repository } from '../../src/domain/repository.ts';
import { drillReportFixture } from '../support/drill-reports.ts';
import { emptyStores, scratchStore } from '../support/scratch-stores.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';

describe('drill reports in the second copy', () => {
  let stack: TestStack;
  let primary: ObjectStore;
  let secondary: ObjectStore;

  before(async () => {
    stack = await ensureStack();
    primary = scratchStore(stack, 'drill-copy-primary');
    secondary = scratchStore(stack, 'drill-copy-secondary');
  });

  after(() => emptyStores(primary, secondary));

  it('writes report.json and report.html to both locations; a retry succeeds; a different report overwrites neither', async () => {
    const plan: Plan = stack.plan;
    const activities = createDrillActivities({
      plan,
      env: stack.secrets,
      stores: { primary, secondary },
    });
    const report = drillReportFixture({ database: 'orders' });
    const { keys } = await activities.writeDrillReport({ report });
    assert.deepEqual(keys, [
      repository.drillReport('', 'orders', report.drillId, 'report.json'),
      repository.drillReport('', 'orders', report.drillId, 'report.html'),
    ]);
    for (const key of keys) {
      const there = Buffer.from(await secondary.get(key));
      assert.ok(there.length > 0, key);
      assert.deepEqual(there, Buffer.from(await primary.get(key)), key);
    }
    assert.deepEqual((await activities.writeDrillReport({ report })).keys, keys);

    const other = { ...report, requestedBy: 'mallory@example.com' };
    await assert.rejects(
      activities.writeDrillReport({ report: other }),
      (err: unknown) => err instanceof LifeboatError && /already exists.*not overwritten/.test(err.message),
    );
    const json = JSON.parse(Buffer.from(await secondary.get(keys[0]!)).toString('utf8')) as {
      requestedBy: string;
    };
    assert.equal(json.requestedBy, report.requestedBy);
  });
});
