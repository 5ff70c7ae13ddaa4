// Payload encryption: the codec itself, the codec server the Web UI talks to, and a real doctor
// run whose history holds only ciphertext while the CLI and `temporal --codec-endpoint` read it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { AesGcmCodec } from '../../src/codec/aes-gcm-codec.ts';
import { createCodecServer } from '../../src/codec/codec-server.ts';
import { payloadTexts } from '../support/history.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';

const key = { id: 'k2', key: randomBytes(32) };
const oldKey = { id: 'k1', key: randomBytes(32) };
const codec = new AesGcmCodec(key, [oldKey]);
const payload = defaultPayloadConverter.toPayload({ host: 'db.internal', lsn: '0/3000060' });

describe('AES-256-GCM payload codec', () => {
  it('round-trips a payload and hides its content', async () => {
    const [sealed] = await codec.encode([payload]);
    assert.equal(Buffer.from(sealed!.metadata!.encoding!).toString(), 'binary/encrypted');
    assert.ok(!Buffer.from(sealed!.data!).toString('latin1').includes('db.internal'));
    const [opened] = await codec.decode([sealed!]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(opened!), { host: 'db.internal', lsn: '0/3000060' });
  });

  it('decodes with a previous key after rotation, and names a key it does not hold', async () => {
    const [sealedOld] = await new AesGcmCodec(oldKey).encode([payload]);
    const [opened] = await codec.decode([sealedOld!]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(opened!), { host: 'db.internal', lsn: '0/3000060' });
    const [sealedOther] = await new AesGcmCodec({ id: 'k9', key: randomBytes(32) }).encode([payload]);
    await assert.rejects(codec.decode([sealedOther!]), /codec key "k9", which this process does not hold/);
  });

  it('refuses a tampered payload', async () => {
    const [sealed] = await codec.encode([payload]);
    const data = Buffer.from(sealed!.data!);
    data[20]! ^= 1;
    await assert.rejects(codec.decode([{ ...sealed!, data }]));
  });

  it('serves /decode and CORS to the Web UI', async () => {
    const server = createCodecServer(codec, 'http://127.0.0.1:8233');
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const [sealed] = await codec.encode([payload]);
      const wire = {
        payloads: [
          {
            metadata: Object.fromEntries(
              Object.entries(sealed!.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
            ),
            data: Buffer.from(sealed!.data!).toString('base64'),
          },
        ],
      };
      const res = await fetch(`${base}/decode`, { method: 'POST', body: JSON.stringify(wire) });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), 'http://127.0.0.1:8233');
      const out = (await res.json()) as { payloads: { data: string }[] };
      assert.deepEqual(JSON.parse(Buffer.from(out.payloads[0]!.data, 'base64').toString()), {
        host: 'db.internal',
        lsn: '0/3000060',
      });
      assert.equal((await fetch(`${base}/decode`, { method: 'OPTIONS' })).status, 204);
    } finally {
      server.close();
    }
  });
});

describe('an encrypted doctor run on the local stack', () => {
  let stack: TestStack;
  let workers: WorkerProcess[] = [];
  let env: NodeJS.ProcessEnv;
  before(async () => {
    stack = await ensureStack();
    env = { ...stack.env, LIFEBOAT_CODEC_KEY: key.key.toString('base64'), LIFEBOAT_CODEC_KEY_ID: key.id };
    workers = await Promise.all(
      ['us-east-1', 'us-west-2'].map((r) => startWorker(r, stack.layout.secretsFile, stack.planFile, env)),
    );
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGTERM')));
  });

  it('keeps history encrypted while the CLI and the codec endpoint read it', async () => {
    const run = await runCli(['doctor', '-f', stack.planFile, '--json'], env);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const { workflowId } = JSON.parse(run.stdout) as { workflowId: string };

    const connection = await Connection.connect({ address: stack.layout.temporal.address });
    try {
      const history = await new Client({ connection }).workflow.getHandle(workflowId).fetchHistory();
      const texts = payloadTexts(history).join('\n');
      assert.match(texts, /binary\/encrypted/);
      assert.doesNotMatch(texts, /orders@us-east-1|lifeboat-backups|127\.0\.0\.1/);
    } finally {
      await connection.close();
    }

    const server = createCodecServer(codec, 'http://127.0.0.1:8233');
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      // Asynchronously: the codec server answering the CLI runs on this process's event loop.
      const { stdout: shown } = await promisify(execFile)(
        path.join(stack.layout.toolsBin, 'temporal'),
        [
          'workflow',
          'show',
          '--workflow-id',
          workflowId,
          '--address',
          stack.layout.temporal.address,
          '--codec-endpoint',
          `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          '--output',
          'json',
        ],
        { encoding: 'utf8' },
      );
      const decoded = payloadTexts(historyFromJSON(JSON.parse(shown))).join('\n');
      assert.match(decoded, /orders@us-east-1/);
    } finally {
      server.close();
    }
  });
});
