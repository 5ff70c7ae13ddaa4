// Payload encryption for everything Lifeboat puts in Temporal's history (inputs, results, the
// plan it acted on): AES-256-GCM with a key only workers, the CLI and the codec server hold.
// Secrets never enter history in the first place; this keeps the rest (hosts, LSNs, findings)
// private from whoever can read the Temporal database.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';

const ENCODING = 'binary/encrypted';
const enc = new TextEncoder();
const dec = new TextDecoder();

export interface CodecKey {
  id: string;
  key: Buffer;
}

/** The codec key from LIFEBOAT_CODEC_KEY (base64 of 32 bytes) and LIFEBOAT_CODEC_KEY_ID; none when unset. */
export function codecKeyFromEnv(env: NodeJS.ProcessEnv): CodecKey | undefined {
  const text = env.LIFEBOAT_CODEC_KEY;
  if (!text) return undefined;
  const key = Buffer.from(text, 'base64');
  if (key.length !== 32)
    throw new Error('LIFEBOAT_CODEC_KEY must be 32 bytes, base64-encoded (openssl rand -base64 32)');
  return { id: env.LIFEBOAT_CODEC_KEY_ID ?? 'default', key };
}

export class AesGcmCodec implements PayloadCodec {
  readonly #keys: Map<string, Buffer>;
  readonly #current: CodecKey;

  /** Encrypts with `current`; decrypts with it or any older key in `previous` (key rotation). */
  constructor(current: CodecKey, previous: CodecKey[] = []) {
    this.#current = current;
    this.#keys = new Map([...previous, current].map((k) => [k.id, k.key]));
  }

  encode(payloads: Payload[]): Promise<Payload[]> {
    return settle(() =>
      payloads.map((payload) => {
        const iv = randomBytes(12);
        const cipher = createCipheriv('aes-256-gcm', this.#current.key, iv);
        const plain = Buffer.from(JSON.stringify(payloadToJson(payload)));
        const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
        return {
          metadata: { encoding: enc.encode(ENCODING), 'encryption-key-id': enc.encode(this.#current.id) },
          data: sealed,
        };
      }),
    );
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    return settle(() =>
      payloads.map((payload) => {
        if (dec.decode(payload.metadata?.encoding) !== ENCODING) return payload;
        const keyId = dec.decode(payload.metadata?.['encryption-key-id']);
        const key = this.#keys.get(keyId);
        if (!key)
          throw new Error(`payload encrypted with codec key "${keyId}", which this process does not hold`);
        const data = Buffer.from(payload.data ?? new Uint8Array());
        const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, 12));
        decipher.setAuthTag(data.subarray(data.length - 16));
        const plain = Buffer.concat([decipher.update(data.subarray(12, data.length - 16)), decipher.final()]);
        return payloadFromJson(JSON.parse(plain.toString('utf8')) as JsonPayload);
      }),
    );
  }
}

/** The codec's work is synchronous; a failure must still arrive as a rejected promise. */
function settle<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

type JsonPayload = { metadata: Record<string, string>; data: string };

function payloadToJson(p: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    ),
    data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
  };
}

function payloadFromJson(j: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(j.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
    data: Buffer.from(j.data, 'base64'),
  };
}

/** The data converter option for workers and clients: encryption when a key is configured. */
export function dataConverterFromEnv(env: NodeJS.ProcessEnv): { payloadCodecs: PayloadCodec[] } | undefined {
  const key = codecKeyFromEnv(env);
  return key ? { payloadCodecs: [new AesGcmCodec(key)] } : undefined;
}
