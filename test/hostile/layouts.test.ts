// Hostile catalogue, class 1: OCI layouts given as sources (inspect, copy, diff, append, push). Each
// probe copies an intact layout and breaks one thing an attacker who hands over a layout controls:
// index.json (missing, garbage, BOM, deep nesting, duplicate keys, 100k entries), descriptors that lie
// about size or digest, unknown media types, nested indexes, blobs that are directories, FIFOs,
// devices or symlinks, and layers that are gzip bombs or not gzip at all. Every one must end in the
// one-line coded error with a hint, in bounded time, and write nothing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { sha256Hex, toDigest } from '../../src/digest.js';
import { makeTestLayout } from '../helpers/registry.js';
import { tempDir } from '../helpers/tmp.js';
import { assertRefused, cli, spawnCli } from './helpers.js';

let work: string;
let template: string;
let made: { index: string; amd64: string; blobs: string[] };
let n = 0;

before(async () => {
  work = tempDir('distill-hostile-layouts-');
  template = join(work, 'template');
  made = await makeTestLayout(template, work);
});
after(() => rmSync(work, { recursive: true, force: true }));

/** A fresh copy of the intact layout, for one probe to break. */
function layout(): string {
  const d = join(work, `l${n++}`);
  cpSync(template, d, { recursive: true });
  return d;
}
const blob = (dir: string, digest: string): string => join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
const indexOf = (dir: string): any => JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
function putJson(dir: string, value: unknown): { digest: string; size: number } {
  const bytes = Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
  const digest = toDigest(sha256Hex(bytes));
  writeFileSync(blob(dir, digest), bytes);
  return { digest, size: bytes.length };
}
function firstLayer(dir: string): { manifest: any; layer: { digest: string; size: number; mediaType: string } } {
  const manifest = JSON.parse(readFileSync(blob(dir, made.amd64), 'utf8'));
  return { manifest, layer: manifest.layers[0] };
}
/** Point ref latest-amd64 at a new manifest (written as a blob) and return the layout. */
function withManifest(dir: string, manifest: unknown): string {
  const m = putJson(dir, manifest);
  const idx = indexOf(dir);
  for (const e of idx.manifests) if (e.annotations['org.opencontainers.image.ref.name'] === 'latest-amd64') Object.assign(e, m);
  writeFileSync(join(dir, 'index.json'), JSON.stringify(idx));
  return dir;
}

async function refusedEverywhere(dir: string, code: string, what: string, ref = 'latest-amd64'): Promise<void> {
  const before = readdirSync(dir).sort();
  assertRefused(await cli(['inspect', `${dir}:${ref}`]), code, `inspect: ${what}`);
  assertRefused(await cli(['copy', `oci:${dir}:${ref}`, '127.0.0.1:1/x/y:1']), code, `copy: ${what}`);
  const out = join(work, `out${n++}`);
  assertRefused(await cli(['append', `${dir}:${ref}`, '--layer', template, '--out', out]), code, `append: ${what}`);
  assert.equal(existsSync(out), false, `append left ${out} (${what})`);
  assert.deepEqual(readdirSync(dir).sort(), before, `something was written into the layout (${what})`);
}

test('index.json missing, garbage, a BOM, an array, the wrong schemaVersion, a directory, a FIFO, /dev/zero', async () => {
  const cases: [string, (d: string) => void][] = [
    ['missing', (d) => unlinkSync(join(d, 'index.json'))],
    ['garbage', (d) => writeFileSync(join(d, 'index.json'), '\x00\xff garbage {')],
    ['a BOM', (d) => writeFileSync(join(d, 'index.json'), '\ufeff' + readFileSync(join(d, 'index.json'), 'utf8'))],
    ['an array', (d) => writeFileSync(join(d, 'index.json'), '[]')],
    ['schemaVersion 1', (d) => writeFileSync(join(d, 'index.json'), JSON.stringify({ ...indexOf(d), schemaVersion: 1 }))],
    ['manifests not a list', (d) => writeFileSync(join(d, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: { a: 1 } }))],
    ['a null entry', (d) => writeFileSync(join(d, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [null] }))],
    ['a directory', (d) => { unlinkSync(join(d, 'index.json')); cpSync(join(d, 'blobs'), join(d, 'index.json'), { recursive: true }); }],
    ['a FIFO', (d) => { unlinkSync(join(d, 'index.json')); execFileSync('mkfifo', [join(d, 'index.json')]); }],
    ['a symlink to /dev/zero', (d) => { unlinkSync(join(d, 'index.json')); symlinkSync('/dev/zero', join(d, 'index.json')); }],
    ['17 MiB of spaces', (d) => writeFileSync(join(d, 'index.json'), Buffer.alloc(17 * 1024 * 1024, 0x20))],
  ];
  for (const [what, breakIt] of cases) {
    const d = layout();
    breakIt(d);
    assertRefused(await cli(['inspect', d]), 'OCI_INVALID', `index.json ${what}`);
    assertRefused(await cli(['inspect', `${d}:latest`]), 'OCI_INVALID', `index.json ${what}, a ref`);
  }
});

test('JSON nested a million deep, and a descriptor nested deep, end in OCI_INVALID, never a stack overflow', async () => {
  const deep = layout();
  writeFileSync(join(deep, 'index.json'), `{"schemaVersion":2,"manifests":[${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}]}`);
  assertRefused(await cli(['inspect', `${deep}:latest`]), 'OCI_INVALID', 'deep index.json');
  assertRefused(await cli(['append', `${deep}:latest`, '--layer', template, '--out', join(work, 'deep-out')]), 'OCI_INVALID', 'deep index.json');
  const deepAnno = layout();
  const idx = indexOf(deepAnno);
  const text = JSON.stringify(idx).replace('"annotations":{', `"annotations":{"x":${'['.repeat(200_000)}${']'.repeat(200_000)},`);
  writeFileSync(join(deepAnno, 'index.json'), text);
  // An annotation value is never walked: inspect reads past it (no recursion to overflow).
  const r = await cli(['inspect', `${deepAnno}:latest-amd64`]);
  assert.equal(r.code, 0, r.stderr);
  // A manifest blob nested deep as its own content (its digest is right: the attacker wrote both).
  await refusedEverywhere(withManifest(layout(), `{"schemaVersion":2,"config":${'['.repeat(100_000)}${']'.repeat(100_000)},"layers":[]}`), 'OCI_INVALID', 'deep config descriptor');
});

test('descriptors that lie: size, digest, a non-sha256 algorithm, `..` in the digest, a huge size, an unknown media type', async () => {
  const edits: [string, (e: any) => void][] = [
    ['size one short', (e) => (e.size -= 1)],
    ['size one long', (e) => (e.size += 1)],
    ['size 2^53', (e) => (e.size = 2 ** 53)],
    ['size negative', (e) => (e.size = -1)],
    ['size a string', (e) => (e.size = '100')],
    ['another digest', (e) => (e.digest = `sha256:${'0'.repeat(64)}`)],
    ['sha512', (e) => (e.digest = `sha512:${'0'.repeat(128)}`)],
    ['traversal', (e) => (e.digest = 'sha256:../../../../etc/passwd')],
    ['upper case hex', (e) => (e.digest = e.digest.toUpperCase().replace('SHA256', 'sha256'))],
    ['an unknown media type', (e) => (e.mediaType = 'application/vnd.evil+json')],
    ['no media type', (e) => delete e.mediaType],
  ];
  for (const [what, edit] of edits) {
    const d = layout();
    const idx = indexOf(d);
    for (const e of idx.manifests) edit(e);
    writeFileSync(join(d, 'index.json'), JSON.stringify(idx));
    await refusedEverywhere(d, 'OCI_INVALID', `index.json entry: ${what}`);
    // push reads every ref of the layout before it connects (port 1 would refuse the connection).
    assertRefused(await cli(['push', d, '127.0.0.1:1/x/y']), 'OCI_INVALID', `push: ${what}`);
  }
  // The same lies one level down, on a layer descriptor: the stream is checked, not trusted.
  for (const [what, edit, code] of [
    ['layer size short', (l: any) => (l.size -= 1), 'BLOB_SIZE_MISMATCH'],
    ['layer size long', (l: any) => (l.size += 1), 'BLOB_SIZE_MISMATCH'],
    ['layer digest other', (l: any) => (l.digest = `sha256:${'a'.repeat(64)}`), 'OCI_INVALID'],
    ['layer traversal', (l: any) => (l.digest = 'sha256:../../index.json'), 'OCI_INVALID'],
  ] as [string, (l: any) => void, string][]) {
    const d = layout();
    const { manifest } = firstLayer(d);
    edit(manifest.layers[0]);
    const dd = withManifest(d, manifest);
    // (copy streams layers only once a registry answers: the registry tests cover it.)
    assertRefused(await cli(['inspect', `${dd}:latest-amd64`]), code, `inspect: ${what}`);
  }
});

test('an index nested in an index, an index naming itself, and an index naming 100k manifests', async () => {
  const d = layout();
  const idx = indexOf(d);
  const top = idx.manifests.find((e: any) => e.annotations['org.opencontainers.image.ref.name'] === 'latest');
  const nested = putJson(d, { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: top.mediaType, digest: top.digest, size: top.size }] });
  idx.manifests.push({ mediaType: 'application/vnd.oci.image.index.v1+json', ...nested, annotations: { 'org.opencontainers.image.ref.name': 'nested' } });
  writeFileSync(join(d, 'index.json'), JSON.stringify(idx));
  assertRefused(await cli(['inspect', `${d}:nested`]), 'OCI_INVALID', 'nested index');
  assertRefused(await cli(['copy', `oci:${d}:nested`, '127.0.0.1:1/x/y:1']), 'OCI_INVALID', 'nested index, copy');

  // 100k children, each the same (valid) manifest: bounded by the document cap, not by the count.
  const many = layout();
  const amd = indexOf(many).manifests.find((e: any) => e.annotations['org.opencontainers.image.ref.name'] === 'latest-amd64');
  const child = { mediaType: amd.mediaType, digest: amd.digest, size: amd.size };
  const big = putJson(many, { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: Array.from({ length: 100_000 }, () => child) });
  const idx2 = indexOf(many);
  idx2.manifests.push({ mediaType: 'application/vnd.oci.image.index.v1+json', ...big, annotations: { 'org.opencontainers.image.ref.name': 'many' } });
  writeFileSync(join(many, 'index.json'), JSON.stringify(idx2));
  const t0 = Date.now();
  const r = await spawnCli(['inspect', `${many}:many`], { killAfterMs: 30_000 });
  assert.equal(r.killed, false, `inspect of a 100k-manifest index did not end in 30 s`);
  assertRefused(r, 'OCI_INVALID', '100k manifests');
  assert.ok(Date.now() - t0 < 30_000);
});

test('a layer blob that is a FIFO, a directory, /dev/zero, or a symlink out of the layout: refused, never a hang', async () => {
  const cases: [string, (p: string) => void, string][] = [
    ['a FIFO', (p) => execFileSync('mkfifo', [p]), 'OCI_INVALID'],
    ['a directory', (p) => execFileSync('mkdir', [p]), 'OCI_INVALID'],
    ['a symlink to /dev/zero', (p) => symlinkSync('/dev/zero', p), 'OCI_INVALID'],
    // Read, and refused by its digest (as a size mismatch first, here).
    ['a symlink out of the layout', (p) => symlinkSync('/etc/passwd', p), '(?:OCI_INVALID|BLOB_SIZE_MISMATCH)'],
    ['a dangling symlink', (p) => symlinkSync('/nonexistent/blob', p), 'OCI_INVALID'],
  ];
  for (const [what, make, code] of cases) {
    const d = layout();
    const { layer } = firstLayer(d);
    unlinkSync(blob(d, layer.digest));
    make(blob(d, layer.digest));
    for (const args of [['inspect', `${d}:latest-amd64`], ['append', `${d}:latest-amd64`, '--layer', template, '--out', join(work, `o${n++}`)]]) {
      const r = await spawnCli(args, { killAfterMs: 20_000 });
      assert.equal(r.killed, false, `${args[0]} hung on a layer blob that is ${what}`);
      assertRefused(r, code, `${args[0]}: layer blob ${what}`);
      assert.doesNotMatch(r.stderr, /^hint: .*(mirror|relock)/m, `${args[0]}: a layout's blob is not a mirror's (${what})`);
    }
  }
  // The manifest blob as a FIFO too (read whole, not streamed).
  const d = layout();
  unlinkSync(blob(d, made.amd64));
  execFileSync('mkfifo', [blob(d, made.amd64)]);
  const r = await spawnCli(['inspect', `${d}:latest-amd64`], { killAfterMs: 20_000 });
  assert.equal(r.killed, false, 'inspect hung on a manifest FIFO');
  assertRefused(r, 'OCI_INVALID', 'manifest FIFO');
});

test('a layer that is a gzip bomb, or says gzip and is not, is refused when inspect reads it', async () => {
  // 1 GiB of zeros in ~1 MiB of gzip, declared as the layer (size and digest right: the attacker made it).
  const bomb = gzipSync(Buffer.alloc(256 * 1024 * 1024), { level: 9 });
  const cases: [string, Buffer][] = [
    ['a gzip bomb of zeros (not a tar)', bomb],
    ['not gzip', Buffer.from('this is not gzip at all'.repeat(100))],
    ['truncated gzip', gzipSync(Buffer.alloc(100_000, 1)).subarray(0, 500)],
  ];
  for (const [what, bytes] of cases) {
    const d = layout();
    const { manifest } = firstLayer(d);
    writeFileSync(blob(d, toDigest(sha256Hex(bytes))), bytes);
    manifest.layers[0] = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: toDigest(sha256Hex(bytes)), size: bytes.length };
    const dd = withManifest(d, manifest);
    const r = await spawnCli(['inspect', `${dd}:latest-amd64`], { killAfterMs: 30_000 });
    assert.equal(r.killed, false, `inspect did not end on ${what}`);
    assertRefused(r, 'OCI_INVALID', `inspect: ${what}`);
  }
});

test('diff of a layout whose provenance is a FIFO, /dev/zero, not JSON, or nested a million deep', async () => {
  const cases: [string, (p: string) => void, string][] = [
    ['a FIFO', (p) => execFileSync('mkfifo', [p]), 'LOCK_INVALID'],
    ['/dev/zero', (p) => symlinkSync('/dev/zero', p), 'LOCK_INVALID'],
    ['not JSON', (p) => writeFileSync(p, '{"predicateType":'), 'LOCK_INVALID'],
    ['nested a million deep', (p) => writeFileSync(p, '['.repeat(1_000_000) + ']'.repeat(1_000_000)), 'PROVENANCE_INVALID'],
  ];
  for (const [what, make, code] of cases) {
    const d = layout();
    execFileSync('mkdir', ['-p', join(d, 'attestations')]);
    make(join(d, 'attestations', 'provenance.intoto.json'));
    const r = await spawnCli(['diff', d, d], { killAfterMs: 20_000 });
    assert.equal(r.killed, false, `diff hung on a provenance that is ${what}`);
    assertRefused(r, code, `diff: provenance ${what}`);
  }
});
