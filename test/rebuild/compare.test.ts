// compareImages on small images made here (tar-stream + zlib, every header field chosen by the test,
// written into OCI layouts by the real sink), and on two real builds of static that differ only in
// SOURCE_DATE_EPOCH.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { sha256Hex, toDigest, type Digest } from '../../src/digest.js';
import { imageConfig, imageManifest, type BuiltImage, type LayerSource } from '../../src/oci/image.js';
import { MEDIA_TYPE_LAYER_GZIP } from '../../src/oci/media-types.js';
import { debianArchToPlatform } from '../../src/oci/platform.js';
import { compareImages, formatComparison, type ImageSide } from '../../src/rebuild/compare.js';
import { writeOciLayout } from '../../src/sinks/oci-layout.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

interface TEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink';
  body?: string;
  mode?: number;
  /** seconds */
  mtime?: number;
  uid?: number;
  linkname?: string;
  pax?: Record<string, string>;
}

async function tarOf(entries: TEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const type = e.type ?? (e.name.endsWith('/') ? 'directory' : 'file');
    const h = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: 0,
      uname: '',
      gname: '',
      mtime: new Date((e.mtime ?? 0) * 1000),
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      ...(e.pax !== undefined ? { pax: e.pax } : {}),
    };
    if (type === 'file') pack.entry(h, e.body ?? '');
    else pack.entry(h);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const base: TEntry[] = [
  { name: 'etc/' },
  { name: 'etc/os-release', body: 'ID=distill-test\n' },
  { name: 'etc/passwd', body: 'root:x:0:0:root:/root:/sbin/nologin\n' },
];
const app: TEntry[] = [
  { name: 'usr/' },
  { name: 'usr/bin/' },
  { name: 'usr/bin/hello', body: '#!hello world\n', mode: 0o755 },
  { name: 'usr/bin/hi', type: 'symlink', linkname: 'hello' },
  { name: 'usr/lib/' },
  { name: 'usr/lib/libx.so', body: 'ELF-ish bytes 0123456789\n' },
];

interface Spec {
  layers?: TEntry[][];
  env?: string[];
  created?: string;
  /** gzip level per layer (default 9) */
  levels?: number[];
}

const root = tempDir('distill-compare-');
let counter = 0;

/** An OCI layout holding one image built from `spec`; returns the side to compare. */
async function layout(spec: Spec = {}): Promise<ImageSide> {
  const dir = join(root, `layout-${counter++}`);
  const work = `${dir}-work`;
  await mkdir(work, { recursive: true });
  const layerTars = spec.layers ?? [base, app];
  const layers: LayerSource[] = [];
  const diffIds: Digest[] = [];
  for (const [i, entries] of layerTars.entries()) {
    const t = await tarOf(entries);
    const gz = gzipSync(t, { level: spec.levels?.[i] ?? 9 });
    const path = join(work, `layer-${i}.tar.gz`);
    await writeFile(path, gz);
    layers.push({ descriptor: { mediaType: MEDIA_TYPE_LAYER_GZIP, digest: toDigest(sha256Hex(gz)), size: gz.length }, open: () => createReadStream(path) });
    diffIds.push(toDigest(sha256Hex(t)));
  }
  const created = spec.created ?? '2025-06-01T12:00:00Z';
  const platform = debianArchToPlatform('amd64');
  const config = imageConfig({
    platform,
    created,
    env: spec.env ?? ['PATH=/usr/bin:/bin', 'LANG=C.UTF-8'],
    user: '0',
    workingDir: '/',
    entrypoint: ['/usr/bin/hello'],
    diffIds,
    history: layerTars.map((_, i) => ({ created, createdBy: `distill: layer ${i}` })),
  });
  const manifest = imageManifest(config.descriptor, layers.map((l) => l.descriptor), { 'org.opencontainers.image.created': created });
  const img: BuiltImage = { manifest, config, layers, platform };
  await writeOciLayout(dir, [{ name: 'latest', target: img }]);
  return { dir, manifestDigest: manifest.descriptor.digest };
}

const labels = { expected: 'published', actual: 'rebuilt' };

function withChanged(entries: TEntry[], name: string, change: Partial<TEntry>): TEntry[] {
  return entries.map((e) => (e.name === name ? { ...e, ...change } : e));
}

test('the same image built twice: identical', async () => {
  const a = await layout();
  const b = await layout();
  const c = await compareImages(a, b);
  assert.equal(c.identical, true);
  assert.equal(c.manifest.expected, c.manifest.actual);
  assert.deepEqual(c.config.diffs, []);
  assert.deepEqual(c.manifest.diffs, []);
  assert.equal(c.layers.length, 2);
  assert.ok(c.layers.every((l) => l.same && l.diffIdExpected === l.diffIdActual && l.diffIdExpected !== undefined));
  assert.equal(c.firstDifferingLayer, undefined);
  const text = formatComparison(c, labels);
  assert.match(text, /^identical/);
  assert.ok(text.includes(c.manifest.expected));
});

test('one changed byte in the second layer: layer 1, exactly that file, field content', async () => {
  const a = await layout();
  const b = await layout({ layers: [base, withChanged(app, 'usr/lib/libx.so', { body: 'ELF-ish bytes 0123456780\n' })] });
  const c = await compareImages(a, b);
  assert.equal(c.identical, false);
  assert.equal(c.layers[0]!.same, true);
  assert.equal(c.layers[1]!.same, false);
  const f = c.firstDifferingLayer!;
  assert.equal(f.index, 1);
  assert.equal(f.compressionOnly, false);
  assert.equal(f.files.length, 1);
  const d = f.files[0]!;
  assert.equal(d.path, 'usr/lib/libx.so');
  assert.equal(d.field, 'content');
  assert.equal(d.expected, toDigest(sha256Hex('ELF-ish bytes 0123456789\n')));
  assert.equal(d.actual, toDigest(sha256Hex('ELF-ish bytes 0123456780\n')));
  assert.equal(f.tarExpected, c.layers[1]!.diffIdExpected);
  assert.equal(f.tarActual, c.layers[1]!.diffIdActual);
  assert.deepEqual(f.notes, []);
  // The config differs only in that layer's diff_id.
  assert.deepEqual(c.config.diffs.map((x) => x.field), ['rootfs.diff_ids[1]']);
  // The manifest differs only in what the layer and config comparisons report.
  assert.deepEqual(c.manifest.diffs, []);
  const text = formatComparison(c, labels);
  assert.match(text, /numbered from 0/);
  assert.match(text, /layer 1 \(sha256:[0-9a-f]{12}… ≠ sha256:[0-9a-f]{12}…\) is the first that differs: 1 path$/m);
  assert.match(text, /usr\/lib\/libx\.so: content sha256:[0-9a-f]{12}… ≠ sha256:[0-9a-f]{12}…/);
  assert.match(text, /rootfs\.diff_ids\[1\]: "sha256:/);
});

test('a changed mode and mtime, a changed size, a changed symlink target', async () => {
  const a = await layout();
  let changed = withChanged(app, 'usr/bin/hello', { mode: 0o4755, mtime: 946684800 });
  changed = withChanged(changed, 'usr/lib/libx.so', { body: 'longer ELF-ish bytes 0123456789\n' });
  changed = withChanged(changed, 'usr/bin/hi', { linkname: '/usr/bin/hello' });
  const b = await layout({ layers: [base, changed] });
  const c = await compareImages(a, b);
  const f = c.firstDifferingLayer!;
  assert.equal(f.index, 1);
  assert.deepEqual(
    f.files.map((d) => [d.path, d.field, d.expected, d.actual]),
    [
      ['usr/bin/hello', 'mode', '0755', '4755'],
      ['usr/bin/hello', 'mtime', '1970-01-01T00:00:00Z', '2000-01-01T00:00:00Z'],
      ['usr/bin/hi', 'linkTarget', 'hello', '/usr/bin/hello'],
      ['usr/lib/libx.so', 'size', '25', '32'],
      ['usr/lib/libx.so', 'content', toDigest(sha256Hex('ELF-ish bytes 0123456789\n')), toDigest(sha256Hex('longer ELF-ish bytes 0123456789\n'))],
    ],
  );
  const text = formatComparison(c, labels);
  assert.match(text, /usr\/bin\/hello: mode 0755 ≠ 4755; mtime 1970-01-01T00:00:00Z ≠ 2000-01-01T00:00:00Z/);
  assert.match(text, /usr\/lib\/libx\.so: size 25 ≠ 32; content sha256:/);
});

test('an extra and a missing file', async () => {
  const a = await layout();
  const b = await layout({
    layers: [[...base.filter((e) => e.name !== 'etc/passwd'), { name: 'etc/shadow', body: 'root:*:1::::::\n', mode: 0o640 }], app],
  });
  const c = await compareImages(a, b);
  const f = c.firstDifferingLayer!;
  assert.equal(f.index, 0);
  assert.deepEqual(f.files.map((d) => [d.path, d.field]), [['etc/passwd', 'missing'], ['etc/shadow', 'extra']]);
  assert.equal(f.files[0]!.actual, '');
  assert.match(f.files[0]!.expected, /^file 0644 0:0 36 bytes sha256:/);
  assert.equal(f.files[1]!.expected, '');
  assert.match(f.files[1]!.actual, /^file 0640 0:0 15 bytes sha256:/);
  assert.equal(c.layers[1]!.same, true);
  const text = formatComparison(c, labels);
  assert.match(text, /etc\/passwd: missing from rebuilt \(published has file 0644/);
  assert.match(text, /etc\/shadow: only in rebuilt \(file 0640/);
});

test('a config Env difference and a created difference; the layers are the same', async () => {
  const a = await layout();
  const b = await layout({ env: ['PATH=/usr/bin:/bin', 'LANG=C'], created: '2000-01-01T00:00:00Z' });
  const c = await compareImages(a, b);
  assert.equal(c.identical, false);
  assert.notEqual(c.config.expected, c.config.actual);
  assert.ok(c.layers.every((l) => l.same));
  assert.equal(c.firstDifferingLayer, undefined);
  assert.deepEqual(c.config.diffs, [
    { field: 'config.Env[1]', expected: 'LANG=C.UTF-8', actual: 'LANG=C' },
    { field: 'created', expected: '2025-06-01T12:00:00Z', actual: '2000-01-01T00:00:00Z' },
    { field: 'history[0].created', expected: '2025-06-01T12:00:00Z', actual: '2000-01-01T00:00:00Z' },
    { field: 'history[1].created', expected: '2025-06-01T12:00:00Z', actual: '2000-01-01T00:00:00Z' },
  ]);
  // The manifest's own difference: its created annotation.
  assert.deepEqual(c.manifest.diffs, [
    { field: 'annotations["org.opencontainers.image.created"]', expected: '2025-06-01T12:00:00Z', actual: '2000-01-01T00:00:00Z' },
  ]);
  const text = formatComparison(c, labels);
  assert.match(text, /config\.Env\[1\]: "LANG=C\.UTF-8" ≠ "LANG=C"/);
  assert.match(text, /\n  created: "2025-06-01T12:00:00Z" ≠ "2000-01-01T00:00:00Z"/);
  assert.match(text, /0 of 2 differ/);
});

test('the same tar compressed at another gzip level: compressionOnly', async () => {
  const a = await layout();
  const b = await layout({ levels: [9, 1] });
  const c = await compareImages(a, b);
  assert.equal(c.identical, false);
  assert.deepEqual(c.config.diffs, []);
  assert.equal(c.config.expected, c.config.actual);
  const f = c.firstDifferingLayer!;
  assert.equal(f.index, 1);
  assert.equal(f.compressionOnly, true);
  assert.deepEqual(f.files, []);
  assert.equal(f.tarExpected, f.tarActual);
  assert.equal(f.tarExpected, c.layers[1]!.diffIdExpected);
  assert.match(formatComparison(c, labels), /layer 1 differs only in its compression/);
});

test('a layer more on one side: its files are extra, and a note says the other has none', async () => {
  const a = await layout({ layers: [base] });
  const b = await layout();
  const c = await compareImages(a, b);
  assert.equal(c.layers.length, 2);
  assert.deepEqual([c.layers[1]!.expected, c.layers[1]!.same], ['', false]);
  const f = c.firstDifferingLayer!;
  assert.equal(f.index, 1);
  assert.equal(f.compressionOnly, false);
  assert.ok(f.files.length === app.length && f.files.every((d) => d.field === 'extra'));
  assert.equal(f.tarExpected, undefined);
  assert.deepEqual(f.notes, ['the expected image has no layer 1 (it has 1)']);
  assert.match(formatComparison(c, labels), /layer 1: \(none\) ≠ sha256:/);
});

test('maxFileDiffs lists that many and counts the rest', async () => {
  const a = await layout();
  const b = await layout({ layers: [base, app.map((e) => ({ ...e, mtime: 1 }))] });
  const c = await compareImages(a, b, { maxFileDiffs: 2 });
  const f = c.firstDifferingLayer!;
  assert.equal(f.files.length, 2);
  assert.equal(f.omittedFiles, app.length - 2);
  const text = formatComparison(c, labels);
  assert.match(text, /is the first that differs: 6 differences, the first 2 \(in 2 paths\) listed/);
  assert.match(text, /… and 4 more differences not listed/);
});

test('the same entries in another order, another name form, or another pax record: notes say so', async () => {
  const a = await layout();
  const reordered = await layout({ layers: [[base[0]!, base[2]!, base[1]!], app] });
  let c = await compareImages(a, reordered);
  assert.deepEqual(c.firstDifferingLayer!.files, []);
  assert.deepEqual(c.firstDifferingLayer!.notes, ['the tars hold the same entries in a different order']);

  const dotted = await layout({ layers: [base.map((e) => ({ ...e, name: `./${e.name}` })), app] });
  c = await compareImages(a, dotted);
  assert.deepEqual(c.firstDifferingLayer!.files, []);
  assert.match(c.firstDifferingLayer!.notes.join('\n'), /3 entries are encoded differently .*: etc, etc\/os-release, etc\/passwd/);

  const xattr = await layout({ layers: [base, withChanged(app, 'usr/bin/hello', { pax: { 'SCHILY.xattr.security.capability': 'x' } })] });
  c = await compareImages(a, xattr);
  assert.deepEqual(c.firstDifferingLayer!.files, []);
  assert.match(c.firstDifferingLayer!.notes.join('\n'), /1 entries are encoded differently .*: usr\/bin\/hello$/);
});

test('untrusted layers are bounded; damaged and wrong inputs are OCI_INVALID', async () => {
  const a = await layout();
  const b = await layout({ layers: [base, withChanged(app, 'usr/bin/hello', { body: 'x' })] });
  await assert.rejects(compareImages(a, b, { maxEntries: 3 }), (e: any) => e.code === 'OCI_INVALID' && /more than 3 entries/.test(e.message));

  // A blob whose bytes no longer match its digest.
  const c = await compareImages(a, b);
  const blob = join(b.dir, 'blobs', 'sha256', c.layers[1]!.actual.slice('sha256:'.length));
  const bytes = await readFile(blob);
  bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 0xff;
  writeFileSync(blob, bytes);
  await assert.rejects(compareImages(a, b), (e: any) => e.code === 'OCI_INVALID' && /damaged/.test(e.message));

  // A layer blob that is not there.
  await rm(blob);
  await assert.rejects(compareImages(a, b), (e: any) => e.code === 'OCI_INVALID' && /the blob is missing/.test(e.message));

  // A digest that is not in the layout, and an index instead of a manifest.
  await assert.rejects(compareImages(a, { dir: a.dir, manifestDigest: toDigest(sha256Hex('nothing')) }), (e: any) => e.code === 'OCI_INVALID');
  const { imageIndex } = await import('../../src/oci/index.js');
  const manifestBytes = await readFile(join(a.dir, 'blobs', 'sha256', a.manifestDigest.slice('sha256:'.length)));
  const index = imageIndex([{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: a.manifestDigest as `sha256:${string}`, size: manifestBytes.length, platform: debianArchToPlatform('amd64') }]);
  await writeFile(join(a.dir, 'blobs', 'sha256', index.descriptor.digest.slice('sha256:'.length)), index.bytes);
  await assert.rejects(compareImages({ dir: a.dir, manifestDigest: index.descriptor.digest }, a), (e: any) => e.code === 'OCI_INVALID' && /image index/.test(e.message));
});

// ---- a real case: static built twice, with and without SOURCE_DATE_EPOCH ----

const snap = snapshotDir();

test('static built with SOURCE_DATE_EPOCH=946684800 vs the lock time: every file mtime and config.created differ', { skip: snap === undefined ? NO_SNAPSHOT : false }, async () => {
  const { buildImage } = await import('../../src/build.js');
  const mirrors = { flags: snapshotMirrors(snap!), aptSources: [] };
  const def = join(repoRoot, 'images', 'static', 'image.yaml');
  const cacheDir = tempDir('distill-compare-cache-');
  const build = async (sourceDateEpoch?: number): Promise<ImageSide> => {
    const outDir = tempDir('distill-compare-static-');
    const r = await buildImage(def, { cacheDir, mirrors, outDir, variants: ['latest'], platforms: ['amd64'], ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}) });
    return { dir: outDir, manifestDigest: r.variants[0]!.manifests[0]!.digest };
  };
  const lockTime = await build();
  const y2000 = await build(946684800);
  const c = await compareImages(lockTime, y2000, { maxFileDiffs: 1_000_000 });
  assert.equal(c.identical, false);
  const f = c.firstDifferingLayer!;
  assert.equal(f.index, 0);
  assert.equal(f.compressionOnly, false);
  assert.ok(f.files.length > 100, `${f.files.length} diffs`);
  assert.ok(f.files.every((d) => d.field === 'mtime'), f.files.filter((d) => d.field !== 'mtime').map((d) => `${d.path} ${d.field}`).slice(0, 5).join(', '));
  assert.ok(f.files.every((d) => d.actual === '2000-01-01T00:00:00Z' && d.expected !== d.actual));
  // Every entry of the layer is listed: compare with the layer's own listing.
  const entries = await listTar(join(lockTime.dir, 'blobs', 'sha256', f.expected.slice('sha256:'.length)));
  assert.deepEqual(f.files.map((d) => d.path).sort(), [...new Set(entries)].sort());
  assert.ok(c.layers.every((l) => !l.same));
  const fields = c.config.diffs.map((d) => d.field);
  assert.ok(fields.includes('created'), fields.join(', '));
  assert.ok(fields.some((x) => /^rootfs\.diff_ids\[0\]$/.test(x)));
  assert.equal(c.config.diffs.find((d) => d.field === 'created')!.actual, '2000-01-01T00:00:00Z');
  const text = formatComparison(c, { expected: 'lock time', actual: 'SOURCE_DATE_EPOCH=946684800' });
  assert.match(text, /layer 0 .* is the first that differs/);
  assert.match(text, /etc\/os-release: mtime .* ≠ 2000-01-01T00:00:00Z/);
});

async function listTar(path: string): Promise<string[]> {
  const { createGunzip } = await import('node:zlib');
  const extract = tar.extract();
  createReadStream(path).pipe(createGunzip()).pipe(extract as unknown as NodeJS.WritableStream);
  const names: string[] = [];
  for await (const e of extract) {
    names.push(e.header.name.replace(/\/$/, ''));
    e.resume();
  }
  return names;
}
