// A base backup restored with the stock tools of the break-glass path: curl downloads the stored
// object from a presigned URL (so it holds no credentials), age decrypts it, and bsdtar
// decompresses it and writes it into the data directory, each piped straight into the next. No
// byte of it passes through Node: on the benchmark's two cores the download and decryption in a
// Node thread cost the worker about 2 s of CPU for 245 MB (TLS records of 16 KiB, garbage
// collection), curl and age together 0.6-0.75 s. bsdtar decompresses zstd itself: `zstd -d | tar x`
// moved the 1.5 GB tar through one more pipe, and cost 2.2-2.6 s of CPU where bsdtar takes
// 1.5-1.7 s for the same archive (the same files, byte for byte).
import { createInterface } from 'node:readline';
import { LifeboatError } from '../../domain/errors.ts';
import type { PresignedGet } from '../ports/object-store.ts';
import type { Binaries } from './binaries.ts';
import { allOrKill, dieWithParent, startTool } from './child.ts';
import { withFifos } from './fifo.ts';
import { flushBehind, type FlushCount } from './flush-behind.ts';
import { startAgeDecrypt, startPresignedGet } from './stock-tools.ts';

export interface ExtractOptions {
  source: PresignedGet;
  /** The age identity text (secret keys): handed to age through a pipe, never a file or argv. */
  identity: string;
  binaries: Pick<Binaries, 'curl' | 'age' | 'bsdtar'>;
  dataDir: string;
  /** How tar is run: as the PostgreSQL OS user when the worker is root. */
  runAs: (command: string, args: string[]) => [string, string[]];
  signal: AbortSignal;
  /** Fraction (0-1) of the object downloaded so far, as curl reports it. */
  onProgress?: (fraction: number) => void;
}

export interface ExtractResult {
  /** Bytes downloaded (curl's count). */
  storedBytes: number;
  flush: FlushCount;
}

const CURL_BYTES = /^lifeboat-bytes (\d+)$/m;
const CURL_PERCENT = /(\d+(?:\.\d+)?)%/g;
/** bsdtar -v: `x <member>`, the line ended once the member is written; an error follows a colon. */
const MEMBER_DONE = /^x ([^:]+)$/;

export function extractBaseBackup(options: ExtractOptions): Promise<ExtractResult> {
  // curl writes into a FIFO that age reads, so that age's standard input can carry the identity:
  // age opens no socket as a file (Node's pipes to a child are socket pairs), and a FIFO holds
  // no bytes at rest, where an identity file would.
  return withFifos(['ciphertext'], ({ ciphertext }) => extractThrough(ciphertext, options));
}

async function extractThrough(fifo: string, options: ExtractOptions): Promise<ExtractResult> {
  const { source, binaries, signal } = options;
  let curlStderr = '';
  // No Node process is in this chain: each tool dies with the worker (dieWithParent), or curl
  // would go on downloading, and tar writing into the directory, after the worker was gone.
  const curl = startPresignedGet(
    binaries.curl,
    source,
    ['--progress-bar', '--output', fifo, '--write-out', '%{stderr}lifeboat-bytes %{size_download}\n'],
    {
      wrap: dieWithParent,
      stdio: ['pipe', 'ignore', 'pipe'],
      onStderr: (text) => {
        curlStderr = `${curlStderr}${text}`.slice(-4096);
        const percent = [...text.matchAll(CURL_PERCENT)].at(-1);
        if (percent) options.onProgress?.(Number(percent[1]) / 100);
      },
      isProgress: (line) => /^[#\s]*(\d+(\.\d+)?%)?$/.test(line) || CURL_BYTES.test(line),
    },
  );
  const age = startAgeDecrypt(binaries.age, options.identity, fifo, { wrap: dieWithParent });
  // -v names each member, the line ended once it is written, for the flush behind it; 1 MiB
  // reads from the pipe (-b 2048) instead of 10 KiB ones.
  const [tarCommand, tarArgs] = options.runAs(binaries.bsdtar, [
    ...['-x', '-v', '-b', '2048', '-f', '-', '-C', options.dataDir],
  ]);
  const tar = startTool('bsdtar', tarCommand, tarArgs, {
    stdio: [age.child.stdout!, 'ignore', 'pipe'],
    isProgress: (line) => MEMBER_DONE.test(line),
  });
  // Each tool holds its own end of the pipes between them; with ours closed, a tool that stops
  // early makes the one before it fail on its next write instead of blocking forever.
  age.child.stdout!.destroy();
  const flush = flushBehind(options.dataDir);
  const members = createInterface({ input: tar.child.stderr! });
  members.on('line', (line) => {
    const member = MEMBER_DONE.exec(line)?.[1];
    if (member) flush.finished(member);
  });
  const chain = [curl, age, tar];
  try {
    await allOrKill(
      chain.map((t) => t.done),
      chain,
      signal,
    );
  } finally {
    members.close();
  }
  const flushed = await flush.finish();
  const stored = CURL_BYTES.exec(curlStderr);
  if (!stored)
    throw new LifeboatError('IntegrityError', `curl did not report what it downloaded: ${curlStderr.trim()}`);
  return { storedBytes: Number(stored[1]), flush: flushed };
}
