// `lifeboat compliance` on the real local stack: a plan copy whose repository holds a fresh, real
// full backup (taken by the worker through the CLI), its WAL, a copy in the second location and a
// passed drill passes every rule (exit 0); a second plan copy whose repository breaks each rule
// fails each with its evidence (exit 1). The archived WAL is written as stand-in objects under the
// archiver's keys: the rule reads the archive's listing, and a running archiver would make the
// segment names depend on timing. Lifeboat does not copy backups to storage.secondary yet, so the
// test copies the manifest there itself, as the replication would.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { createObjectStore, type ObjectStore } from '../../src/activities/ports/object-store.ts';
import type { ComplianceReport, RuleId } from '../../src/domain/compliance.ts';
import { parseManifest, serializeManifest, type BackupManifest } from '../../src/domain/manifest.ts';
import { repository } from '../../src/domain/repository.ts';
import { nextSegment, segmentOfLsn } from '../../src/domain/wal.ts';
import { loadPlan } from '../../src/workers/plan-file.ts';
import { drillReportFixture, failedDrillReportFixture } from '../support/drill-reports.ts';
import { ensureStack, type TestStack } from '../support/stack.ts';
import { runCli, startWorker, type WorkerProcess } from '../support/workers.ts';

const DB = 'orders';
const DAY = 86_400_000;
const HOUR = 3_600_000;
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
const shift = (iso: string, ms: number) => new Date(Date.parse(iso) - ms).toISOString();

describe('lifeboat compliance on the local stack', () => {
  let stack: TestStack;
  let worker: WorkerProcess;
  let tmp: string;
  let manifest: BackupManifest;
  const planFiles = { good: '', bad: '' };
  const stores: Record<string, ObjectStore> = {};
  const cli = (plan: keyof typeof planFiles, args: string[]) =>
    runCli(['compliance', ...args, '-f', planFiles[plan]], stack.env);
  const evidenceOf = (r: ComplianceReport, rule: RuleId) => {
    const found = r.results.find((x) => x.rule === rule)!;
    return { status: found.status, text: found.evidence.join(' | ') };
  };

  /** A plan copy on its own prefixes; the secondary location and retention as the case needs. */
  function planCopy(name: keyof typeof planFiles, root: string, yearly: number): void {
    const raw = parse(fs.readFileSync(stack.planFile, 'utf8'));
    raw.storage.secondary = {
      ...raw.storage.primary,
      url: `s3://${stack.layout.s3.bucket}/${root}/${name}-dr`,
    };
    raw.storage.primary.url = `s3://${stack.layout.s3.bucket}/${root}/${name}`;
    for (const p of raw.backup.policies)
      p.retention = { daily: 7, weekly: 4, monthly: 12, yearly, minAge: '1d', requiredYears: 7 };
    planFiles[name] = path.join(tmp, `${name}.yaml`);
    fs.writeFileSync(planFiles[name], stringify(raw));
    const plan = loadPlan(planFiles[name]);
    stores[name] = createObjectStore(plan.storage.primary, stack.env);
    stores[`${name}-dr`] = createObjectStore(plan.storage.secondary!, stack.env);
  }
  const walStandIn = (store: ObjectStore, segment: string) =>
    store.put(repository.walSegment('', DB, segment), 'stand-in');

  before(async () => {
    stack = await ensureStack();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-compliance-'));
    const root = `test-compliance-${Date.now()}`;
    planCopy('good', root, 7);
    planCopy('bad', root, 0);

    // GOOD: a real full backup of orders, its WAL from the backup's first segment on, the manifest
    // copied to the second location, and a passed drill 5 days ago.
    worker = await startWorker('us-east-1', stack.layout.secretsFile, planFiles.good, stack.env);
    const backup = await runCli(
      ['backup', 'full', '--database', DB, '--json', '-f', planFiles.good],
      stack.env,
    );
    assert.equal(backup.code, 0, backup.stdout + backup.stderr);
    const id = (JSON.parse(backup.stdout) as { backupId: string }).backupId;
    const text = Buffer.from(await stores.good!.get(repository.manifest('', DB, id))).toString('utf8');
    const parsed = parseManifest(text);
    assert.ok(parsed.ok);
    manifest = parsed.manifest;
    const size = manifest.postgres.walSegmentSize;
    const first = segmentOfLsn(manifest.postgres.timeline, manifest.start.lsn, size);
    const segments = [first, nextSegment(first, size), nextSegment(nextSegment(first, size), size)];
    await Promise.all(segments.map((s) => walStandIn(stores.good!, s)));
    await stores['good-dr']!.put(repository.manifest('', DB, id), text);
    await stores.good!.put(
      repository.drillReport('', DB, 'drill-ok', 'report.json'),
      JSON.stringify(drillReportFixture({ drillId: 'drill-ok' }, ago(5 * DAY))),
    );

    // BAD: the same backup 5 h older, an unencrypted manifest, WAL with a hole, nothing in the
    // second location, a failed drill 2 days ago and a passed one 100 days ago, yearly 0 of 7.
    const stale: BackupManifest = {
      ...manifest,
      start: { ...manifest.start, time: shift(manifest.start.time, 5 * HOUR) },
      stop: { ...manifest.stop, time: shift(manifest.stop.time, 5 * HOUR) },
      timings: {
        ...manifest.timings,
        startedAt: shift(manifest.timings.startedAt, 5 * HOUR),
        finishedAt: shift(manifest.timings.finishedAt, 5 * HOUR),
      },
      verification: { ...manifest.verification, at: shift(manifest.verification.at, 5 * HOUR) },
    };
    await stores.bad!.put(repository.manifest('', DB, id), serializeManifest(stale));
    await stores.bad!.put(
      repository.manifest('', DB, `${DB}-full-clear`),
      JSON.stringify({ ...manifest, id: `${DB}-full-clear`, encryption: { format: 'none', recipients: [] } }),
    );
    await Promise.all([segments[0]!, segments[2]!].map((s) => walStandIn(stores.bad!, s)));
    await stores.bad!.put(
      repository.drillReport('', DB, 'drill-failed', 'report.json'),
      JSON.stringify(failedDrillReportFixture({ drillId: 'drill-failed' }, ago(2 * DAY))),
    );
    await stores.bad!.put(
      repository.drillReport('', DB, 'drill-old', 'report.json'),
      JSON.stringify(drillReportFixture({ drillId: 'drill-old' }, ago(100 * DAY))),
    );
  });

  after(async () => {
    await worker?.stop('SIGTERM');
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a fresh, encrypted, copied, drilled and continuous repository passes every rule: exit 0', async () => {
    const html = path.join(tmp, 'good.html');
    const run = await cli('good', ['--json', '--html', html]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const r = JSON.parse(run.stdout) as ComplianceReport;
    assert.equal(r.passed, true);
    assert.deepEqual(r.counts, { pass: 6, fail: 0, 'not-applicable': 0 });
    assert.match(
      evidenceOf(r, 'backup-fresh').text,
      new RegExp(`newest verified backup ${manifest.id} \\(full\\)`),
    );
    assert.match(
      evidenceOf(r, 'backups-encrypted').text,
      /1 backup manifest\(s\), every object age-encrypted.*3 archived WAL object\(s\), all \.age/,
    );
    assert.match(
      evidenceOf(r, 'second-location').text,
      new RegExp(
        `good-dr holds 1 backup manifest\\(s\\) of orders, the newest verified \\(${manifest.id}\\)`,
      ),
    );
    assert.match(
      evidenceOf(r, 'drill-recent').text,
      /drill drill-ok \(restore\) .*: passed, RTO 4m30s \(target 15m\)/,
    );
    assert.match(evidenceOf(r, 'wal-continuous').text, /3 segment\(s\) archived .* no gap/);
    assert.match(evidenceOf(r, 'retention-years').text, /7 yearly: about 7 year\(s\); required 7/);
    const page = fs.readFileSync(html, 'utf8');
    assert.match(page, /all rules pass/);
    assert.equal([...page.matchAll(/<tr><td><span class="badge"/g)].length, 6);
  });

  it('a repository that breaks every rule fails each with its evidence: exit 1', async () => {
    const run = await cli('bad', ['--json']);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    const r = JSON.parse(run.stdout) as ComplianceReport;
    assert.equal(r.passed, false);
    assert.deepEqual(r.counts, { pass: 0, fail: 6, 'not-applicable': 0 });
    const ev = (rule: RuleId) => {
      const e = evidenceOf(r, rule);
      assert.equal(e.status, 'fail', `${rule}: ${e.text}`);
      return e.text;
    };
    assert.match(ev('backup-fresh'), new RegExp(`${manifest.id} .* (5h|5h\\d+m) ago.*older than 4h`));
    assert.match(
      ev('backups-encrypted'),
      /manifests\/orders-full-clear\.json: unreadable manifest, encryption cannot be shown \(encryption\.format: /,
    );
    assert.match(
      ev('second-location'),
      /bad-dr, but it does not hold the newest verified backup .* \(0 manifest\(s\) of orders there; Lifeboat does not copy/,
    );
    assert.match(ev('drill-recent'), /no drill since .* met tier 1's targets.*drill drill-failed .*: failed/);
    assert.match(ev('wal-continuous'), /1 segment\(s\) missing from \S+ before \S+/);
    assert.match(ev('retention-years'), /0 yearly: about 1 year\(s\); required 7/);

    // The table says the same, one line per rule, with FAIL in front.
    const table = await cli('bad', []);
    assert.equal(table.code, 1, table.stderr);
    for (const rule of [
      'backup-fresh',
      'backups-encrypted',
      'second-location',
      'drill-recent',
      'wal-continuous',
      'retention-years',
    ])
      assert.match(table.stdout, new RegExp(`^FAIL  ${rule} +(orders|orders-daily) +\\S`, 'm'));
    assert.match(table.stdout, /0 passed, 6 failed, 0 not applicable/);
  });

  it('refuses bad input with exit 2, every problem listed', async () => {
    const missing = path.join(tmp, 'missing.yaml');
    const run = await runCli(['compliance', '--html', tmp, '-f', missing], stack.env);
    assert.equal(run.code, 2, run.stdout + run.stderr);
    assert.match(run.stderr, /--html: expected a file to write/);
    assert.match(run.stderr, /missing\.yaml/);
  });
});
