// The local stack as a whole, up: every part answers where status says, a second `up` reuses
// everything, the replica streams from the primary, Temporal knows Lifeboat's search attributes.
// The stack is never brought down here: other tests use it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { SEARCH_ATTRIBUTES } from '../../src/domain/search-attributes.ts';
import { STACK_SECRET_ENV } from '../../src/stack/layout.ts';
import { requireTool } from '../../src/stack/prerequisites.ts';
import { stackStatus, type PartStatus, type StackStatus } from '../../src/stack/stack.ts';
import { missingSearchAttributes } from '../../src/stack/temporal-server.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli } from '../support/workers.ts';

const PARTS = [
  'temporal',
  'postgres-us-east-1',
  'postgres-us-west-2',
  's3',
  'route53',
  'kubernetes-us-east-1',
  'kubernetes-us-west-2',
];

describe('lifeboat stack', () => {
  let stack: TestStack;
  const byName = (status: StackStatus, name: string): PartStatus => {
    const part = status.parts.find((p) => p.name === name);
    assert.ok(part, `status lists ${name}`);
    return part;
  };
  const connect = async (region: 'us-east-1' | 'us-west-2') => {
    const c = stack.layout.postgres[region];
    const client = new pg.Client({
      host: c.host,
      port: c.port,
      user: stack.layout.postgres.appUser,
      password: stack.secrets[STACK_SECRET_ENV.pgPassword],
      database: stack.layout.postgres.database,
    });
    await client.connect();
    return client;
  };

  before(async () => {
    stack = await ensureStack();
  });

  it('status reports every part running, with addresses and no password', async () => {
    const status = await stackStatus(stack.layout);
    assert.deepEqual(status.parts.map((p) => p.name).sort(), [...PARTS].sort());
    assert.deepEqual(
      status.parts.filter((p) => !p.running).map((p) => p.name),
      [],
    );
    assert.equal(status.running, true);

    const temporal = byName(status, 'temporal');
    assert.equal(temporal.address, '127.0.0.1:7233');
    assert.equal(temporal.details.webUi, 'http://127.0.0.1:8233');
    assert.equal(byName(status, 'postgres-us-east-1').address, 'postgres://lifeboat@127.0.0.1:15432/orders');
    assert.equal(byName(status, 'postgres-us-east-1').details.role, 'primary');
    assert.equal(byName(status, 'postgres-us-west-2').address, 'postgres://lifeboat@127.0.0.1:15433/orders');
    assert.equal(byName(status, 'postgres-us-west-2').details.role, 'replica');
    assert.equal(byName(status, 's3').address, 'https://127.0.0.1:18333');
    assert.equal(byName(status, 's3').details.bucket, 'lifeboat-backups');
    assert.equal(byName(status, 'route53').address, 'http://127.0.0.1:15000');
    assert.equal(byName(status, 'route53').details.zone, 'lifeboat.internal.');
    for (const region of ['us-east-1', 'us-west-2'] as const) {
      const k = byName(status, `kubernetes-${region}`);
      assert.equal(k.address, stack.layout.kubernetes[region].server);
      assert.equal(k.details.kubeconfig, stack.layout.kubernetes[region].kubeconfig);
      assert.ok(fs.existsSync(k.details.kubeconfig ?? ''), `${k.details.kubeconfig} exists`);
    }
    const text = JSON.stringify(status);
    for (const [name, value] of Object.entries(stack.secrets))
      assert.ok(!text.includes(value), `status does not print ${name}`);
  });

  it('`stack status --json` prints one JSON document and exits 0', async () => {
    const run = await runCli(['stack', 'status', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const status = JSON.parse(run.stdout) as StackStatus;
    assert.equal(status.running, true);
    assert.deepEqual(status.parts.map((p) => p.name).sort(), [...PARTS].sort());
  });

  it('a second `up` reuses every part: same processes, nothing started', async () => {
    const before = await stackStatus(stack.layout);
    const run = await runCli(['stack', 'up', '--json']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const result = JSON.parse(run.stdout) as {
      ok: boolean;
      seconds: number;
      parts: { name: string; action: string }[];
    };
    assert.equal(result.ok, true);
    assert.deepEqual(
      result.parts.filter((p) => p.action !== 'reused').map((p) => `${p.name} ${p.action}`),
      [],
    );
    const after = await stackStatus(stack.layout);
    const pids = (s: StackStatus) => Object.fromEntries(s.parts.map((p) => [p.name, p.pid]));
    assert.deepEqual(pids(after), pids(before));
    for (const name of PARTS) assert.ok(byName(after, name).pid, `${name} has a pid`);
  });

  it('the replica streams from the primary over its slot and is in recovery', async () => {
    const primary = await connect('us-east-1');
    const replica = await connect('us-west-2');
    try {
      const rep = await primary.query<{ application_name: string; state: string }>(
        'select application_name, state from pg_stat_replication',
      );
      assert.deepEqual(
        rep.rows.map((r) => `${r.application_name} ${r.state}`),
        ['us-west-2 streaming'],
      );
      const slot = await primary.query<{ active: boolean; slot_type: string }>(
        'select active, slot_type from pg_replication_slots where slot_name = $1',
        [stack.layout.postgres['us-west-2'].slot],
      );
      assert.deepEqual(slot.rows, [{ active: true, slot_type: 'physical' }]);
      assert.deepEqual((await primary.query('select pg_is_in_recovery() as r')).rows, [{ r: false }]);

      assert.deepEqual((await replica.query('select pg_is_in_recovery() as r')).rows, [{ r: true }]);
      const receiver = await replica.query<{ status: string; slot_name: string }>(
        'select status, slot_name from pg_stat_wal_receiver',
      );
      assert.deepEqual(receiver.rows, [{ status: 'streaming', slot_name: 'replica_us_west_2' }]);
      await assert.rejects(replica.query('create table t_should_fail (x int)'), /read-only transaction/);

      // The replica replays what the primary has written.
      const lsn = (await primary.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!
        .lsn;
      for (let i = 0; ; i++) {
        const caught = await replica.query<{ ok: boolean }>(
          'select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok',
          [lsn],
        );
        if (caught.rows[0]!.ok) break;
        assert.ok(i < 100, `the replica replayed up to ${lsn} within 10s`);
        await sleep(100);
      }
      const count = (c: pg.Client) => c.query<{ n: string }>('select count(*)::text as n from orders');
      assert.ok(Number((await count(primary)).rows[0]!.n) > 0, 'the orders table has rows');
    } finally {
      await primary.end();
      await replica.end();
    }
  });

  it('the lifeboat role is no superuser but may back up, promote and rewind', async () => {
    const primary = await connect('us-east-1');
    try {
      const role = await primary.query<{ rolsuper: boolean; rolreplication: boolean }>(
        'select rolsuper, rolreplication from pg_roles where rolname = current_user',
      );
      assert.deepEqual(role.rows, [{ rolsuper: false, rolreplication: true }]);
      for (const fn of [
        'pg_promote(boolean, integer)',
        'pg_switch_wal()',
        'pg_create_restore_point(text)',
        'pg_backup_start(text, boolean)',
        'pg_backup_stop(boolean)',
        'pg_read_binary_file(text, bigint, bigint, boolean)',
      ]) {
        const r = await primary.query<{ ok: boolean }>("select has_function_privilege($1, 'execute') as ok", [
          fn,
        ]);
        assert.equal(r.rows[0]!.ok, true, `lifeboat may execute ${fn}`);
      }
      const owner = await primary.query<{ owner: string }>(
        'select pg_get_userbyid(datdba) as owner from pg_database where datname = current_database()',
      );
      assert.deepEqual(owner.rows, [{ owner: 'lifeboat' }]);
    } finally {
      await primary.end();
    }
  });

  it('Temporal has Lifeboat search attributes registered', async () => {
    assert.deepEqual(await missingSearchAttributes(stack.layout), []);
    const listed = execFileSync(
      requireTool(stack.layout, 'temporal'),
      ['operator', 'search-attribute', 'list', '--address', stack.layout.temporal.address, '-o', 'json'],
      { encoding: 'utf8' },
    );
    for (const name of Object.keys(SEARCH_ATTRIBUTES)) assert.match(listed, new RegExp(`"${name}"`));
  });

  it('secrets are private and the age recipient matches the identity', () => {
    assert.equal(fs.statSync(stack.layout.secretsFile).mode & 0o777, 0o600);
    for (const name of Object.values(STACK_SECRET_ENV)) assert.ok(stack.secrets[name], `${name} is set`);
    const identity = stack.secrets[STACK_SECRET_ENV.ageIdentity]!;
    assert.match(identity, /^AGE-SECRET-KEY-1[0-9A-Z]+$/);
    const recipient = execFileSync('age-keygen', ['-y'], { input: identity, encoding: 'utf8' }).trim();
    assert.ok(fs.readFileSync(stack.layout.ageRecipientsFile, 'utf8').split('\n').includes(recipient));
  });

  it('bad arguments exit 2 with a clear message', async () => {
    const unknown = await runCli(['stack', 'sideways']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown action "sideways"/);
    const none = await runCli(['stack']);
    assert.equal(none.code, 2);
    const flag = await runCli(['stack', 'status', '--colour']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--colour/);
    const fileOnStatus = await runCli(['stack', 'status', '-f', 'examples/lifeboat.yaml']);
    assert.equal(fileOnStatus.code, 2);
  });
});
