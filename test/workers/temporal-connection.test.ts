import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { temporalTarget, webUiLink } from '../../src/workers/temporal-connection.ts';

describe('Temporal connection from the environment', () => {
  const cases = [
    {
      name: 'the default dev server',
      env: {},
      link: 'http://localhost:8233/namespaces/default/workflows/doctor-x',
    },
    {
      name: 'a dev server on a shifted port',
      env: { TEMPORAL_ADDRESS: '127.0.0.1:7533' },
      link: 'http://127.0.0.1:8533/namespaces/default/workflows/doctor-x',
    },
    {
      name: 'Temporal Cloud with an explicit Web UI',
      env: {
        TEMPORAL_ADDRESS: 'ns.a1b2c.tmprl.cloud:7233',
        TEMPORAL_NAMESPACE: 'ns.a1b2c',
        LIFEBOAT_WEB_UI: 'https://cloud.temporal.io/',
      },
      link: 'https://cloud.temporal.io/namespaces/ns.a1b2c/workflows/doctor-x',
    },
    {
      name: 'a remote cluster without a Web UI address',
      env: { TEMPORAL_ADDRESS: 'temporal.internal:7233' },
      link: '(Web UI) /namespaces/default/workflows/doctor-x',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const env = { ...c.env } as NodeJS.ProcessEnv;
      assert.equal(webUiLink(temporalTarget(env), 'doctor-x', env), c.link);
    });
  }
});
