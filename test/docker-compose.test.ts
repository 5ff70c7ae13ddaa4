// docker-compose.yml cannot run here (no Docker engine), so its shape is checked: the services
// the README promises, pinned images, the ports of the embedded stack, and a valid plan.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { SEARCH_ATTRIBUTES } from '../src/domain/search-attributes.ts';
import { stackLayout } from '../src/stack/layout.ts';
import { readPlanFile } from '../src/workers/plan-file.ts';
import { repoRoot } from './support/plans.ts';

type Service = { image?: string; command?: string[]; ports?: string[]; entrypoint?: string[] };
const compose = parse(fs.readFileSync(path.join(repoRoot, 'docker-compose.yml'), 'utf8'), {
  merge: true,
}) as {
  services: Record<string, Service>;
};
const layout = stackLayout('/tmp/unused');

describe('docker-compose.yml', () => {
  it('offers Temporal, two PostgreSQL, SeaweedFS, moto and a worker per region', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), [
      'moto',
      'postgres-us-east-1',
      'postgres-us-west-2',
      'seaweedfs',
      'temporal',
      'worker-us-east-1',
      'worker-us-west-2',
    ]);
  });

  it('pins every image to a version', () => {
    for (const [name, s] of Object.entries(compose.services)) assert.match(s.image ?? '', /:[\w.-]+$/, name);
    for (const s of Object.values(compose.services)) assert.doesNotMatch(s.image ?? '', /:latest$/);
  });

  it('publishes the ports of the embedded stack', () => {
    const published = (name: string) =>
      (compose.services[name]?.ports ?? []).map((p) => Number(p.split(':')[0]));
    assert.deepEqual(published('temporal'), [layout.temporal.port, layout.temporal.uiPort]);
    assert.deepEqual(published('postgres-us-east-1'), [layout.postgres['us-east-1'].port]);
    assert.deepEqual(published('postgres-us-west-2'), [layout.postgres['us-west-2'].port]);
    assert.deepEqual(published('seaweedfs'), [layout.s3.port]);
    assert.deepEqual(published('moto'), [layout.route53.port]);
  });

  it('registers every Lifeboat search attribute in Temporal', () => {
    const registered = (compose.services.temporal?.command ?? [])
      .filter((a) => a.startsWith('--search-attribute='))
      .map((a) => a.slice('--search-attribute='.length));
    assert.deepEqual(
      registered.sort(),
      Object.entries(SEARCH_ATTRIBUTES)
        .map(([k, t]) => `${k}=${t}`)
        .sort(),
    );
  });

  it('runs each worker for a region of its plan, and the plan is valid', () => {
    const plan = readPlanFile(path.join(repoRoot, 'docker', 'lifeboat.compose.yaml'));
    assert.ok(plan.ok, JSON.stringify(!plan.ok && plan.problems));
    for (const region of Object.keys(plan.plan.regions)) {
      const worker = compose.services[`worker-${region}`];
      assert.match((worker?.command ?? []).join(' '), new RegExp(`lifeboat worker --region ${region}\\b`));
    }
    assert.equal(plan.plan.regions['us-east-1']!.postgres.host, 'postgres-us-east-1');
  });
});
