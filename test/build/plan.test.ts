// Layer planning on crafted packages: a layer's key changes with every input that changes its bytes
// and with the layer below, and with nothing else; the layer cache answers a plan with a hit only for
// a layer it really holds (written by writeTree, recorded by the cache); every miss is reported at once.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { assembleImageLayer, CertificateSource, Slots, stageAll, writeTree } from '../../src/build/assemble.js';
import { indexOf, LayerCache } from '../../src/build/layer-cache.js';
import { planDebugLayer, planImageLayers, type PlanOptions } from '../../src/build/plan.js';
import type { LockedImage } from '../../src/lock/load.js';
import { CRAFTED_BUSYBOX, CRAFTED_CA_CERTIFICATES, lockCrafted, staging, syntheticImage, type SyntheticImageSpec } from '../helpers/stage-debs.js';
import { tempDir } from '../helpers/tmp.js';

async function chainOf(s: ReturnType<typeof staging>, app: Partial<SyntheticImageSpec> = {}, appPackage = 'app'): Promise<LockedImage[]> {
  const ca = await lockCrafted(s, CRAFTED_CA_CERTIFICATES);
  const base = await lockCrafted(s, { name: 'base-files', files: { 'etc/debian_version': '13\n' } });
  const root = syntheticImage({ name: 'root', packages: [base, ca], debug: [await lockCrafted(s, CRAFTED_BUSYBOX)] });
  const pkg = await lockCrafted(s, { name: appPackage, files: { 'usr/bin/app': 'app' } });
  return [root, syntheticImage({ name: 'app', base: root.definition, packages: [pkg], ...app })];
}

const keys = async (chain: LockedImage[], opts: PlanOptions = {}): Promise<string[]> => (await planImageLayers(chain, 'amd64', opts)).map((p) => p.key);

test('keys: stable for the same inputs; each input changes its layer and every layer above, never one below', async () => {
  const s = staging();
  const k = await keys(await chainOf(s));
  assert.equal(new Set(k).size, 2);
  assert.deepEqual(await keys(await chainOf(s)), k, 'the same inputs, the same keys');
  // An input of the top layer changes only its key.
  for (const change of [{ files: [{ path: '/etc/x', content: 'x' }] }, { paths: { keep: [], drop: ['usr/bin/**'], setid: [] } }, { timestamp: '2026-01-01T00:00:00Z' }, { accounts: { users: [{ name: 'root', uid: 0, gid: 0 }], groups: [{ name: 'root', gid: 0 }] } }]) {
    const other = await keys(await chainOf(s, change as Partial<SyntheticImageSpec>));
    assert.equal(other[0], k[0], JSON.stringify(change));
    assert.notEqual(other[1], k[1], JSON.stringify(change));
  }
  // Another package in the top layer: its key; the build-wide settings: every key.
  assert.notEqual((await keys(await chainOf(s, {}, 'other-app')))[1], k[1]);
  for (const opts of [{ sourceDateEpoch: 1 }, { compression: 'zstd' as const }]) {
    const other = await keys(await chainOf(s), opts);
    assert.ok(other.every((x, i) => x !== k[i]), JSON.stringify(opts));
  }
  assert.deepEqual(await keys(await chainOf(s), { compression: 'gzip' }), k, 'gzip is the default, and keys say nothing of it');
  // The root layer's plan: system files and accounts; the app's: neither (same accounts).
  const plans = await planImageLayers(await chainOf(s), 'amd64', {});
  assert.deepEqual(plans.map((p) => [p.isRoot, p.accountsChanged]), [[true, true], [false, false]]);
  // The debug layer is keyed on its owner's layer.
  const d1 = await planDebugLayer(plans[0]!.li, 'amd64', k[0]!, {});
  const d2 = await planDebugLayer(plans[0]!.li, 'amd64', 'another lower key', {});
  assert.notEqual(d1.key, d2.key);
  assert.deepEqual(d1.pkgs.map((p) => p.name), ['busybox-static']);
});

test('a Java runtime in a chain without ca-certificates: planned, then refused at assembly, naming the image', async () => {
  const s = staging();
  const jre = await lockCrafted(s, { name: 'openjdk-21-jre-headless', files: { 'usr/lib/jvm/x/bin/java': 'java' } });
  const li = syntheticImage({ name: 'jre', packages: [jre] });
  const [plan] = await planImageLayers([li], 'amd64', {});
  const ctx = { store: s.store, stageDir: s.stageDir, slots: new Slots(1) };
  await assert.rejects(
    assembleImageLayer({ li, arch: 'amd64', staged: await stageAll(plan!.pkgs, ctx, li), lower: new Map(), mtime: plan!.mtime, isRoot: true, accountsChanged: true, certificates: CertificateSource.forChain([li], 'amd64', ctx) }, ctx),
    (e: any) => e.code === 'BUILD_FAILED' && /^jre: a Java runtime needs the CA certificates/.test(e.message),
  );
});

test('the cache: misses reported as planned, a written layer a hit next time, history never taken from the cache', async () => {
  const s = staging();
  const chain = await chainOf(s);
  const cache = new LayerCache(s.store);
  const missed: string[] = [];
  const plans = await planImageLayers(chain, 'amd64', { cache }, (p) => missed.push(p.li.definition.name));
  assert.deepEqual(missed, ['root', 'app']);
  assert.ok(plans.every((p) => p.hit === undefined));
  // Assemble and write the root layer as the build does, and record it.
  const ctx = { store: s.store, stageDir: s.stageDir, slots: new Slots(2) };
  const root = plans[0]!;
  const tree = await assembleImageLayer({ li: root.li, arch: 'amd64', staged: await stageAll(root.pkgs, ctx, root.li), lower: new Map(), mtime: root.mtime, isRoot: true, accountsChanged: true, certificates: CertificateSource.forChain(chain, 'amd64', ctx) }, ctx);
  const file = join(tempDir('distill-plan-'), 'layer.tar.gz');
  const result = await writeTree(tree, file, root.mtime, undefined, 'gzip');
  await cache.put(root.key, file, { digest: result.digest, diffId: result.diffId, size: result.size, uncompressedSize: result.uncompressedSize, entries: indexOf(tree.values()) });
  const again: string[] = [];
  const replanned = await planImageLayers(chain, 'amd64', { cache }, (p) => again.push(p.li.definition.name));
  assert.deepEqual(again, ['app']);
  const hit = replanned[0]!.hit!;
  assert.deepEqual([hit.digest, hit.diffId, hit.source], [result.digest, result.diffId, 'local cache']);
  // Its path index is what the layers above check conflicts against.
  assert.ok(hit.entries.some(([p]) => p === 'etc/ssl/certs/ca-certificates.crt'));
  // No cache: nothing is looked up, every layer is a miss.
  assert.ok((await planImageLayers(chain, 'amd64', {})).every((p) => p.hit === undefined));
});
