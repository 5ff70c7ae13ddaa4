// The Lifeboat manifest: what a full backup writes validates, and a damaged one is named.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BaseBackupResult } from '../../src/domain/backup.ts';
import { catalogEntry, parseManifest, serializeManifest } from '../../src/domain/manifest.ts';
import { baseBackupFixture, fullManifestFixture } from '../support/manifests.ts';

const base: BaseBackupResult = baseBackupFixture();

const manifest = fullManifestFixture({ base });

describe('the full backup manifest', () => {
  it('validates, round-trips through its stored bytes, and says full with no parent', () => {
    const parsed = parseManifest(serializeManifest(manifest));
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.problems.join('; '));
    assert.deepEqual(parsed.manifest, manifest);
    assert.equal(manifest.kind, 'full');
    assert.equal(manifest.parent, null);
    assert.equal(manifest.timings.totalMs, 939);
    assert.equal(manifest.timings.attempts, 2);
  });

  it('serializes the same bytes every time, so a retried write is recognised', () => {
    assert.equal(serializeManifest(manifest), serializeManifest(structuredClone(manifest)));
  });

  it('makes a catalog row with the LSN range, sizes and verification', () => {
    assert.deepEqual(catalogEntry(manifest), {
      id: 'orders-full-20261122T163500Z',
      kind: 'full',
      parent: null,
      time: '2026-11-22T16:35:01.154Z',
      startLsn: '0/8000028',
      stopLsn: '0/8000100',
      timeline: 1,
      rawBytes: 48373760,
      storedBytes: 3727612,
      verified: true,
      verifiedAt: '2026-11-22T16:35:01.473Z',
      durationMs: 939,
    });
  });

  const damaged = [
    { name: 'not JSON', text: '{', problem: /not JSON/ },
    {
      name: 'a checksum that is not sha256',
      text: serializeManifest({ ...manifest, objects: [{ ...manifest.objects[0]!, sha256: 'abc' }] }),
      problem: /objects\.0\.sha256: expected a hex sha256/,
    },
    {
      name: 'no stored object',
      text: serializeManifest({ ...manifest, objects: [] }),
      problem: /objects: /,
    },
    {
      name: 'an unknown field',
      text: JSON.stringify({ ...manifest, extra: 1 }),
      problem: /Unrecognized key: "extra"/,
    },
  ];
  for (const c of damaged)
    it(`names the problem of a manifest with ${c.name}`, () => {
      const parsed = parseManifest(c.text);
      assert.equal(parsed.ok, false);
      assert.match(parsed.ok ? '' : parsed.problems.join('; '), c.problem);
    });
});
