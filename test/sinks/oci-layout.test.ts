import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync as mkdtempRaw, rmSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { sha256Hex } from '../../src/digest.js';
import type { BuiltImage } from '../../src/oci/image.js';
import type { BuiltIndex } from '../../src/oci/index.js';
import { writeOciLayout } from '../../src/sinks/oci-layout.js';
import { makeImage, makeIndex, makeLayer, needs, run } from '../helpers/make-layer.js';


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
let built: Awaited<ReturnType<typeof makeIndex>>;
let amd64: BuiltImage;
let arm64: BuiltImage;
let layout: string;

const refsOf = (idx: BuiltIndex, a: BuiltImage, b: BuiltImage) => [
  { name: 'latest', target: idx },
  { name: 'latest-amd64', target: a },
  { name: 'latest-arm64', target: b },
];

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'distill-oci-layout-'));
  built = await makeIndex(work);
  amd64 = built.images.find((i) => i.platform.architecture === 'amd64')!;
  arm64 = built.images.find((i) => i.platform.architecture === 'arm64')!;
  layout = join(work, 'layout');
  await writeOciLayout(layout, refsOf(built, amd64, arm64));
});

/** Every file under dir → its bytes, by relative path. */
function snapshot(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

test('the layout: oci-layout, index.json sorted by ref name, every blob named by its digest', () => {
  assert.equal(readFileSync(join(layout, 'oci-layout'), 'utf8'), '{"imageLayoutVersion":"1.0.0"}');
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  assert.equal(index.schemaVersion, 2);
  assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.deepEqual(
    index.manifests.map((m: any) => [m.annotations['org.opencontainers.image.ref.name'], m.digest, m.mediaType, m.platform?.architecture]),
    [
      ['latest', built.index.descriptor.digest, 'application/vnd.oci.image.index.v1+json', undefined],
      ['latest-amd64', amd64.manifest.descriptor.digest, 'application/vnd.oci.image.manifest.v1+json', 'amd64'],
      ['latest-arm64', arm64.manifest.descriptor.digest, 'application/vnd.oci.image.manifest.v1+json', 'arm64'],
    ],
  );
  const files = snapshot(layout);
  const blobs = [...files.keys()].filter((p) => p.startsWith('blobs/'));
  // 1 index + 2 manifests + 2 configs + 4 layers, nothing else (no temp files left behind).
  assert.equal(blobs.length, 9);
  for (const p of blobs) assert.equal(p, `blobs/sha256/${sha256Hex(files.get(p)!)}`);
  assert.deepEqual(files.get(`blobs/sha256/${built.index.descriptor.digest.slice(7)}`), built.index.bytes);
});

test('skopeo reads the index bytes back unchanged', needs('skopeo'), async () => {
  const raw = await run('skopeo', ['inspect', '--raw', `oci:${layout}:latest`]);
  assert.equal(raw, built.index.bytes.toString());
});

test('skopeo inspects the amd64 image: digest, architecture, layers', needs('skopeo'), async () => {
  const info = JSON.parse(await run('skopeo', ['inspect', `oci:${layout}:latest-amd64`]));
  assert.equal(info.Digest, amd64.manifest.descriptor.digest);
  assert.equal(info.Architecture, 'amd64');
  assert.equal(info.Os, 'linux');
  assert.deepEqual(info.Layers, amd64.layers.map((l) => l.descriptor.digest));
  assert.deepEqual(info.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
  assert.equal(info.Labels['org.example.arch'], 'amd64');
  const config = await run('skopeo', ['inspect', '--config', '--raw', `oci:${layout}:latest-amd64`]);
  assert.equal(config, amd64.config.bytes.toString());
});

test('skopeo copies the arm64 image to another layout without changing it', needs('skopeo'), async () => {
  const other = join(work, 'other');
  await run('skopeo', ['copy', '--quiet', `oci:${layout}:latest-arm64`, `oci:${other}:x`]);
  assert.equal(await run('skopeo', ['inspect', '--raw', `oci:${other}:x`]), arm64.manifest.bytes.toString());
});

test('umoci unpacks the amd64 image with the right files, and lists the refs', needs('umoci'), async () => {
  const bundle = join(work, 'bundle');
  const rootless = process.getuid?.() === 0 ? [] : ['--rootless'];
  await run('umoci', ['unpack', ...rootless, '--image', `${layout}:latest-amd64`, bundle]);
  assert.equal(readFileSync(join(bundle, 'rootfs', 'usr/bin/hello'), 'utf8'), '#!hello amd64\n');
  assert.equal(readFileSync(join(bundle, 'rootfs', 'etc/os-release'), 'utf8'), 'ID=distill-test\nARCH=amd64\n');
  assert.match(readFileSync(join(bundle, 'rootfs', 'etc/passwd'), 'utf8'), /^root:x:0:0:/);
  const runtime = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  assert.deepEqual(runtime.process.args, ['/usr/bin/hello']);
  const refs = (await run('umoci', ['ls', '--layout', layout])).trim().split('\n').sort();
  assert.deepEqual(refs, ['latest', 'latest-amd64', 'latest-arm64']);
});

test('writing the same layout twice gives identical bytes for every file', async () => {
  const a = join(work, 'twice-a');
  const b = join(work, 'twice-b');
  await writeOciLayout(a, refsOf(built, amd64, arm64));
  // Refs in another order, a fresh build of the same inputs: still the same bytes.
  const again = await makeIndex(mkdtempSync(join(tmpdir(), 'distill-oci-again-')));
  const a2 = again.images.find((i) => i.platform.architecture === 'amd64')!;
  const b2 = again.images.find((i) => i.platform.architecture === 'arm64')!;
  await writeOciLayout(b, refsOf(again, a2, b2).reverse());
  assert.deepEqual(snapshot(a), snapshot(b));
  assert.deepEqual(snapshot(a), snapshot(layout));
  // Re-running into an existing layout changes nothing.
  await writeOciLayout(a, refsOf(built, amd64, arm64));
  assert.deepEqual(snapshot(a), snapshot(b));
});

test('updating a layout replaces a ref of the same name and keeps the others', async () => {
  const dir = join(work, 'update');
  await writeOciLayout(dir, [
    { name: 'keep', target: arm64 },
    { name: 'latest-amd64', target: arm64 },
  ]);
  await writeOciLayout(dir, [{ name: 'latest-amd64', target: amd64 }]);
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  assert.deepEqual(
    index.manifests.map((m: any) => [m.annotations['org.opencontainers.image.ref.name'], m.digest]),
    [
      ['keep', arm64.manifest.descriptor.digest],
      ['latest-amd64', amd64.manifest.descriptor.digest],
    ],
  );
});

test('a damaged blob already in the layout is replaced, not trusted', async () => {
  const dir = join(work, 'damaged');
  await writeOciLayout(dir, [{ name: 'x', target: amd64 }]);
  const path = join(dir, 'blobs', 'sha256', amd64.layers[0]!.descriptor.digest.slice(7));
  const good = readFileSync(path);
  const bad = Buffer.from(good);
  bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0xff, bad.length - 1);
  chmodSync(path, 0o644);
  writeFileSync(path, bad);
  await writeOciLayout(dir, [{ name: 'x', target: amd64 }]);
  assert.deepEqual(readFileSync(path), good);
});

test('a layer whose bytes do not match its descriptor: OCI_INVALID, no blob, no temp file, no index.json', async () => {
  const dir = join(work, 'bad');
  const img = await makeImage(mkdtempSync(join(tmpdir(), 'distill-oci-bad-')), 'amd64');
  const layer = img.testLayers[1]!;
  // Same size, other bytes: the file changed after its descriptor was computed.
  const bytes = readFileSync(layer.path);
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 5) ^ 0x01, bytes.length - 5);
  writeFileSync(layer.path, bytes);
  await assert.rejects(writeOciLayout(dir, [{ name: 'x', target: img }]), (e: any) => e.code === 'OCI_INVALID');
  const blobs = readdirSync(join(dir, 'blobs', 'sha256'));
  assert.equal(blobs.includes(layer.descriptor.digest.slice(7)), false);
  assert.deepEqual(blobs.filter((b) => b.endsWith('.tmp')), []);
  assert.equal(existsSync(join(dir, 'index.json')), false);
  // A short file too.
  writeFileSync(layer.path, bytes.subarray(0, 10));
  await assert.rejects(writeOciLayout(dir, [{ name: 'x', target: img }]), (e: any) => e.code === 'OCI_INVALID');
  assert.deepEqual(readdirSync(join(dir, 'blobs', 'sha256')).filter((b) => b.endsWith('.tmp')), []);
});

test('layers given as local files (a build\'s own) are copied by the kernel and checked all the same: OCI_INVALID, no blob, no temp file', async () => {
  const img = await makeImage(mkdtempSync(join(tmpdir(), 'distill-oci-file-')), 'amd64');
  const asFiles = { ...img, layers: img.testLayers.map((l) => ({ descriptor: l.descriptor, open: () => { throw new Error('a local file is copied, not streamed'); }, file: l.path })) };
  const good = join(work, 'from-files');
  await writeOciLayout(good, [{ name: 'x', target: asFiles }]);
  for (const l of img.testLayers) {
    const blob = join(good, 'blobs', 'sha256', l.descriptor.digest.slice(7));
    assert.deepEqual(readFileSync(blob), readFileSync(l.path));
    assert.equal(statSync(blob).mode & 0o777, 0o644);
  }
  const layer = img.testLayers[1]!;
  const bytes = readFileSync(layer.path);
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 5) ^ 0x01, bytes.length - 5);
  writeFileSync(layer.path, bytes);
  const dir = join(work, 'bad-files');
  await assert.rejects(writeOciLayout(dir, [{ name: 'x', target: asFiles }]), (e: any) => e.code === 'OCI_INVALID');
  assert.equal(readdirSync(join(dir, 'blobs', 'sha256')).includes(layer.descriptor.digest.slice(7)), false);
  assert.deepEqual(readdirSync(join(dir, 'blobs', 'sha256')).filter((b) => b.endsWith('.tmp')), []);
  assert.equal(existsSync(join(dir, 'index.json')), false);
});

test('inconsistent input is refused before anything is written', async () => {
  const dir = join(work, 'refused');
  const other = await makeLayer(work, 'other.tar.gz', { 'x': 'y' });
  const cases: [string, unknown][] = [
    ['a bad ref name', [{ name: 'no spaces', target: amd64 }]],
    ['a ref name twice', [{ name: 'a', target: amd64 }, { name: 'a', target: arm64 }]],
    ['layers other than the manifest lists', [{ name: 'a', target: { ...amd64, layers: [amd64.layers[0], other] } }]],
    ['a config other than the manifest names', [{ name: 'a', target: { ...amd64, config: arm64.config } }]],
    ['manifest bytes that do not match their descriptor', [{ name: 'a', target: { ...amd64, manifest: { ...amd64.manifest, bytes: arm64.manifest.bytes } } }]],
    ['an index missing one of its images', [{ name: 'a', target: { ...built, images: [amd64] } }]],
  ];
  for (const [what, refs] of cases) {
    await assert.rejects(writeOciLayout(dir, refs as any), (e: any) => e.code === 'OCI_INVALID', what);
  }
  assert.equal(existsSync(dir), false);
});

test('a directory that is not an OCI layout is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'distill-oci-notlayout-'));
  writeFileSync(join(dir, 'index.json'), '{"hello":"world"}');
  await assert.rejects(writeOciLayout(dir, [{ name: 'x', target: amd64 }]), (e: any) => e.code === 'OCI_INVALID');
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
  await assert.rejects(writeOciLayout(dir, [{ name: 'x', target: amd64 }]), (e: any) => e.code === 'OCI_INVALID');
  assert.equal(statSync(join(dir, 'index.json')).size, 17);
});
