// The archive source: docker-archive and oci-archive tars read in place — what distill build --tar
// writes (both at once), what skopeo writes (a legacy docker archive), and hostile tars: members that
// climb out, a manifest.json that points outside, a layer whose bytes are not its digest, JSON past
// its cap, a damaged or truncated tar. Every refusal is OCI_INVALID (or USAGE for an ambiguous name).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDistillError } from '../../src/errors.js';
import { imagesOf, isImageIndex, openUncompressed, type Artifact } from '../../src/oci/model.js';
import { inspectArtifact } from '../../src/inspect.js';
import { openSource, parseSourceSpec } from '../../src/source.js';
import { indexArchive, readArchiveArtifact } from '../../src/sources/archive.js';
import { writeDockerArchive, tarHeader } from '../../src/sinks/docker-archive.js';
import { writeOciLayout } from '../../src/sinks/oci-layout.js';
import { hasTool, makeIndex, run, type TestImage } from '../helpers/make-layer.js';
import { tempDir } from '../helpers/tmp.js';
import { needsRegistry, startRegistry } from '../helpers/registry.js';
import { copyImage } from '../../src/copy.js';
import { appendImage } from '../../src/append.js';

let work: string;
let built: Awaited<ReturnType<typeof makeIndex>>;
let amd64: TestImage;
let archive: string;

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

before(async () => {
  work = tempDir('distill-archive-source-');
  built = await makeIndex(work);
  amd64 = built.images.find((i) => i.platform.architecture === 'amd64')! as TestImage;
  archive = join(work, 'built.tar');
  // What distill build --tar writes: manifest.json for the platform images, index.json for the index too.
  await writeDockerArchive(archive, built.images.map((img) => ({ image: img, repoTags: [`distill/test:latest-${img.platform.architecture}`] })), {
    indexes: [{ index: built, repoTags: ['distill/test:latest'] }],
  });
});

async function drain(a: Artifact): Promise<void> {
  for (const img of imagesOf(a)) for (const l of img.layers) for await (const _ of l.open()) { /* verified as it streams */ }
}

test('oci-archive:FILE:REF gives the index with the publisher\'s exact bytes; every layer streams verified', async () => {
  const s = await openSource(`oci-archive:${archive}:latest`);
  assert.ok(isImageIndex(s.artifact));
  assert.equal(s.digest, built.index.descriptor.digest);
  assert.equal(s.name, `oci-archive:${archive}:latest`);
  assert.deepEqual(imagesOf(s.artifact).map((i) => i.manifest.descriptor.digest).sort(), built.images.map((i) => i.manifest.descriptor.digest).sort());
  await drain(s.artifact);
  // The uncompressed tar of a layer is its diff_id.
  const l = imagesOf(s.artifact)[0]!.layers[0]!;
  const h = createHash('sha256');
  for await (const c of openUncompressed(l)) h.update(c as Buffer);
  assert.equal(`sha256:${h.digest('hex')}`, l.diffId);
  // A bare file with several refs must be told which.
  await assert.rejects(openSource(archive), (e) => isDistillError(e, 'USAGE') && /latest/.test(e.message));
});

test('docker-archive:FILE:NAME:TAG finds the image by tag; as index.json holds it, its digest is the manifest\'s', async () => {
  const s = await openSource(`docker-archive:${archive}:distill/test:latest-amd64`);
  assert.ok(!isImageIndex(s.artifact));
  assert.equal(s.digest, amd64.manifest.descriptor.digest);
  assert.deepEqual(s.artifact.platform, amd64.platform);
  const byPosition = await Promise.all(['@0', '@1'].map((selection) => readArchiveArtifact(archive, { kind: 'docker-archive', selection })));
  assert.deepEqual(byPosition.map((a) => a.digest).sort(), built.images.map((i) => i.manifest.descriptor.digest).sort());
  await assert.rejects(openSource(`docker-archive:${archive}:distill/test:nope`), (e) => isDistillError(e, 'OCI_INVALID'));
  await assert.rejects(openSource(`docker-archive:${archive}`), (e) => isDistillError(e, 'USAGE'));
  // inspect reads it like any other source.
  const r = await inspectArtifact(s.name, s.artifact);
  assert.equal(r.images[0]!.layers.length, 2);
});

test('a legacy docker archive (skopeo\'s: manifest.json only, uncompressed layers) gets a Docker manifest made from it', { skip: hasTool('skopeo') ? false : 'skopeo is not installed' }, async () => {
  const layout = join(work, 'layout');
  await writeOciLayout(layout, [{ name: 'amd64', target: amd64 }]);
  const legacy = join(work, 'legacy.tar');
  await run('skopeo', ['copy', `oci:${layout}:amd64`, `docker-archive:${legacy}:example/legacy:1`]);
  const a = await readArchiveArtifact(legacy);
  assert.equal(a.via, 'manifest.json');
  assert.match(a.selected, /example\/legacy:1$/);
  assert.ok(!isImageIndex(a.artifact));
  assert.equal(a.artifact.manifest.descriptor.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  assert.equal(a.artifact.config.descriptor.digest, amd64.config.descriptor.digest, 'the config is kept byte for byte');
  assert.deepEqual(a.artifact.layers.map((l) => l.descriptor.digest), amd64.testLayers.map((l) => l.diffId), 'uncompressed layers: digest = diff_id');
  assert.deepEqual(a.artifact.platform, amd64.platform);
  await drain(a.artifact);
  // skopeo reads what the made-up manifest names: same config, same layers.
  const viaName = await openSource(`docker-archive:${legacy}:example/legacy:1`);
  assert.equal(viaName.digest, a.digest);
});

test('parseSourceSpec: transports by prefix, paths by what they are on disk', () => {
  assert.deepEqual(parseSourceSpec('docker://127.0.0.1:5000/x:1'), { transport: 'docker', reference: '127.0.0.1:5000/x:1' });
  assert.deepEqual(parseSourceSpec(`oci:${work}:latest`), { transport: 'oci', dir: work, ref: 'latest' });
  assert.deepEqual(parseSourceSpec(`docker-archive:${archive}:a/b:c`), { transport: 'docker-archive', file: archive, selection: 'a/b:c' });
  assert.deepEqual(parseSourceSpec(work), { transport: 'oci', dir: work });
  assert.deepEqual(parseSourceSpec(`${archive}:latest`), { transport: 'archive', file: archive, selection: 'latest' });
  assert.deepEqual(parseSourceSpec(archive), { transport: 'archive', file: archive });
  assert.deepEqual(parseSourceSpec('127.0.0.1:5000/x:1'), { transport: 'docker', reference: '127.0.0.1:5000/x:1' });
});

// ---- hostile archives ----

/** A tar of the given members, in order (names may be anything a header holds). */
function tar(file: string, members: [string, Buffer | string][], opts: { truncate?: number; corrupt?: boolean } = {}): string {
  const parts: Buffer[] = [];
  for (const [name, data] of members) {
    const b = Buffer.from(data);
    const h = tarHeader({ name, mode: 0o644, size: b.length, mtime: 0, type: '0' });
    if (opts.corrupt) h[0] = h[0]! ^ 0x01;
    parts.push(h, b, Buffer.alloc((512 - (b.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  let all = Buffer.concat(parts);
  if (opts.truncate !== undefined) all = all.subarray(0, opts.truncate);
  const p = join(work, file);
  writeFileSync(p, all);
  return p;
}

const CONFIG = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha('layer bytes')] } });
const dockerManifest = (config: string, layers: string[]): string => JSON.stringify([{ Config: config, RepoTags: ['evil:1'], Layers: layers }]);

const refused = (e: unknown): boolean => isDistillError(e, 'OCI_INVALID') && !/\n\s+at /.test(e.message);

/** A symlink header (tarHeader writes files and directories only). */
function symlink(name: string, target: string): Buffer {
  const h = tarHeader({ name, mode: 0o777, size: 0, mtime: 0, type: '0' });
  h.write('2', 156, 'latin1');
  h.write(target, 157, 'utf8');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return h;
}

test('docker save\'s shared layers: a symlink to another image\'s layer.tar is followed; one that climbs out is refused', async () => {
  const layer = Buffer.from('layer bytes');
  const manifest = JSON.stringify([{ Config: 'c.json', RepoTags: ['shared:1'], Layers: ['b/layer.tar'] }]);
  const members = Buffer.concat([
    ...[['manifest.json', manifest], ['c.json', CONFIG], ['a/layer.tar', layer]].map(([n, d]) => {
      const b = Buffer.from(d as string | Buffer);
      return Buffer.concat([tarHeader({ name: n as string, mode: 0o644, size: b.length, mtime: 0, type: '0' }), b, Buffer.alloc((512 - (b.length % 512)) % 512)]);
    }),
  ]);
  const ok = join(work, 'symlinked.tar');
  writeFileSync(ok, Buffer.concat([members, symlink('b/layer.tar', '../a/layer.tar'), Buffer.alloc(1024)]));
  const a = await readArchiveArtifact(ok);
  assert.ok(!isImageIndex(a.artifact));
  assert.equal(a.artifact.layers[0]!.descriptor.digest, sha('layer bytes'));
  await drain(a.artifact);
  const out = join(work, 'symlink-out.tar');
  writeFileSync(out, Buffer.concat([members, symlink('b/layer.tar', '../../etc/passwd'), Buffer.alloc(1024)]));
  await assert.rejects(indexArchive(out), (e) => refused(e) && /outside the archive/.test((e as Error).message));
});

test('hostile: member names that climb out or are absolute are refused', async () => {
  for (const name of ['../evil', 'a/../../evil', '/etc/passwd']) {
    const f = tar(`climb-${name.replace(/\W/g, '_')}.tar`, [['manifest.json', dockerManifest('c.json', [])], [name, 'x']]);
    await assert.rejects(indexArchive(f), (e) => refused(e) && /climbs out|absolute/.test((e as Error).message), name);
  }
});

test('hostile: manifest.json pointing outside the archive, or at a missing member', async () => {
  const out = tar('outside.tar', [['manifest.json', dockerManifest('../../etc/passwd', [])], ['c.json', CONFIG]]);
  await assert.rejects(readArchiveArtifact(out), (e) => refused(e) && /outside the archive/.test((e as Error).message));
  const layerOut = tar('layer-outside.tar', [['manifest.json', dockerManifest('c.json', ['/etc/shadow'])], ['c.json', CONFIG]]);
  await assert.rejects(readArchiveArtifact(layerOut), (e) => refused(e) && /outside the archive/.test((e as Error).message));
  const missing = tar('missing.tar', [['manifest.json', dockerManifest('c.json', ['nope/layer.tar'])], ['c.json', CONFIG]]);
  await assert.rejects(readArchiveArtifact(missing), (e) => refused(e) && /not in the archive/.test((e as Error).message));
});

test('hostile: a layer whose bytes are not its digest fails while it streams', async () => {
  // An uncompressed layer's digest is its diff_id: other bytes under it are caught.
  const f = tar('mismatch.tar', [['manifest.json', dockerManifest('c.json', ['l/layer.tar'])], ['c.json', CONFIG], ['l/layer.tar', 'other bytes']]);
  const a = await readArchiveArtifact(f);
  await assert.rejects(drain(a.artifact), (e) => isDistillError(e) && /sha256|digest|bytes/.test((e as Error).message));
  // A blobs/sha256/<hex> name is a digest claim: a config that does not hash to it is refused.
  const fake = `blobs/sha256/${'a'.repeat(64)}`;
  const g = tar('config-name.tar', [['manifest.json', dockerManifest(fake, [])], [fake, JSON.stringify({ rootfs: { diff_ids: [] } })]]);
  await assert.rejects(readArchiveArtifact(g), (e) => refused(e) && /does not hash/.test((e as Error).message));
});

test('hostile: JSON past its cap is refused without being read; duplicate members; damaged and truncated tars', async () => {
  const big = tar('big-manifest.tar', [['manifest.json', Buffer.alloc(17 * 1024 * 1024, 0x20)]]);
  await assert.rejects(readArchiveArtifact(big), (e) => refused(e) && /more than/.test((e as Error).message));
  const bigConfig = tar('big-config.tar', [['manifest.json', dockerManifest('c.json', [])], ['c.json', Buffer.alloc(9 * 1024 * 1024, 0x20)]]);
  await assert.rejects(readArchiveArtifact(bigConfig), (e) => refused(e) && /more than/.test((e as Error).message));
  const dup = tar('dup.tar', [['manifest.json', dockerManifest('c.json', [])], ['c.json', CONFIG], ['./c.json', '{}']]);
  await assert.rejects(indexArchive(dup), (e) => refused(e) && /twice/.test((e as Error).message));
  const corrupt = tar('corrupt.tar', [['manifest.json', '[]']], { corrupt: true });
  await assert.rejects(indexArchive(corrupt), (e) => refused(e) && /checksum/.test((e as Error).message));
  const truncated = tar('truncated.tar', [['manifest.json', Buffer.alloc(4096, 0x20)]], { truncate: 512 + 1000 });
  await assert.rejects(indexArchive(truncated), (e) => refused(e) && /past the end/.test((e as Error).message));
  const notJson = tar('not-json.tar', [['manifest.json', '{']]);
  await assert.rejects(readArchiveArtifact(notJson), refused);
  const gz = join(work, 'gz.tar');
  writeFileSync(gz, Buffer.from([0x1f, 0x8b, 8, 0, ...Buffer.alloc(600)]));
  await assert.rejects(indexArchive(gz), (e) => refused(e) && /gzip/.test((e as Error).message));
  // Nothing was extracted anywhere: the work dir holds only the tars we wrote and the layers we made.
  assert.ok(readdirSync(work).every((n) => n.endsWith('.tar') || n.endsWith('.tar.gz') || n === 'layout'), readdirSync(work).join(', '));
  assert.ok(tmpdir());
});

test('copy from an archive or a layout into a registry: the registry sink, layers streamed from the file', { skip: needsRegistry().skip }, async () => {
  const registry = await startRegistry();
  try {
    const r = await copyImage(`oci-archive:${archive}:latest`, `${registry.host}/from/archive:1`);
    assert.equal(r.digest, built.index.descriptor.digest);
    assert.equal(r.stats.blobsUploaded, 2 + 2 * 2, 'two configs, four layers');
    const one = await copyImage(`docker-archive:${archive}:distill/test:latest-amd64`, `${registry.host}/from/archive:amd64`);
    assert.equal(one.digest, amd64.manifest.descriptor.digest);
    assert.equal(one.stats.blobsUploaded, 0, 'every blob is already in the repository');
    const layout = join(work, 'copy-layout');
    await writeOciLayout(layout, [{ name: 'v1', target: amd64 }]);
    const fromLayout = await copyImage(`oci:${layout}:v1`, `${registry.host}/from/layout:v1`);
    assert.equal(fromLayout.digest, amd64.manifest.descriptor.digest);
    // The registry serves what was read: the image source reads it back with the same digests.
    const back = await openSource(`${registry.host}/from/archive:1`);
    try {
      assert.equal(back.digest, built.index.descriptor.digest);
      await drain(back.artifact);
    } finally {
      await back.close();
    }
    await assert.rejects(copyImage(`oci-archive:${archive}:latest`, `${registry.host}/from/archive`), (e) => isDistillError(e, 'USAGE'));
  } finally {
    await registry.stop();
  }
});

test('append onto an archive: the base image comes from the tar, its layers untouched, named by the file\'s base name', async () => {
  const app = join(work, 'app.txt');
  writeFileSync(app, 'hello\n');
  const out = join(work, 'appended');
  const r = await appendImage(`oci-archive:${archive}:latest`, { layers: [`${app}:/app/`], out: `${out}:v1`, sourceDateEpoch: 0 });
  const a = await openSource(`oci:${out}:v1`);
  assert.ok(isImageIndex(a.artifact));
  for (const img of imagesOf(a.artifact)) {
    const base = built.images.find((b) => b.platform.architecture === img.platform?.architecture)!;
    assert.deepEqual(img.layers.slice(0, 2).map((l) => l.descriptor.digest), base.layers.map((l) => l.descriptor.digest));
    assert.equal(img.layers.length, 3);
    const m = JSON.parse(img.manifest.bytes.toString());
    assert.equal(m.annotations['org.opencontainers.image.base.name'], 'oci-archive:built.tar:latest');
  }
  assert.ok(r);
});

test('a single-platform export (the index lists a platform whose manifest is absent) is named as such, as a layout and as an archive', async () => {
  // What `ctr images export` and `docker save` (containerd store) write by default: the whole index,
  // only the local platform's manifest, config and layers.
  const dir = join(work, 'partial');
  await writeOciLayout(dir, [{ name: 'latest', target: built }]);
  const arm64 = built.images.find((i) => i.platform.architecture === 'arm64')!;
  const { rmSync } = await import('node:fs');
  rmSync(join(dir, 'blobs', 'sha256', arm64.manifest.descriptor.digest.slice('sha256:'.length)));
  const partial = (e: unknown): boolean =>
    isDistillError(e, 'OCI_INVALID') && /lists linux\/arm64\/v8, whose manifest is not in it \(it holds: linux\/amd64\) — a single-platform export/.test(e.message) && /--platform/.test(e.hint ?? '') && /--all-platforms/.test(e.hint ?? '');
  await assert.rejects(openSource(`oci:${dir}:latest`), partial);
  const tar = join(work, 'partial.tar');
  await run('tar', ['-cf', tar, '-C', dir, 'oci-layout', 'index.json', 'blobs']);
  await assert.rejects(openSource(`oci-archive:${tar}:latest`), partial);
  // Asking only for the platform it holds reads it: append onto a single-platform export.
  const app = join(work, 'partial-app');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(app);
  writeFileSync(join(app, 'hello.txt'), 'hi\n');
  for (const source of [`${dir}:latest`, `oci-archive:${tar}:latest`]) {
    await assert.rejects(appendImage(source, { layers: [`${app}:/app`], out: join(work, `appended-all-${source.length}`) }), partial);
    const r = await appendImage(source, { layers: [`${app}:/app`], platforms: ['linux/amd64'], out: join(work, `appended-${source.length}`) });
    assert.deepEqual(r.manifests.map((m) => m.platform?.architecture), ['amd64'], source);
  }
  // A damaged layout (a blob present but wrong) is still a damaged layout, not an export.
  writeFileSync(join(dir, 'blobs', 'sha256', arm64.manifest.descriptor.digest.slice('sha256:'.length)), '{}');
  await assert.rejects(openSource(`oci:${dir}:latest`), (e) => isDistillError(e, 'OCI_INVALID') && !/single-platform/.test(e.message));
});
