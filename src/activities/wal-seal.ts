// How a WAL segment is stored: zstd, then age, so that stock `age -d | zstd -d` opens it.
import { Readable } from 'node:stream';
import { createAgeDecryptor, createAgeEncryptor, identitiesFromText } from './pipeline/age.ts';
import { zstdCompressBuffer, zstdDecompressBuffer } from './pipeline/zstd-buffer.ts';

export const WAL_ZSTD_LEVEL = 3;

/** zstd then age: what `age -d -i key | zstd -d` turns back into the segment. */
export async function sealWal(data: Uint8Array, recipients: string[], compress = true): Promise<Buffer> {
  const plain = compress ? await zstdCompressBuffer(data, WAL_ZSTD_LEVEL) : Buffer.from(data);
  const chunks: Buffer[] = [];
  for await (const chunk of Readable.from([plain]).pipe(createAgeEncryptor(recipients)))
    chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** age then zstd: a stored segment back to its bytes. `identity` is a key or a key file's text. */
export async function openWal(sealed: Buffer, identity: string): Promise<Buffer> {
  const identities = identitiesFromText(identity);
  const chunks: Buffer[] = [];
  for await (const chunk of Readable.from([sealed]).pipe(
    createAgeDecryptor(identities.length ? identities : [identity]),
  ))
    chunks.push(chunk as Buffer);
  return zstdDecompressBuffer(Buffer.concat(chunks));
}
