// Rebuild-and-compare as a consumer meets it: build, push, sign and attest to a loopback registry;
// `distill rebuild` from another directory with an empty cache says "identical"; a copy with one
// layer byte changed, pushed under another tag with the original attestations copied, is a mismatch
// naming the layer and the file; bad provenance is refused clearly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { validateProvenance } from '../../src/provenance/provenance.js';
import { validateSbom } from '../../src/provenance/sbom.js';
import { rebuild } from '../../src/rebuild.js';
import { RegistryClient } from '../../src/registry/client.js';
import { pushLayout } from '../../src/registry/push.js';
import { pullImage } from '../../src/registry/pull.js';
import { needsRegistry, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

const snap = snapshotDir();
const skip = needsRegistry().skip || (snap === undefined ? NO_SNAPSHOT : false);
const work = tempDir('distill-rebuild-');
let registry: RunningRegistry;
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

async function cli(args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const prev = process.cwd();
  if (cwd) process.chdir(cwd);
  try {
    const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: { HOME: work, COSIGN_PASSWORD: 'pw' } });
    return { code, stdout, stderr };
  } finally {
    process.chdir(prev);
  }
}
const mirrorArgs = (): string[] => Object.entries(snapshotMirrors(snap!)).flatMap(([k, v]) => ['--mirror', `${k}=${v}`]);

before(async () => {
  if (skip) return;
  registry = await startRegistry();
  assert.equal((await cli(['generate-key-pair', '--dir', work])).code, 0);
});
after(async () => {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('the layout build records valid SLSA provenance, and rebuilding the layout is identical', { skip: snap === undefined ? NO_SNAPSHOT : false }, async () => {
  const out = join(work, 'layout');
  const b = await cli(['build', join(repoRoot, 'images', 'static'), '--out', out, '--platform', 'amd64', '--cache', join(work, 'cache-a'), ...mirrorArgs()]);
  assert.equal(b.code, 0, b.stderr);
  const prov = JSON.parse(readFileSync(join(out, 'attestations', 'provenance.intoto.json'), 'utf8'));
  assert.deepEqual(validateProvenance(prov), []);
  assert.equal(prov.predicate.buildDefinition.externalParameters.definitions[0].content, readFileSync(join(repoRoot, 'images', 'static', 'image.yaml'), 'utf8'));
  assert.ok(prov.predicate.buildDefinition.resolvedDependencies.some((d: { name: string }) => d.name === 'busybox-static'));
  const r = await rebuild(out, { cacheDir: join(work, 'cache-b'), mirrors: { flags: snapshotMirrors(snap!), aptSources: [] } });
  assert.equal(r.identical, true, r.report);
  assert.equal(r.subjects.length, 4 * 2); // four variants: the index and the amd64 manifest of each

  // A provenance whose inline definition no longer matches its recorded digest is refused.
  const bad = join(work, 'layout-bad');
  cpSync(out, bad, { recursive: true });
  prov.predicate.buildDefinition.externalParameters.definitions[0].content += '# altered\n';
  writeFileSync(join(bad, 'attestations', 'provenance.intoto.json'), JSON.stringify(prov));
  await assert.rejects(rebuild(bad, { cacheDir: join(work, 'cache-b') }), (e: any) => e.code === 'PROVENANCE_MISMATCH' && /does not match its recorded digest/.test(e.message));

  // What the layout holds is what counts, not what its unsigned provenance claims.
  const emptied = join(work, 'layout-emptied');
  cpSync(out, emptied, { recursive: true });
  writeFileSync(join(emptied, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [] }));
  await assert.rejects(rebuild(emptied, { cacheDir: join(work, 'cache-b') }), (e: any) => e.code === 'OCI_INVALID');
  const good = JSON.parse(readFileSync(join(out, 'attestations', 'provenance.intoto.json'), 'utf8'));
  for (const [why, mutate] of [
    ['no subjects', (p: any) => void (p.subject = [])],
    ['an image name that climbs out', (p: any) => void (p.predicate.buildDefinition.externalParameters.image = '../../etc')],
    ['an unknown variant', (p: any) => void (p.predicate.buildDefinition.externalParameters.variants = ['latest; rm -rf'])],
  ] as const) {
    const dir = join(work, `layout-${why.replace(/\W+/g, '-')}`);
    cpSync(out, dir, { recursive: true });
    const p = JSON.parse(JSON.stringify(good));
    mutate(p);
    writeFileSync(join(dir, 'attestations', 'provenance.intoto.json'), JSON.stringify(p));
    await assert.rejects(rebuild(dir, { cacheDir: join(work, 'cache-b') }), (e: any) => e.code === 'PROVENANCE_INVALID', why);
  }
  // A --key means "check the signature": it cannot apply to a local layout.
  const keyed = await cli(['rebuild', out, '--key', join(work, 'cosign.pub'), '--cache', join(work, 'cache-b')]);
  assert.equal(keyed.code, 2);
  assert.match(keyed.stderr, /docker:\/\//);
});

test('build, push, sign and attest; rebuild elsewhere with an empty cache → identical; a tampered copy → mismatch naming layer and file', { skip }, async () => {
  const repo = `${registry.host}/distill/static`;
  const b = await cli(['build', join(repoRoot, 'images', 'static'), '--push', repo, '--sign-key', join(work, 'cosign.key'), '--json', '--cache', join(work, 'cache-c'), ...mirrorArgs()]);
  assert.equal(b.code, 0, b.stderr);
  const built = JSON.parse(b.stdout);
  assert.equal(built.attested.length, 4 + 8 * 2, 'provenance on 4 indexes, an SPDX and a CycloneDX SBOM on 8 platform images');

  // Each platform image carries a signed SPDX 2.3 SBOM.
  const sb = await cli(['verify-attestation', `${repo}:latest-amd64`, '--key', join(work, 'cosign.pub'), '--type', 'spdxjson']);
  assert.equal(sb.code, 0, sb.stderr);
  const sbom = JSON.parse(sb.stdout.trim().split('\n')[0]!).predicate;
  assert.equal(sbom.spdxVersion, 'SPDX-2.3');
  assert.deepEqual(validateSbom(sbom), []);
  assert.ok(sbom.packages.some((p: { name: string }) => p.name === 'tzdata'));

  const elsewhere = tempDir('distill-consumer-');
  const ok = await cli(['rebuild', `${repo}:latest`, '--key', join(work, 'cosign.pub'), '--cache', join(elsewhere, 'empty-cache'), ...mirrorArgs()], elsewhere);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^identical: /);

  // The tampered copy: one byte of /etc/nsswitch.conf changed inside the amd64 image's first layer.
  const dir = join(work, 'tampered');
  const pulled = await pullImage(`${repo}:latest`, dir, { refName: 'tampered' });
  const amd64 = pulled.manifests.find((m) => m.platform?.architecture === 'amd64')!.digest;
  const blob = (d: string): string => join(dir, 'blobs', 'sha256', d.replace(/^sha256:/, ''));
  const manifest = JSON.parse(readFileSync(blob(amd64), 'utf8'));
  const config = JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8'));
  const tar = execFileSync('gzip', ['-dc', blob(manifest.layers[0].digest)], { maxBuffer: 1 << 28 });
  const at = tar.indexOf('hosts:          files dns');
  assert.ok(at > 0, 'nsswitch.conf content found in the layer');
  tar[at] = 'H'.charCodeAt(0);
  const gz = execFileSync('gzip', ['-n', '-c'], { input: tar, maxBuffer: 1 << 28 });
  const put = (bytes: Buffer | string): string => {
    const d = sha(bytes);
    writeFileSync(join(dir, 'blobs', 'sha256', d), bytes);
    return `sha256:${d}`;
  };
  manifest.layers[0] = { ...manifest.layers[0], digest: put(gz), size: gz.length };
  config.rootfs.diff_ids[0] = `sha256:${sha(tar)}`;
  const cfgBytes = JSON.stringify(config);
  manifest.config = { ...manifest.config, digest: put(cfgBytes), size: Buffer.byteLength(cfgBytes) };
  const mBytes = JSON.stringify(manifest);
  const newManifest = put(mBytes);
  const index = JSON.parse(readFileSync(blob(pulled.digest), 'utf8'));
  index.manifests = index.manifests.map((m: { digest: string }) => (m.digest === amd64 ? { ...m, digest: newManifest, size: Buffer.byteLength(mBytes) } : m));
  const iBytes = JSON.stringify(index);
  const newIndex = put(iBytes);
  const layoutIndex = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  // (The pull brought the attestations along as refs of their own; only the image's ref is rewritten.)
  const entry = layoutIndex.manifests.find((m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'] === 'tampered');
  layoutIndex.manifests = [{ ...entry, digest: newIndex, size: Buffer.byteLength(iBytes) }];
  writeFileSync(join(dir, 'index.json'), JSON.stringify(layoutIndex));
  await pushLayout(dir, `${repo}:tampered`, { refs: ['tampered'], tags: { tampered: 'tampered' } });
  // … with the original attestations copied beside it.
  const client = new RegistryClient(registry.host, { access: 'push' });
  try {
    const att = await client.getManifest('distill/static', `sha256-${pulled.digest.slice(7)}.att`);
    await client.putManifest('distill/static', `sha256-${newIndex.slice(7)}.att`, att.bytes, att.mediaType);
  } finally {
    await client.close();
  }
  // The published image is read in place, not pulled into a temporary layout: watch the temp directory.
  const scratch = tempDir('distill-rebuild-tmp-');
  const made = new Set<string>();
  const paths = new Set<string>();
  const watcher = watch(scratch, { recursive: true }, (_e, name) => {
    if (!name) return;
    paths.add(name.toString());
    made.add(name.toString().split('/').slice(0, 2).join('/'));
  });
  const prevTmp = process.env.TMPDIR;
  process.env.TMPDIR = scratch;
  let bad;
  try {
    bad = await cli(['rebuild', `${repo}:tampered`, '--key', join(work, 'cosign.pub'), '--cache', join(work, 'cache-c'), ...mirrorArgs()], elsewhere);
  } finally {
    if (prevTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = prevTmp;
    watcher.close();
  }
  assert.deepEqual(readdirSync(scratch), [], 'nothing is left in the temp directory');
  // Only the rebuild's definitions (and the attestation's one small blob, read by verify) were
  // written: no layout of the published image, and none of the rebuilt one — it is compared as the
  // build's model, its blobs in the cache's store.
  const rebuildDirs = [...made].filter((p) => /^distill-rebuild-/.test(p) && p.includes('/'));
  assert.ok(rebuildDirs.length >= 1, [...made].join(', '));
  assert.deepEqual([...made].filter((p) => p.includes('/') && !/^distill-rebuild-[^/]+\/images$/.test(p)), [], 'no layout of the published or the rebuilt image');
  assert.deepEqual([...paths].filter((p) => /(^|\/)(oci-layout|index\.json)$/.test(p)), [], 'no oci-layout or index.json in the temp directory');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /\[REBUILD_DIFFERS\]/);
  assert.match(bad.stdout, /names sha256:[0-9a-f]{64}.*not this image/);
  assert.match(bad.stdout, /layer 0/);
  assert.match(bad.stdout, /etc\/nsswitch\.conf: content sha256:/);

  // An attestation signed by another key is refused.
  const other = join(work, 'other');
  mkdirSync(other);
  assert.equal((await cli(['generate-key-pair', '--dir', other])).code, 0);
  const wrongKey = await cli(['rebuild', `${repo}:latest`, '--key', join(other, 'cosign.pub'), '--cache', join(work, 'cache-c'), ...mirrorArgs()]);
  assert.equal(wrongKey.code, 1);
  assert.match(wrongKey.stderr, /\[ATTESTATION_INVALID\]/);
});
