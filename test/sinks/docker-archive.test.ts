import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync as mkdtempRaw, rmSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex, toDigest } from '../../src/digest.js';
import { parseRepoTag, tarHeader, writeDockerArchive } from '../../src/sinks/docker-archive.js';
import { hasTool, makeImage, makeIndex, needs, run, type TestImage } from '../helpers/make-layer.js';


const made: string[] = [];
/** A temp dir removed when the file's tests end. */
function mkdtempSync(prefix: string): string {
  const d = mkdtempRaw(prefix);
  made.push(d);
  return d;
}
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

let work: string;
let amd64: TestImage;
let arm64: TestImage;
let single: string; // one image, one tag
let multi: string; // two images, three tags

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'distill-docker-archive-'));
  amd64 = await makeImage(work, 'amd64');
  arm64 = await makeImage(work, 'arm64');
  single = join(work, 'single.tar');
  await writeDockerArchive(single, [{ image: amd64, repoTags: ['distill/test:amd64'] }]);
  multi = join(work, 'multi.tar');
  await writeDockerArchive(multi, [
    { image: amd64, repoTags: ['distill/test:amd64', 'localhost/test'] },
    { image: arm64, repoTags: ['ghcr.io/example/test:arm64'] },
  ]);
});

const hex = (d: string): string => d.slice('sha256:'.length);

test('the archive: sorted entries, root-owned, mtime 0, blobs/ + index.json + manifest.json + oci-layout', needs('tar'), async () => {
  const listing = (await run('tar', ['--numeric-owner', '--utc', '-tvf', single])).trim().split('\n');
  const names = listing.map((l) => l.split(/\s+/).at(-1)!);
  const blobs = [amd64.config, amd64.manifest].map((b) => hex(b.descriptor.digest)).concat(amd64.layers.map((l) => hex(l.descriptor.digest)));
  assert.deepEqual(names, ['blobs/', 'blobs/sha256/', ...blobs.sort().map((h) => `blobs/sha256/${h}`), 'index.json', 'manifest.json', 'oci-layout']);
  for (const l of listing) {
    assert.match(l, /^(-rw-r--r--|drwxr-xr-x) 0\/0 +\d+ 1970-01-01 00:00 /, l);
  }
  const manifest = JSON.parse(await run('tar', ['-xOf', single, 'manifest.json']));
  assert.deepEqual(manifest, [
    {
      Config: `blobs/sha256/${hex(amd64.config.descriptor.digest)}`,
      Layers: amd64.layers.map((l) => `blobs/sha256/${hex(l.descriptor.digest)}`),
      RepoTags: ['distill/test:amd64'],
    },
  ]);
  const index = JSON.parse(await run('tar', ['-xOf', single, 'index.json']));
  assert.deepEqual(index.manifests, [
    {
      ...amd64.manifest.descriptor,
      annotations: { 'io.containerd.image.name': 'docker.io/distill/test:amd64', 'org.opencontainers.image.ref.name': 'amd64' },
    },
  ]);
  // Layers go in as written: the gzip bytes the manifest describes.
  const layer = await run('sh', ['-c', 'tar -xOf "$0" "$1" | sha256sum', single, `blobs/sha256/${hex(amd64.layers[0]!.descriptor.digest)}`]);
  assert.equal(layer.split(' ')[0], hex(amd64.layers[0]!.descriptor.digest));
});

test('skopeo reads it as docker-archive: the same config, architecture and layers (as diff IDs)', needs('skopeo'), async () => {
  const config = await run('skopeo', ['inspect', '--config', '--raw', `docker-archive:${single}`]);
  assert.equal(config, amd64.config.bytes.toString());
  const info = JSON.parse(await run('skopeo', ['inspect', `docker-archive:${single}`]));
  assert.equal(info.Architecture, 'amd64');
  assert.deepEqual(info.RepoTags, []); // docker-archive: reports no registry tags
  assert.deepEqual(info.Layers, amd64.testLayers.map((l) => l.diffId));
});

test('skopeo copies docker-archive: to an OCI layout keeping the config digest', needs('skopeo'), async () => {
  // containers/image re-marshals the config on this docker → OCI conversion; the digest survives
  // only because we write configs in Go's byte form (src/oci/descriptor.ts). arm64 has a variant.
  const out = join(work, 'copied');
  await run('skopeo', ['copy', '--quiet', `docker-archive:${single}`, `oci:${out}:y`]);
  const manifest = JSON.parse(await run('skopeo', ['inspect', '--raw', `oci:${out}:y`]));
  assert.equal(manifest.config.digest, amd64.config.descriptor.digest);
  // A config with a variant: image-spec v1.1's Go type (skopeo ≥ 1.14, podman 5, containerd 1.7+)
  // writes architecture, os, variant, as we do; the v1.0 type in older tools (skopeo 1.9 on Debian 12)
  // writes architecture, variant, os. Either way the content is ours and only that key moves.
  await run('skopeo', ['copy', '--quiet', `docker-archive:${multi}:ghcr.io/example/test:arm64`, `oci:${out}:arm`]);
  const armConfig = await run('skopeo', ['inspect', '--config', '--raw', `oci:${out}:arm`]);
  const ours = arm64.config.bytes.toString();
  const v10Order = ours.replace('"architecture":"arm64","os":"linux","variant":"v8"', '"architecture":"arm64","variant":"v8","os":"linux"');
  assert.ok(armConfig === ours || armConfig === v10Order, armConfig);
  // And the image unpacks to the same files, whatever compression skopeo chose on the way.
  if (hasTool('umoci')) {
    const bundle = join(work, 'copied-bundle');
    await run('umoci', ['unpack', ...(process.getuid?.() === 0 ? [] : ['--rootless']), '--image', `${out}:y`, bundle]);
    assert.equal(readFileSync(join(bundle, 'rootfs/usr/bin/hello'), 'utf8'), '#!hello amd64\n');
  }
});

test('a multi-image archive: each image by its tag, untagged names normalised as docker does', needs('skopeo'), async () => {
  for (const [ref, img] of [
    ['distill/test:amd64', amd64],
    ['localhost/test:latest', amd64],
    ['ghcr.io/example/test:arm64', arm64],
  ] as const) {
    const config = await run('skopeo', ['inspect', '--config', '--raw', `docker-archive:${multi}:${ref}`]);
    assert.equal(toDigest(sha256Hex(config)), img.config.descriptor.digest, ref);
  }
  const manifest = JSON.parse(await run('tar', ['-xOf', multi, 'manifest.json']));
  assert.deepEqual(manifest.map((m: any) => m.RepoTags), [['distill/test:amd64', 'localhost/test:latest'], ['ghcr.io/example/test:arm64']]);
  const index = JSON.parse(await run('tar', ['-xOf', multi, 'index.json']));
  assert.deepEqual(
    index.manifests.map((m: any) => [m.annotations['io.containerd.image.name'], m.annotations['org.opencontainers.image.ref.name'], m.digest]),
    [
      ['docker.io/distill/test:amd64', 'amd64', amd64.manifest.descriptor.digest],
      ['ghcr.io/example/test:arm64', 'arm64', arm64.manifest.descriptor.digest],
      ['localhost/test:latest', 'latest', amd64.manifest.descriptor.digest],
    ],
  );
});

test('index.json: no entry naming a single image carries a platform, so containerd imports every named image whole on any host', async () => {
  // containerd's importer (ctr images import, nerdctl load, kind) keeps only the content whose
  // descriptor platform matches the host, then unpacks every named image: an arm64 entry with its
  // platform failed `ctr images import` on amd64 with "content digest <arm64 config>: not found"
  // (test/runtimes/containerd.test.ts runs the real ctr). containerd's own export writes none.
  const dir = mkdtempSync(join(tmpdir(), 'distill-docker-archive-plat-'));
  const idx = await makeIndex(dir);
  const file = join(dir, 'both.tar');
  await writeDockerArchive(file, idx.images.map((image) => ({ image, repoTags: [`distill/test:latest-${image.platform.architecture}`] })), {
    indexes: [{ index: idx, repoTags: ['distill/test:latest'] }],
  });
  const { execFileSync } = await import('node:child_process');
  for (const f of [file, multi]) {
    const index = JSON.parse(execFileSync('tar', ['-xOf', f, 'index.json'], { encoding: 'utf8' }));
    assert.ok(index.manifests.length >= 2);
    for (const m of index.manifests) assert.equal('platform' in m, false, `${f}: ${JSON.stringify(m)}`);
  }
  // The platforms are still where a reader of each kind looks: in each config, and in the multi-arch
  // index's own children.
  assert.deepEqual(JSON.parse(idx.index.bytes.toString()).manifests.map((m: any) => m.platform.architecture), ['amd64', 'arm64']);
});

test('the archive is an OCI layout too: skopeo reads it as oci-archive:', needs('skopeo'), async () => {
  assert.equal(await run('skopeo', ['inspect', '--raw', `oci-archive:${single}`]), amd64.manifest.bytes.toString());
  assert.equal(await run('skopeo', ['inspect', '--raw', `oci-archive:${multi}:arm64`]), arm64.manifest.bytes.toString());
});

test('podman loads it', needs('podman'), async () => {
  const out = await run('podman', ['load', '-i', multi]);
  assert.match(out, /distill\/test:amd64/);
  const id = (await run('podman', ['image', 'inspect', '--format', '{{.Id}}', 'ghcr.io/example/test:arm64'])).trim();
  assert.equal(id, hex(arm64.config.descriptor.digest));
  await run('podman', ['rmi', '-f', 'docker.io/distill/test:amd64', 'localhost/test:latest', 'ghcr.io/example/test:arm64']);
});

test('deterministic: the same input gives the same bytes; mtime comes only from the argument', async () => {
  const again = join(work, 'again.tar');
  await writeDockerArchive(again, [{ image: amd64, repoTags: ['distill/test:amd64'] }]);
  assert.deepEqual(readFileSync(again), readFileSync(single));
  const dated = join(work, 'dated.tar');
  await writeDockerArchive(dated, [{ image: amd64, repoTags: ['distill/test:amd64'] }], { mtime: 1_700_000_000 });
  assert.notDeepEqual(readFileSync(dated), readFileSync(single));
  if (hasTool('tar')) {
    const listing = await run('tar', ['--utc', '-tvf', dated]);
    assert.equal(listing.trim().split('\n').every((l) => l.includes('2023-11-14 22:13')), true, listing);
  }
});

test('a layer whose bytes do not match its descriptor: OCI_INVALID and no archive, no temp file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'distill-docker-archive-bad-'));
  const img = await makeImage(dir, 'amd64');
  const layer = img.testLayers[0]!;
  const bytes = readFileSync(layer.path);
  bytes.writeUInt8(bytes.readUInt8(20) ^ 0x01, 20);
  writeFileSync(layer.path, bytes);
  const out = join(dir, 'out.tar');
  await assert.rejects(writeDockerArchive(out, [{ image: img, repoTags: ['x:y'] }]), (e: any) => e.code === 'OCI_INVALID');
  writeFileSync(layer.path, Buffer.concat([bytes, Buffer.from('trailing')]));
  await assert.rejects(writeDockerArchive(out, [{ image: img, repoTags: ['x:y'] }]), (e: any) => e.code === 'OCI_INVALID');
  assert.equal(existsSync(out), false);
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

test('bad repository tags and a tag on two images are OCI_INVALID', async () => {
  const out = join(work, 'never.tar');
  for (const t of ['UPPER:case', 'x@sha256:abc', 'x:bad tag', 'a//b', ':latest']) {
    await assert.rejects(writeDockerArchive(out, [{ image: amd64, repoTags: [t] }]), (e: any) => e.code === 'OCI_INVALID', t);
  }
  await assert.rejects(
    writeDockerArchive(out, [
      { image: amd64, repoTags: ['x:1'] },
      { image: arm64, repoTags: ['docker.io/library/x:1'] },
    ]),
    (e: any) => e.code === 'OCI_INVALID',
  );
  assert.equal(existsSync(out), false);
});

test('repository tags normalise as docker reference does', () => {
  const cases: [string, string, string][] = [
    ['foo', 'foo:latest', 'docker.io/library/foo:latest'],
    ['foo:1.2', 'foo:1.2', 'docker.io/library/foo:1.2'],
    ['library/foo:1', 'foo:1', 'docker.io/library/foo:1'],
    ['docker.io/library/foo:1', 'foo:1', 'docker.io/library/foo:1'],
    ['distill/static:nonroot', 'distill/static:nonroot', 'docker.io/distill/static:nonroot'],
    ['localhost:5000/a/b:c', 'localhost:5000/a/b:c', 'localhost:5000/a/b:c'],
    ['ghcr.io/org/img', 'ghcr.io/org/img:latest', 'ghcr.io/org/img:latest'],
  ];
  for (const [input, familiar, full] of cases) {
    const p = parseRepoTag(input);
    assert.deepEqual([p.familiar, p.full], [familiar, full], input);
  }
});

test('tar headers: ustar, checksummed, and base-256 sizes past 8 GiB', () => {
  const h = tarHeader({ name: 'a', mode: 0o644, size: 10, mtime: 0, type: '0' });
  assert.equal(h.length, 512);
  assert.equal(h.subarray(257, 265).toString('latin1'), 'ustar\u000000');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  assert.equal(parseInt(h.subarray(148, 154).toString(), 8), sum);
  const big = tarHeader({ name: 'a', mode: 0o644, size: 2 ** 33 + 5, mtime: 0, type: '0' });
  assert.equal(big[124], 0x80);
  assert.equal(big.readUIntBE(124 + 6, 6), 2 ** 33 + 5);
});

test('indexes: index.json names a multi-arch index too (oci-archive:FILE:latest), manifest.json lists single images only', needs('skopeo'), async () => {
  const dir = mkdtempSync(join(tmpdir(), 'distill-docker-archive-index-'));
  const idx = await makeIndex(dir);
  const file = join(dir, 'indexed.tar');
  await writeDockerArchive(file, idx.images.map((image) => ({ image, repoTags: [`distill/test:latest-${image.platform.architecture}`] })), {
    indexes: [{ index: idx, repoTags: ['distill/test:latest'] }],
  });
  assert.equal(await run('skopeo', ['inspect', '--raw', `oci-archive:${file}:latest`]), idx.index.bytes.toString());
  const index = JSON.parse(await run('tar', ['-xOf', file, 'index.json']));
  const entry = index.manifests.find((m: any) => m.annotations['org.opencontainers.image.ref.name'] === 'latest');
  assert.deepEqual(entry, { mediaType: 'application/vnd.oci.image.index.v1+json', digest: idx.index.descriptor.digest, size: idx.index.descriptor.size, annotations: { 'io.containerd.image.name': 'docker.io/distill/test:latest', 'org.opencontainers.image.ref.name': 'latest' } });
  const manifest = JSON.parse(await run('tar', ['-xOf', file, 'manifest.json']));
  assert.deepEqual(manifest.map((m: any) => m.RepoTags).flat().sort(), ['distill/test:latest-amd64', 'distill/test:latest-arm64']);
  const config = await run('skopeo', ['inspect', '--config', '--raw', `docker-archive:${file}:distill/test:latest-arm64`]);
  assert.equal(toDigest(sha256Hex(config)), idx.images.find((i) => i.platform.architecture === 'arm64')!.config.descriptor.digest);
  // An index whose images are not in the archive is refused.
  await assert.rejects(writeDockerArchive(join(dir, 'bad.tar'), [{ image: idx.images[0]!, repoTags: ['distill/test:one'] }], { indexes: [{ index: idx, repoTags: ['distill/test:latest'] }] }), (e: any) => e.code === 'OCI_INVALID');
  assert.ok(!existsSync(join(dir, 'bad.tar')));
});
