// Hostile suite, class 4: the cache is verified on read, not trusted. A layer record whose blob is
// missing, altered, or whose diffId/size lies; an SBOM entry truncated or swapped; a directory where a
// file belongs — each is dropped and rebuilt, and the output is byte-identical to a clean build. A
// cache directory that is a file, read-only or unusable is CACHE_IO with a hint. Temp files a killed
// run left in the cache are swept.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { APP, LIBAPP, assertRefused, cli, makeWorld, mustBuild, mustLock, simpleDefinition, snapshot, withoutProvenance, type World } from './helpers.js';

let w: World;
let image: string;
let reference: Map<string, string>;

before(async () => {
  w = await makeWorld([APP, LIBAPP], 'distill-hostile-cache-');
  image = w.define('app', simpleDefinition(['app']));
  await mustLock(w, image);
  const out = join(w.dir, 'reference');
  await mustBuild(w, image, out);
  reference = withoutProvenance(snapshot(out));
});

let n = 0;
/** Damage the cache, rebuild: success, and byte-identical to the reference. */
async function survives(damage: () => void, what: string): Promise<void> {
  damage();
  const out = join(w.dir, `out-${n++}`);
  const r = await cli(['build', image, '--out', out, ...w.flags]);
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /INTERNAL/);
  assert.deepEqual(withoutProvenance(snapshot(out)), reference, what);
}

const files = (sub: string) => (existsSync(join(w.cache, sub)) ? readdirSync(join(w.cache, sub)).filter((f) => f.endsWith('.json')).map((f) => join(w.cache, sub, f)) : []);
const record = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

test('layer records: truncated, a directory, foreign JSON, a lying diffId, size or digest', async () => {
  const layers = () => files('layers');
  assert.ok(layers().length > 0, 'the reference build recorded its layer');
  await survives(() => layers().forEach((p) => writeFileSync(p, readFileSync(p, 'utf8').slice(0, 20))), 'truncated record');
  await survives(() => layers().forEach((p) => { rmSync(p); mkdirSync(p); }), 'a directory where the record belongs');
  await survives(() => layers().forEach((p) => writeFileSync(p, '{"digest": 5, "entries": "x"}')), 'foreign JSON');
  await survives(() => layers().forEach((p) => writeFileSync(p, JSON.stringify({ ...record(p), diffId: `sha256:${'1'.repeat(64)}` }))), 'lying diffId');
  await survives(() => layers().forEach((p) => writeFileSync(p, JSON.stringify({ ...record(p), uncompressedSize: record(p).uncompressedSize + 1 }))), 'lying uncompressed size');
  // A record naming another real blob of the store (a .deb): digest and size match that blob, but it
  // is not this layer — its diffId check fails (it does not even inflate as gzip).
  const deb = readdirSync(join(w.cache, 'blobs', 'sha256')).map((h) => ({ h, size: readFileSync(join(w.cache, 'blobs', 'sha256', h)).length })).find((b) => !layers().some((p) => record(p).digest === `sha256:${b.h}`))!;
  await survives(() => layers().forEach((p) => writeFileSync(p, JSON.stringify({ ...record(p), digest: `sha256:${deb.h}`, size: deb.size }))), 'a record pointing at another blob');
  assert.ok(existsSync(join(w.cache, 'blobs', 'sha256', deb.h)), 'the .deb the forged record named is intact and kept');
});

test('a layer blob altered on disk, or replaced by a directory, is dropped and rebuilt', async () => {
  const blobOf = (): string => join(w.cache, 'blobs', 'sha256', (record(files('layers')[0]!) as { digest: string }).digest.slice(7));
  await survives(() => { const b = blobOf(); const bytes = readFileSync(b); bytes.writeUInt8(bytes.readUInt8(bytes.length - 5) ^ 1, bytes.length - 5); rmSync(b); writeFileSync(b, bytes); }, 'a flipped bit');
  await survives(() => { const b = blobOf(); rmSync(b); mkdirSync(b); }, 'a directory where the blob belongs');
});

test('SBOM entries: truncated, swapped for other bytes, a directory', async () => {
  const sboms = () => files('sboms');
  assert.ok(sboms().length > 0, 'the reference build cached its SBOM');
  await survives(() => sboms().forEach((p) => writeFileSync(p, '{"sha256": "')), 'truncated record');
  await survives(() => sboms().forEach((p) => { rmSync(p); mkdirSync(p); }), 'a directory');
  await survives(() => sboms().forEach((p) => {
    // The blob it names replaced by other bytes of the same length.
    const r = record(p);
    const b = join(w.cache, 'blobs', 'sha256', r.sha256);
    rmSync(b);
    writeFileSync(b, Buffer.alloc(r.size, 0x20));
  }), 'altered SBOM bytes');
  await survives(() => sboms().forEach((p) => writeFileSync(p, JSON.stringify({ sha256: record(files('layers')[0]!).digest.slice(7), size: 1 }))), 'a record naming another blob');
});

test('temp files a killed run left in the cache are swept by the next run; fresh ones are left alone', async () => {
  const old = new Date(Date.now() - 2 * 3600_000);
  const stale = [join(w.cache, 'ingest', 'deadbeef-0123'), join(w.cache, 'layers', `${'a'.repeat(64)}.json.tmp-00ff`), join(w.cache, 'build', 'abcdef')];
  for (const p of stale) {
    mkdirSync(join(p, '..'), { recursive: true });
    if (p.endsWith('abcdef')) mkdirSync(join(p, 'stage'), { recursive: true });
    else writeFileSync(p, 'partial');
    utimesSync(p, old, old);
  }
  const fresh = join(w.cache, 'ingest', 'live-writer');
  writeFileSync(fresh, 'in progress');
  await survives(() => {}, 'sweep');
  for (const p of stale) assert.equal(existsSync(p), false, `${p} swept`);
  assert.ok(existsSync(fresh), 'a fresh temp file (a live run) is left alone');
  rmSync(fresh);
});

test('a cache path that is a file, below a file, or read-only is CACHE_IO with a hint', async () => {
  const d = tempDir('distill-hostile-cachedir-');
  const f = join(d, 'file');
  writeFileSync(f, 'x');
  const flags = w.flags.filter((_, i, a) => a[i] !== '--cache' && a[i - 1] !== '--cache');
  for (const cache of [f, join(f, 'below')]) {
    assertRefused(await cli(['build', image, '--out', join(d, 'out'), ...flags, '--cache', cache]), 'CACHE_IO', cache);
    assertRefused(await cli(['lock', image, ...flags, '--cache', cache]), 'CACHE_IO', `lock ${cache}`);
  }
  assert.equal(existsSync(join(d, 'out')), false);
});

test('a read-only cache (a read-only mount) is CACHE_IO', async (t) => {
  const d = tempDir('distill-hostile-rocache-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', d], { stdio: 'ignore' });
  } catch {
    t.skip('cannot mount a tmpfs here (needs root); chmod does not stop root');
    return;
  }
  try {
    const flags = w.flags.filter((_, i, a) => a[i] !== '--cache' && a[i - 1] !== '--cache');
    assertRefused(await cli(['build', image, '--out', join(w.dir, 'ro-out'), ...flags, '--cache', d]), 'CACHE_IO');
    assert.equal(existsSync(join(w.dir, 'ro-out')), false);
  } finally {
    execFileSync('umount', [d]);
  }
});
