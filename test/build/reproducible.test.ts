// Same lock ⇒ same bytes: two builds give identical layouts, and a build in another process with
// another TZ, umask, locale, working directory, gzip worker count and a cold cache gives the same
// digests. SOURCE_DATE_EPOCH is the only clock input, and it changes every digest when set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage } from '../../src/build.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

const snap = snapshotDir();
const skip = snap === undefined ? NO_SNAPSHOT : false;
const bin = join(repoRoot, 'dist', 'src', 'bundle', 'distill.js');

function files(dir: string, prefix = ''): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = join(prefix, e.name);
    if (e.isDirectory()) for (const [k, v] of files(dir, rel)) out.set(k, v);
    else out.set(rel, readFileSync(join(dir, rel)));
  }
  return out;
}

test('python3 (amd64, all variants): identical layouts in-process and in a differently configured process', { skip }, async () => {
  const mirrors = snapshotMirrors(snap!);
  const def = join(repoRoot, 'images', 'python3', 'image.yaml');
  const outA = tempDir('distill-repro-a-');
  // The archives go to a directory of this run's own: tests of other checkouts may run at the same time.
  const tars = tempDir('distill-repro-tars-');
  const a = await buildImage(def, { cacheDir: tempDir('distill-repro-ca-'), mirrors: { flags: mirrors, aptSources: [] }, outDir: outA, platforms: ['amd64'], gzipWorkers: 0, tarFile: join(tars, 'a.tar') });

  const outB = tempDir('distill-repro-b-');
  const cwd = tempDir('distill-repro-cwd-');
  const args = [bin, 'build', def, '--out', outB, '--tar', join(tars, 'b.tar'), '--platform', 'linux/amd64', '--json', '--gzip-workers', '3', '--cache', tempDir('distill-repro-cb-'),
    ...Object.entries(mirrors).flatMap(([k, v]) => ['--mirror', `${k}=${v}`])];
  const r = spawnSync('sh', ['-c', 'umask 077; exec "$@"', 'sh', process.execPath, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 300_000,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: cwd, TZ: 'Pacific/Chatham', LANG: 'tr_TR.UTF-8', LC_ALL: 'tr_TR.UTF-8' },
  });
  assert.equal(r.status, 0, r.stderr);
  const b = JSON.parse(r.stdout);
  const { provenance: _pa, ...aDigests } = JSON.parse(JSON.stringify(a));
  const { provenance: _pb, layers: _lb, ...bDigests } = b;
  assert.deepEqual(bDigests, aDigests);
  // Both equal the committed expectations (reproducibility/digests.json, made by npm run repro).
  const expected = JSON.parse(readFileSync(join(repoRoot, 'reproducibility', 'digests.json'), 'utf8'));
  for (const v of b.variants) {
    for (const m of v.manifests) assert.equal(m.digest, expected.python3[v.variant][m.arch], `python3:${v.variant}-${m.arch} differs from reproducibility/digests.json`);
  }
  const fa = files(outA);
  const fb = files(outB);
  assert.deepEqual([...fb.keys()].sort(), [...fa.keys()].sort());
  // Everything but the provenance's run details (invocation id, start and end times) is byte-identical.
  for (const [k, v] of fa) if (!k.endsWith('provenance.intoto.json')) assert.ok(v.equals(fb.get(k)!), `${k} differs`);
  const runFree = (b: Buffer) => {
    const p = JSON.parse(b.toString('utf8'));
    delete p.predicate.runDetails.metadata;
    return p;
  };
  assert.deepEqual(runFree(fb.get(join('attestations', 'provenance.intoto.json'))!), runFree(fa.get(join('attestations', 'provenance.intoto.json'))!));
  assert.ok(readFileSync(join(tars, 'a.tar')).equals(readFileSync(join(tars, 'b.tar'))), 'docker archives differ');
});

test('SOURCE_DATE_EPOCH is the one timestamp: it changes every digest, and the same value gives the same ones', { skip }, async () => {
  const mirrors = { flags: snapshotMirrors(snap!), aptSources: [] };
  const def = join(repoRoot, 'images', 'static', 'image.yaml');
  const cacheDir = tempDir('distill-repro-sde-');
  const build = (sourceDateEpoch?: number) =>
    buildImage(def, { cacheDir, mirrors, outDir: tempDir('distill-repro-o-'), variants: ['latest'], platforms: ['arm64'], ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}) });
  const lockTime = await build();
  const y2000 = await build(946684800);
  const again = await build(946684800);
  assert.notEqual(y2000.variants[0]!.index, lockTime.variants[0]!.index);
  assert.equal(again.variants[0]!.index, y2000.variants[0]!.index);
});

test('a build needs only the lock and the cache: no mirror, no index, same digests', { skip }, async () => {
  const def = join(repoRoot, 'images', 'static', 'image.yaml');
  const cacheDir = tempDir('distill-offline-');
  const online = await buildImage(def, { cacheDir, mirrors: { flags: snapshotMirrors(snap!), aptSources: [] }, outDir: tempDir('distill-offline-a-') });
  const offline = await buildImage(def, { cacheDir, mirrors: { flags: {}, aptSources: [] }, outDir: tempDir('distill-offline-b-'), noLayerCache: true });
  assert.deepEqual({ ...offline, provenance: undefined }, { ...online, provenance: undefined });
  // With an empty cache and no mirror, the error says how to give one.
  await assert.rejects(
    buildImage(def, { cacheDir: tempDir('distill-offline-c-'), mirrors: { flags: {}, aptSources: [] }, outDir: tempDir('distill-offline-d-') }),
    (e: any) => e.code === 'MIRROR_NOT_CONFIGURED' && /--mirror debian/.test(e.hint),
  );
});

test('a layer cached by one image never changes another image built on the same layers', { skip }, async () => {
  const { cpSync } = await import('node:fs');
  const { lockImages } = await import('../../src/lock/lock.js');
  const { systemKeyring } = await import('../helpers/paths.js');
  const images = join(tempDir('distill-twins-'), 'images');
  cpSync(join(repoRoot, 'images'), images, { recursive: true });
  const { mkdirSync, writeFileSync } = await import('node:fs');
  for (const [name, value] of [['twin-a', 'a'], ['twin-b', 'b']] as const) {
    mkdirSync(join(images, name));
    writeFileSync(join(images, name, 'image.yaml'), `extends: static\nconfig:\n  env: {WHICH: ${value}}\n`);
  }
  const mirrors = { flags: snapshotMirrors(snap!), aptSources: [] };
  const shared = tempDir('distill-twins-cache-');
  await lockImages([join(images, 'twin-a', 'image.yaml'), join(images, 'twin-b', 'image.yaml')], { cacheDir: shared, mirrors, allowExpired: true, keyring: systemKeyring });
  const build = (name: string, cacheDir: string) =>
    buildImage(join(images, name, 'image.yaml'), { cacheDir, mirrors, outDir: tempDir('distill-twins-o-'), platforms: ['amd64'] });
  await build('twin-a', shared);
  const afterA = await build('twin-b', shared);
  const fresh = await build('twin-b', tempDir('distill-twins-fresh-'));
  assert.deepEqual({ ...afterA, provenance: undefined }, { ...fresh, provenance: undefined });
});
