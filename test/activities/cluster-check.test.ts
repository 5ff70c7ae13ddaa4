// Doctor's cluster check on the stack's Kubernetes API stand-ins: a region whose cluster a backup
// policy exports needs a worker that can name the objects (the repository's age identity); a
// worker without it is a problem found by doctor, not a backup failing at its export step.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createKubernetesActivities } from '../../src/activities/kubernetes.ts';
import { createKubernetesCluster } from '../../src/activities/ports/kubernetes-cluster.ts';
import { kubernetesSelection } from '../../src/domain/kubernetes-snapshot.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';

describe("doctor's cluster check and the export's naming key", () => {
  let stack: TestStack;
  const activities = (env: Record<string, string | undefined>) =>
    createKubernetesActivities({
      plan: stack.plan,
      env,
      clusters: {
        'us-east-1': createKubernetesCluster(stack.layout.kubernetes['us-east-1'].kubeconfig),
        'us-west-2': createKubernetesCluster(stack.layout.kubernetes['us-west-2'].kubeconfig),
      },
    });

  before(async () => {
    stack = await ensureStack();
    // The stack's plan exports the orders database's namespace from us-east-1's cluster.
    assert.equal(kubernetesSelection(stack.plan, 'orders')?.region, 'us-east-1');
  });

  it('passes with the identity; without it, the exporting region fails naming the variable, the other passes', async () => {
    const identityEnv = stack.plan.storage.encryption.identityEnv;
    const withIdentity = await activities(stack.secrets).checkCluster({ region: 'us-east-1' });
    assert.equal(withIdentity.ok, true, withIdentity.detail);

    const without = { ...stack.secrets, [identityEnv]: undefined };
    const east = await activities(without).checkCluster({ region: 'us-east-1' });
    assert.equal(east.ok, false);
    assert.match(east.detail, /^reachable \(.*\); this worker cannot export the objects of orders: /);
    assert.match(east.detail, new RegExp(`${identityEnv} is not set on this worker`));
    const west = await activities(without).checkCluster({ region: 'us-west-2' });
    assert.equal(west.ok, true, west.detail);
  });
});
