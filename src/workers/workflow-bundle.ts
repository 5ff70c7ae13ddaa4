// The workflow bundle a worker runs, built once per version of the code and kept on disk: building
// it takes seconds of CPU, and a worker restarted after a crash (or a region's worker brought up
// during a failover) should poll at once. The key covers every file the bundle can be built from
// (all of src/, the lockfile, the SDK's version, Node's), so a changed line never runs stale code.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';

const require = createRequire(import.meta.url);
const SRC = path.resolve(import.meta.dirname, '..');
const ROOT = path.resolve(SRC, '..');
const CACHE = path.join(ROOT, 'node_modules', '.cache', 'lifeboat');

/** The bundle of src/workflows (with the audit interceptor), from the cache when the code is unchanged. */
export async function workflowBundle(
  log: (line: string) => void,
  cacheDir = CACHE,
): Promise<WorkflowBundleWithSourceMap> {
  const file = path.join(
    cacheDir,
    `workflow-bundle-${codeKey(SRC, [path.join(ROOT, 'package-lock.json')])}.json`,
  );
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as WorkflowBundleWithSourceMap;
  } catch {
    // Not built yet for this code (or unreadable): build it.
  }
  const started = Date.now();
  const bundle = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows/index.ts'),
    // Every run leaves a write-once audit record in the repository (src/workflows/audit-interceptor.ts),
    // and backup runs that fail are counted (src/workflows/backup-run-metrics-interceptor.ts).
    workflowInterceptorModules: [
      require.resolve('../workflows/audit-interceptor.ts'),
      require.resolve('../workflows/backup-run-metrics-interceptor.ts'),
    ],
    logger: quietBundlerLogger,
  });
  try {
    fs.mkdirSync(cacheDir, { recursive: true });
    // Written aside and renamed: two workers starting at once never read half a file.
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(bundle));
    fs.renameSync(tmp, file);
    for (const old of fs.readdirSync(cacheDir))
      if (old.startsWith('workflow-bundle-') && old.endsWith('.json') && path.join(cacheDir, old) !== file)
        fs.rmSync(path.join(cacheDir, old), { force: true });
  } catch (err) {
    log(`lifeboat worker: workflow bundle not cached (${(err as Error).message}); built each start`);
  }
  log(`lifeboat worker: workflow code bundled in ${Date.now() - started} ms (cached for the next start)`);
  return bundle;
}

/** A digest of every file under `srcDir` (names and contents), the `extra` files, and Node's version. */
export function codeKey(srcDir: string, extra: string[]): string {
  const h = createHash('sha256');
  h.update(`node ${process.version}\n`);
  for (const file of [...sourceFiles(srcDir), ...extra]) {
    const content = fs.readFileSync(file);
    h.update(`${path.relative(srcDir, file)} ${content.length}\n`);
    h.update(content);
  }
  return h.digest('hex').slice(0, 32);
}

function sourceFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => (e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

const quietBundlerLogger = {
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => process.stderr.write(`workflow bundler: ${message}\n`),
  error: (message: string) => process.stderr.write(`workflow bundler: ${message}\n`),
  log: () => undefined,
};
