import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { stackLayout } from '../../src/stack/layout.ts';
import { renderStackPlan } from '../../src/stack/stack-plan.ts';
import { readPlanFile } from '../../src/workers/plan-file.ts';
import { examplePlanFile, repoRoot } from '../support/plans.ts';
import { tempDir } from '../support/temp-dir.ts';

describe("the stack's own plan", () => {
  const tmp = tempDir('lifeboat-stack-plan-');
  const read = (text: string) => {
    const file = path.join(tmp, `${Math.random()}.yaml`);
    fs.writeFileSync(file, text);
    const result = readPlanFile(file);
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
    return result.plan;
  };

  it('says exactly what examples/lifeboat.yaml says for the default stack', () => {
    const example = readPlanFile(examplePlanFile);
    assert.ok(example.ok);
    assert.deepEqual(read(renderStackPlan(stackLayout(path.join(repoRoot, '.lifeboat')))), example.plan);
  });

  it('moves every port by the offset and points at the stack state folder', () => {
    const layout = stackLayout(path.join(tmp, 'state'), 300);
    const plan = read(renderStackPlan(layout));
    assert.equal(plan.regions['us-east-1']!.postgres.port, 15732);
    assert.equal(plan.regions['us-west-2']!.postgres.port, 15733);
    assert.equal(plan.storage.primary.endpoint, 'https://127.0.0.1:18633');
    assert.equal(plan.storage.primary.caFile, path.join(tmp, 'state', 'tls', 'ca.pem'));
    assert.equal(plan.dns!.endpoint, 'http://127.0.0.1:15300');
    assert.equal(
      plan.regions['us-west-2']!.kubernetes!.kubeconfig,
      path.join(tmp, 'state', 'kubernetes', 'us-west-2.kubeconfig'),
    );
    assert.equal(layout.temporal.address, '127.0.0.1:7533');
    assert.equal(layout.kubernetes['us-east-1'].server, 'http://127.0.0.1:16743');
  });
});
