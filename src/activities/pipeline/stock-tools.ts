// curl and age as the pipelines start them, with what they must not show in `ps` on stdin: the
// presigned URL (a bearer token for the object) and the age identity.
import type { PresignedGet } from '../ports/object-store.ts';
import { startTool, type Tool, type ToolOptions } from './child.ts';

/** How a tool is run: as it is, or wrapped (dieWithParent, runuser). */
export type Wrap = (command: string, args: string[]) => [string, string[]];
const asItIs: Wrap = (command, args) => [command, args];

/** curl GETs `source` (failing on an HTTP error), with `args` saying where its bytes go. */
export function startPresignedGet(
  curl: string,
  source: PresignedGet,
  args: string[],
  options: ToolOptions & { wrap?: Wrap } = {},
): Tool {
  const { wrap = asItIs, ...rest } = options;
  const tool = startTool(
    'curl',
    ...wrap(curl, [
      ...['--fail', '--show-error', '--config', '-'],
      ...(source.caFile ? ['--cacert', source.caFile] : []),
      ...args,
    ]),
    rest,
  );
  whenStarted(tool, `url = ${JSON.stringify(source.url)}\n`);
  return tool;
}

/** age decrypts the file at `input` (a FIFO: stdin carries the identity) to its stdout. */
export function startAgeDecrypt(
  age: string,
  identity: string,
  input: string,
  options: ToolOptions & { wrap?: Wrap } = {},
): Tool {
  const { wrap = asItIs, ...rest } = options;
  const tool = startTool('age', ...wrap(age, ['-d', '-i', '-', input]), rest);
  whenStarted(tool, identity);
  return tool;
}

function whenStarted(tool: Tool, stdin: string): void {
  tool.child.stdin!.on('error', () => undefined); // a tool that died early is reported by its exit
  tool.child.stdin!.end(stdin);
}
