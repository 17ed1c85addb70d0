// A build takes the .debs already in its cache without rehashing them first: staging reads each one
// through the verifying store.open, and its bytes count only once all of them match the lock's sha256.
// Damage to a cached .deb — wherever it is, whatever the parser makes of it first — must still end as
// before: the corrupt entry removed, fetched again from the mirror, and the same images built.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { buildImage, type BuildResult } from '../../src/build.js';
import { lockedSynthImage } from '../helpers/locked-synth.js';
import type { SynthArchive, SynthPackage } from '../helpers/synthetic-archive.js';
import { tempDir } from '../helpers/tmp.js';

const haveGpg = spawnSync('gpg', ['--version']).status === 0;
const skip = haveGpg ? false : 'gpg is not installed (apt-get install gnupg): the synthetic archive is signed with it';

// Bodies large enough that a flipped byte in the middle lands in data.tar.xz, not in a header.
const filler = (seed: string, n: number): string => Array.from({ length: n }, (_, i) => `${seed} ${i} ${createHash('sha256').update(seed + i).digest('hex')}\n`).join('');
const PACKAGES: SynthPackage[] = [
  { name: 'base-files', version: '13.8', architecture: 'amd64', essential: true, files: { 'etc/debian_version': '13.8\n', 'usr/lib/os-release': 'ID=debian\n', 'usr/share/doc/base-files/copyright': 'GPL\n' }, symlinks: { bin: 'usr/bin', lib: 'usr/lib', sbin: 'usr/sbin' } },
  { name: 'liba', version: '1.0', architecture: 'amd64', files: { 'usr/lib/liba.so.1': filler('a', 2000), 'usr/share/doc/liba/copyright': 'MIT\n' } },
  { name: 'libb', version: '2.0', architecture: 'amd64', files: { 'usr/lib/libb.so.2': filler('b', 2000), 'usr/share/doc/libb/copyright': 'MIT\n' } },
];

const YAML = `sources:
  debian:
    suite: trixie
    components: [main]
architectures: [amd64]
packages: [base-files, liba, libb]
`;

let archive: SynthArchive;
let work: string;
let mirrors: { flags: Record<string, string>; aptSources: [] };
let definition: string;

before(async () => {
  if (skip) return;
  work = tempDir('distill-cached-debs-');
  ({ archive, mirrors, definition } = await lockedSynthImage(work, PACKAGES, YAML));
});

const digests = (r: BuildResult): string[] => r.variants.flatMap((v) => [v.index, ...v.manifests.map((m) => m.digest)]);
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The cache's copy of a package's .deb, by the archive's bytes (the lock pins the same sha256). */
function cached(cacheDir: string, pkg: string): { path: string; bytes: Buffer } {
  const bytes = readFileSync(archive.debPath('debian', pkg, 'amd64'));
  return { path: join(cacheDir, 'blobs', 'sha256', sha256(bytes)), bytes };
}

function flip(path: string, at: (size: number) => number): void {
  chmodSync(path, 0o644);
  const b = readFileSync(path);
  const i = at(b.length);
  b[i] = b[i]! ^ 0x5a;
  writeFileSync(path, b);
}

test('corrupt cached .debs (control member, middle of data, last byte) are fetched again and the same images built', { skip }, async () => {
  const cacheDir = join(work, 'cache');
  const opts = { cacheDir, mirrors, variants: ['latest' as const], noLayerCache: true };
  const first = await buildImage(definition, opts);

  flip(cached(cacheDir, 'base-files').path, () => 100); // inside control.tar: the parser trips before the digest is known
  flip(cached(cacheDir, 'liba').path, (n) => Math.floor(n / 2));
  flip(cached(cacheDir, 'libb').path, (n) => n - 1); // only the digest at the very end can tell
  const fetched: string[] = [];
  const again = await buildImage(definition, {
    ...opts,
    onProgress: (e) => {
      if (e.type === 'download-start') fetched.push(e.what);
    },
  });
  assert.deepEqual(digests(again), digests(first));
  assert.deepEqual(fetched.map((f) => f.replace(/.*\//, '').replace(/_.*/, '')).sort(), ['base-files', 'liba', 'libb'], 'exactly the corrupt ones are fetched again');
  for (const pkg of ['base-files', 'liba', 'libb']) {
    const { path, bytes } = cached(cacheDir, pkg);
    assert.equal(sha256(readFileSync(path)), sha256(bytes), `${pkg}: the cache holds the right bytes again`);
  }
});

test('a corrupt cached .deb whose mirror copy is bad too fails the build on the digest, and the build leaves the cache entry out', { skip }, async () => {
  const cacheDir = join(work, 'cache');
  const deb = archive.debPath('debian', 'liba', 'amd64');
  const good = readFileSync(deb);
  const { path } = cached(cacheDir, 'liba');
  flip(path, (n) => Math.floor(n / 2));
  flip(deb, (n) => Math.floor(n / 3));
  try {
    await assert.rejects(buildImage(definition, { cacheDir, mirrors, variants: ['latest'], noLayerCache: true }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'BLOB_DIGEST_MISMATCH', e.message);
      return true;
    });
    assert.throws(() => readFileSync(path), /ENOENT/, 'the corrupt entry is removed, nothing stored in its place');
  } finally {
    writeFileSync(deb, good);
  }
});
