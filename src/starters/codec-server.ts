// `lifeboat codec-server`: serves the payload codec to the Temporal Web UI and CLI.
import { AesGcmCodec, codecKeyFromEnv } from '../codec/aes-gcm-codec.ts';
import { createCodecServer } from '../codec/codec-server.ts';
import { parseCommandArgs } from './args.ts';
import { EXIT, printError } from './output.ts';

export async function run(argv: string[]): Promise<number> {
  const args = parseCommandArgs('codec-server', argv, {
    port: { type: 'string' },
    host: { type: 'string' },
    'ui-origin': { type: 'string' },
  });
  if (!args) return EXIT.badInput;
  const port = Number(args.port ?? '8888');
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    printError('--port: expected a port number');
    return EXIT.badInput;
  }
  const key = codecKeyFromEnv(process.env);
  if (!key) {
    printError('LIFEBOAT_CODEC_KEY is not set: the codec server has nothing to decode with');
    return EXIT.badInput;
  }
  const origin = (args['ui-origin'] as string | undefined) ?? 'http://127.0.0.1:8233';
  const server = createCodecServer(new AesGcmCodec(key), origin);
  const host = (args.host as string | undefined) ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  process.stderr.write(
    `lifeboat codec server on http://${host}:${port} (key ${key.id}, Web UI origin ${origin})\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => server.close(() => resolve());
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return EXIT.ok;
}
