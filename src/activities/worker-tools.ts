// Whether this worker can run the stock tools of its pipelines (zstd and age for backups; curl,
// age and bsdtar for restores): each found and answering `--version`. Asked by the doctor, on
// each region's task queue, because a restore that finds bsdtar missing fails during the
// incident it was meant to end.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Finding } from '../domain/doctor.ts';
import { binaries, installHint, TOOLS, type Binaries } from './pipeline/binaries.ts';
import type { Environment } from './ports/environment.ts';

const run = promisify(execFile);

export function createWorkerToolActivities(deps: { env: Environment }) {
  return {
    async checkWorkerTools(input: { region: string }): Promise<Finding> {
      const tools = binaries(deps.env);
      const answers = await Promise.all(
        (Object.keys(TOOLS) as (keyof Binaries)[]).map(async (tool) => {
          try {
            const { stdout, stderr } = await run(tools[tool], ['--version'], { timeout: 10_000 });
            const version = /v?\d+\.\d+(\.\d+)?/.exec(`${stdout}\n${stderr}`)?.[0] ?? '(no version)';
            return { tool, ok: true, text: `${tool} ${version}` };
          } catch (err) {
            const e = err as NodeJS.ErrnoException & { stderr?: string };
            const why = e.code === 'ENOENT' ? 'not found' : `does not run: ${(e.stderr || e.message).trim()}`;
            return {
              tool,
              ok: false,
              text: `${tool} ${why} (${tools[tool]}; ${installHint([tool])})`,
            };
          }
        }),
      );
      const missing = answers.filter((a) => !a.ok);
      return {
        system: 'worker',
        target: input.region,
        region: input.region,
        ok: missing.length === 0,
        detail: (missing.length ? missing : answers).map((a) => a.text).join('; '),
      };
    },
  };
}
