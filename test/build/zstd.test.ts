// build --compression zstd: python3 (amd64) built from the committed lock against the frozen snapshot,
// with tar+zstd layers. The zstd CLI reads every layer to the very tar the gzip build writes (same diff
// IDs); skopeo reads and copies the layout; umoci unpacks it when it knows zstd; the image runs under
// chroot and under podman; the digests do not depend on the cache or worker count; the provenance names the compression.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, type BuildResult } from '../../src/build.js';
import { rebuild } from '../../src/rebuild.js';
import { scanLayers } from '../../src/provenance/sbom.js';
import { MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_LAYER_ZSTD } from '../../src/oci/media-types.js';
import { DEFAULT_LEVEL } from '../../src/layer/gzip.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { imageConfigOf, removeUnpacked, runAsConfigured, runIn, unpack, whyCannotRun } from '../helpers/image-run.js';

const snap = snapshotDir();
const skip = snap === undefined ? NO_SNAPSHOT : false;
const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
// Lower-case only: podman names an image pulled from oci:PATH after the path, and refuses upper case.
const dir = join(tmpdir(), `distill-zstd-build-${randomBytes(6).toString('hex')}`);
mkdirSync(dir);
const cache = join(dir, 'cache');
const zlayout = join(dir, 'zstd');
const glayout = join(dir, 'gzip');
let zstdBuild: BuildResult;
let gzipBuild: BuildResult;

const blob = (layout: string, digest: string): Buffer => readFileSync(join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
const json = (layout: string, digest: string): any => JSON.parse(blob(layout, digest).toString('utf8'));
const manifestOf = (r: BuildResult, variant: string) => r.variants.find((v) => v.variant === variant)!.manifests[0]!;

before(async () => {
  if (skip) return;
  const mirrors = { flags: snapshotMirrors(snap!), aptSources: [] };
  const def = join(repoRoot, 'images', 'python3', 'image.yaml');
  zstdBuild = await buildImage(def, { cacheDir: cache, mirrors, outDir: zlayout, platforms: ['amd64'], variants: ['latest', 'nonroot'], compression: 'zstd' });
  // The same cache: the gzip build must not be served the zstd layers (the key names the compression).
  gzipBuild = await buildImage(def, { cacheDir: cache, mirrors, outDir: glayout, platforms: ['amd64'], variants: ['latest'] });
});

after(() => {
  removeUnpacked();
  rmSync(dir, { recursive: true, force: true });
});

test('zstd layers carry the tar+zstd media type and hold the same tars as the gzip build', { skip }, () => {
  const z = json(zlayout, manifestOf(zstdBuild, 'latest').digest);
  const g = json(glayout, manifestOf(gzipBuild, 'latest').digest);
  assert.ok(z.layers.length >= 3);
  for (const l of z.layers) assert.equal(l.mediaType, MEDIA_TYPE_LAYER_ZSTD);
  for (const l of g.layers) assert.equal(l.mediaType, MEDIA_TYPE_LAYER_GZIP);
  const zc = json(zlayout, z.config.digest);
  const gc = json(glayout, g.config.digest);
  // diff IDs are of the uncompressed tar: identical, so only the blobs (and so the digests) differ.
  assert.deepEqual(zc.rootfs.diff_ids, gc.rootfs.diff_ids);
  assert.notEqual(manifestOf(zstdBuild, 'latest').digest, manifestOf(gzipBuild, 'latest').digest);
  let zsize = 0;
  let gsize = 0;
  z.layers.forEach((l: { digest: string; size: number }, i: number) => {
    zsize += l.size;
    gsize += g.layers[i].size;
    if (!has('zstd')) return;
    const r = spawnSync('zstd', ['-dc'], { input: blob(zlayout, l.digest), maxBuffer: 1 << 30 });
    assert.equal(r.status, 0, r.stderr.toString());
    assert.equal(`sha256:${createHash('sha256').update(r.stdout).digest('hex')}`, zc.rootfs.diff_ids[i], `layer ${i}: zstd -d gives another tar`);
  });
  assert.ok(zsize < gsize, `zstd ${zsize} bytes vs gzip ${gsize}`);
});

test('the provenance records the compression', { skip }, () => {
  const p = readFileSync(join(zlayout, 'attestations', 'provenance.intoto.json'), 'utf8');
  const internal = JSON.parse(p).predicate.buildDefinition.internalParameters;
  assert.equal(internal.compression, 'zstd');
  assert.match(internal.zstd.implementation, /^zstd 1\.5\.4/);
  assert.equal(internal.gzip, undefined);
  const gp = JSON.parse(readFileSync(join(glayout, 'attestations', 'provenance.intoto.json'), 'utf8')).predicate.buildDefinition.internalParameters;
  assert.equal(gp.compression, undefined);
  assert.equal(gp.gzip.level, DEFAULT_LEVEL);
});

test('the digests do not depend on the layer cache or the worker count', { skip }, async () => {
  const again = join(dir, 'again');
  mkdirSync(join(dir, 'cache2'));
  const r = await buildImage(join(repoRoot, 'images', 'python3', 'image.yaml'), {
    cacheDir: join(dir, 'cache2'),
    mirrors: { flags: snapshotMirrors(snap!), aptSources: [] },
    outDir: again,
    platforms: ['amd64'],
    variants: ['latest', 'nonroot'],
    compression: 'zstd',
    gzipWorkers: 0,
    noLayerCache: true,
  });
  assert.deepEqual(r.variants.map((v) => v.index), zstdBuild.variants.map((v) => v.index));
  // And from the (verified) layer cache of the first build.
  const cached = await buildImage(join(repoRoot, 'images', 'python3', 'image.yaml'), {
    cacheDir: cache,
    mirrors: { flags: snapshotMirrors(snap!), aptSources: [] },
    outDir: join(dir, 'cached'),
    platforms: ['amd64'],
    variants: ['latest', 'nonroot'],
    compression: 'zstd',
  });
  assert.deepEqual(cached.variants.map((v) => v.index), zstdBuild.variants.map((v) => v.index));
});

test('skopeo inspects and copies the zstd layout', { skip: skip || (!has('skopeo') && 'skopeo is not installed') }, () => {
  const i = spawnSync('skopeo', ['inspect', `oci:${zlayout}:latest-amd64`], { encoding: 'utf8' });
  assert.equal(i.status, 0, i.stderr);
  assert.equal(JSON.parse(i.stdout).Digest, manifestOf(zstdBuild, 'latest').digest);
  const copy = join(dir, 'copy');
  // --preserve-digests: skopeo must carry the zstd blobs as they are (it refuses if it would recompress).
  const c = spawnSync('skopeo', ['copy', '--preserve-digests', `oci:${zlayout}:latest-amd64`, `oci:${copy}:latest`], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(c.status, 0, c.stderr);
  const ci = spawnSync('skopeo', ['inspect', '--raw', `oci:${copy}:latest`], { encoding: 'utf8' });
  assert.equal(`sha256:${createHash('sha256').update(ci.stdout).digest('hex')}`, manifestOf(zstdBuild, 'latest').digest);
  for (const l of JSON.parse(ci.stdout).layers) assert.equal(l.mediaType, MEDIA_TYPE_LAYER_ZSTD);
});

test('umoci unpacks the zstd image and python3 runs in it (or says it cannot read tar+zstd)', { skip: skip || whyCannotRun() }, (t) => {
  let root: string;
  try {
    root = unpack(zlayout, 'latest-amd64');
  } catch (e) {
    // Debian bookworm's umoci 0.4.7 predates zstd: it refuses the media type by name. Any other
    // failure is ours.
    const m = /blob is not correct mediatype: application\/vnd\.oci\.image\.layer\.v1\.tar\+zstd/.exec(String(e));
    if (m === null) throw e;
    t.skip(`${spawnSync('umoci', ['--version'], { encoding: 'utf8' }).stdout.trim()} cannot unpack tar+zstd layers ("${m[0]}")`);
    return;
  }
  const r = runIn(root, ['/usr/bin/python3.13', '-c', 'import ssl, sqlite3, json; print(len(ssl.create_default_context().get_ca_certs()))']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Number(r.stdout.trim()) > 100);
});

test('applied layer by layer with GNU tar and zstd, as a runtime applies them, python3 runs (root and nonroot)', { skip: skip || whyCannotRun() || (!has('zstd') && 'zstd is not installed') }, () => {
  for (const variant of ['latest', 'nonroot']) {
    const root = join(dir, `rootfs-${variant}`);
    mkdirSync(root);
    try {
      const m = json(zlayout, manifestOf(zstdBuild, variant).digest);
      for (const l of m.layers) {
        // Our layers hold no whiteouts (each adds to the one below), so plain extraction in order is the runtime's result.
        const x = spawnSync('tar', ['--zstd', '-xpf', join(zlayout, 'blobs', 'sha256', l.digest.slice(7)), '-C', root, '--numeric-owner'], { encoding: 'utf8' });
        assert.equal(x.status, 0, x.stderr);
      }
      const r = runAsConfigured(root, imageConfigOf(zlayout, `${variant}-amd64`), { cmd: ['-c', 'import os, ssl, sqlite3; print(os.getuid(), len(ssl.create_default_context().get_ca_certs()))'] });
      assert.equal(r.code, 0, r.stderr);
      const [uid, certs] = r.stdout.trim().split(' ').map(Number);
      assert.equal(uid, variant === 'nonroot' ? 65532 : 0);
      assert.ok(certs! > 100);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
});

test('podman (a real runtime) pulls the zstd layout and runs python3, root and nonroot', { skip: skip || (spawnSync('sh', ['-c', 'command -v podman && command -v runc']).status !== 0 && 'podman or runc is not installed') || whyCannotRun() }, () => {
  // Lowercase hex only: podman names an oci: image after its path (see below).
  const store = join(tmpdir(), `distill-podman-zstd-${randomBytes(6).toString('hex')}`);
  mkdirSync(store);
  // A private store (vfs, no daemon), as in images.test.ts: nothing of the host's podman is touched.
  const podman = (...args: string[]) => spawnSync('podman', ['--root', join(store, 'root'), '--runroot', join(store, 'run'), '--storage-driver', 'vfs', '--runtime', 'runc', ...args], { encoding: 'utf8', timeout: 180_000 });
  // podman names an oci: image after its path, and a repository name must be lowercase: mkdtemp's
  // random suffix may not be, so the layout is reached through a lowercase link.
  const layout = join(store, 'layout');
  symlinkSync(zlayout, layout);
  try {
    for (const [variant, uid] of [['latest', '0'], ['nonroot', '65532']] as const) {
      const run = podman('run', '--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', `oci:${layout}:${variant}-amd64`, '-c', 'import os, ssl; print(os.getuid(), len(ssl.create_default_context().get_ca_certs()) > 100)');
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.stdout, `${uid} True\n`);
    }
  } finally {
    podman('rmi', '-a', '-f');
    rmSync(store, { recursive: true, force: true });
  }
});

test('distill rebuild reproduces the zstd layout from its provenance (the compression comes from it)', { skip }, async () => {
  const r = await rebuild(zlayout, { cacheDir: cache, mirrors: { flags: snapshotMirrors(snap!), aptSources: [] }, workDir: dir });
  assert.equal(r.identical, true, r.report);
  assert.ok(r.subjects.length >= 4);
});

test('the SBOM reader reads zstd layers (as for a layer taken from the cache) as it reads the gzip ones', { skip }, async () => {
  const files = (layout: string, r: BuildResult): string[] =>
    json(layout, manifestOf(r, 'latest').digest).layers.map((l: { digest: string }) => join(layout, 'blobs', 'sha256', l.digest.slice(7)));
  const z = await scanLayers(files(zlayout, zstdBuild));
  const g = await scanLayers(files(glayout, gzipBuild));
  assert.ok(z.size > 30, `${z.size} tracked files`);
  assert.deepEqual([...z.entries()].sort(), [...g.entries()].sort());
});
