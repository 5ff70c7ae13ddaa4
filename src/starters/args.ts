// Command-line arguments are input like any other: a mistake is exit 2 with a clear message.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { printError } from './output.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parsed options and positionals, or undefined after printing what is wrong. */
export function parseCommandArgs(
  command: string,
  argv: string[],
  options: Options,
  allowPositionals = false,
): (Record<string, string | boolean | string[] | boolean[] | undefined> & { _: string[] }) | undefined {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals, strict: true });
    return { ...values, _: positionals };
  } catch (err) {
    printError(`${command}: ${(err as Error).message}`);
    return undefined;
  }
}
