// What the join and the registry layer cache refuse. The join: a platform image that is not what the
// locks say (here: built with another SOURCE_DATE_EPOCH) is PLATFORM_MISMATCH naming it; nothing is
// tagged. The cache: an entry whose layer is not what its record says is passed over with a warning
// and the layer built; a sound entry is used and its blob verified into the local store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../../src/build.js';
import { publish } from '../../src/publish.js';
import { joinPlatforms } from '../../src/scaleout/join.js';
import { RegistryLayerCache } from '../../src/scaleout/registry-cache.js';
import { RegistryClient } from '../../src/registry/client.js';
import { isDistillError } from '../../src/errors.js';
import type { ProgressEvent } from '../../src/events.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { needsRegistry, startRegistry } from '../helpers/registry.js';

const snap = snapshotDir();
const skip = needsRegistry().skip || (snap === undefined ? NO_SNAPSHOT : false);
const def = join(repoRoot, 'images', 'static', 'image.yaml');

test('the join refuses a platform image the locks do not make, and a missing one, naming it', { skip }, async () => {
  const registry = await startRegistry();
  const dirs: string[] = [];
  const temp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'distill-scaleout-checks-'));
    dirs.push(d);
    return d;
  };
  try {
    const repo = `${registry.host}/distill/static`;
    const mirrors = { flags: snapshotMirrors(snap!), aptSources: [] };
    const work = async (arch: string, sourceDateEpoch?: number): Promise<void> => {
      const r = await buildImage(def, { cacheDir: temp(), mirrors, platforms: [arch], variants: ['latest'], ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}) });
      await publish(r, { registry: { repository: repo, perPlatform: true } });
    };
    await work('amd64');
    await assert.rejects(joinPlatforms(def, repo, { variants: ['latest'] }), (e: unknown) => isDistillError(e, 'PLATFORM_MISSING') && /static:latest-arm64/.test(e.message));
    await work('arm64', 946684800);
    await assert.rejects(joinPlatforms(def, repo, { variants: ['latest'] }), (e: unknown) => isDistillError(e, 'PLATFORM_MISMATCH') && /latest-arm64/.test(e.message) && /created 2/.test(e.message));
    const client = new RegistryClient(registry.host);
    try {
      assert.ok(!(await client.listTags('distill/static')).includes('latest'), 'nothing tagged after a refused join');
    } finally {
      await client.close();
    }
    // The join with the workers' SOURCE_DATE_EPOCH still finds amd64 (built with the lock's time) wrong.
    await assert.rejects(joinPlatforms(def, repo, { variants: ['latest'], sourceDateEpoch: 946684800 }), (e: unknown) => isDistillError(e, 'PLATFORM_MISMATCH') && /latest-amd64/.test(e.message));
    await work('amd64', 946684800);
    const ok = await joinPlatforms(def, repo, { variants: ['latest'], sourceDateEpoch: 946684800 });
    assert.equal(ok.variants[0]!.manifests.length, 2);
  } finally {
    await registry.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});

test('the registry layer cache: a sound entry is used, one whose layer is not its record is refused and the layer built', { skip }, async () => {
  const registry = await startRegistry();
  const dirs: string[] = [];
  const temp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'distill-scaleout-cache-'));
    dirs.push(d);
    return d;
  };
  try {
    const cacheRepo = `${registry.host}/distill/cache`;
    const mirrors = { flags: snapshotMirrors(snap!), aptSources: [] };
    const build = async (cache: RegistryLayerCache): Promise<{ sources: (string | undefined)[]; warnings: string[]; digest: string }> => {
      const events: ProgressEvent[] = [];
      const r = await buildImage(def, { cacheDir: temp(), mirrors, outDir: temp(), platforms: ['amd64'], variants: ['latest'], remoteLayerCache: cache, onProgress: (e) => events.push(e) });
      return {
        sources: events.flatMap((e) => (e.type === 'layer-written' ? [e.source] : [])),
        warnings: events.flatMap((e) => (e.type === 'warning' ? [e.message] : [])),
        digest: r.variants[0]!.manifests[0]!.digest,
      };
    };
    const recording: { key: string; record: Parameters<RegistryLayerCache['put']>[2] }[] = [];
    const first = new RegistryLayerCache(cacheRepo);
    const spy = Object.assign(Object.create(first) as RegistryLayerCache, {
      put: async (key: string, path: string, record: Parameters<RegistryLayerCache['put']>[2]) => {
        recording.push({ key, record });
        await first.put(key, path, record);
      },
    });
    const built = await build(spy);
    assert.deepEqual(built.sources, ['built']);
    const second = new RegistryLayerCache(cacheRepo);
    const reused = await build(second);
    assert.deepEqual(reused.sources, ['registry cache']);
    assert.equal(reused.digest, built.digest);

    // Tamper: the same key now names a record whose diff ID is not its layer's tar.
    const client = new RegistryClient(registry.host, { access: 'push' });
    try {
      const tag = `layer-${recording[0]!.key}`;
      const m = await client.getManifest('distill/cache', tag);
      const { Readable } = await import('node:stream');
      const { sha256Hex, toDigest } = await import('../../src/digest.js');
      const { canonicalJson } = await import('../../src/json.js');
      const r = recording[0]!.record;
      const bad = Buffer.from(canonicalJson({ digest: r.digest, diffId: toDigest('0'.repeat(64)), size: r.size, uncompressedSize: r.uncompressedSize, entries: r.entries }));
      const badDesc = { mediaType: 'application/vnd.distill.layer-record.v1+json', digest: toDigest(sha256Hex(bad)), size: bad.length };
      await client.uploadBlob('distill/cache', badDesc, () => Readable.from([bad]));
      const manifest = JSON.parse(m.bytes.toString('utf8')) as { config: object };
      manifest.config = badDesc;
      await client.putManifest('distill/cache', tag, Buffer.from(JSON.stringify(manifest)), 'application/vnd.oci.image.manifest.v1+json');
    } finally {
      await client.close();
    }
    const cacheWarnings: string[] = [];
    const third = new RegistryLayerCache(cacheRepo, { onProgress: (e) => e.type === 'warning' && cacheWarnings.push(e.message) });
    const rebuilt = await build(third);
    assert.deepEqual(rebuilt.sources, ['built']);
    assert.ok(cacheWarnings.some((w) => /registry layer cache .* not used, building the layer: .*diff ID/.test(w)), cacheWarnings.join('\n'));
    assert.equal(rebuilt.digest, built.digest);
    // The refused entry was replaced by the layer just built: the next worker uses it.
    const fourth = new RegistryLayerCache(cacheRepo);
    assert.deepEqual((await build(fourth)).sources, ['registry cache']);
    await Promise.all([first.close(), second.close(), third.close(), fourth.close()]);
  } finally {
    await registry.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});
