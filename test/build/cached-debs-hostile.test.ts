// A cached .deb is staged before its sha256 is known (store.open hashes it as it flows), so until the
// end of the read it is attacker-controlled bytes like any other: a cache entry replaced by a hostile
// .deb of the very same size (a '..' path, a control file naming another package, a trailer bomb), or
// truncated, must end as a corrupt one does — refused while staging, fetched again from the mirror,
// and the same images built — with nothing of it in a layer and no build directory left behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { buildImage, type BuildResult } from '../../src/build.js';
import { TRAILER_MAX } from '../../src/tar/reader.js';
import { arArchive, compress, craftDeb, craftTar, dir, file, packageControl } from '../helpers/craft-deb.js';
import { lockedSynthImage } from '../helpers/locked-synth.js';
import type { SynthArchive, SynthPackage } from '../helpers/synthetic-archive.js';
import { tempDir } from '../helpers/tmp.js';

const haveGpg = spawnSync('gpg', ['--version']).status === 0;
const skip = haveGpg ? false : 'gpg is not installed (apt-get install gnupg): the synthetic archive is signed with it';

const filler = (seed: string, n: number): string => Array.from({ length: n }, (_, i) => `${seed} ${i} ${createHash('sha256').update(seed + i).digest('hex')}\n`).join('');
const PACKAGES: SynthPackage[] = [
  { name: 'base-files', version: '13.8', architecture: 'amd64', essential: true, files: { 'etc/debian_version': '13.8\n', 'usr/lib/os-release': 'ID=debian\n', 'usr/share/doc/base-files/copyright': 'GPL\n' }, symlinks: { bin: 'usr/bin', lib: 'usr/lib', sbin: 'usr/sbin' } },
  { name: 'liba', version: '1.0', architecture: 'amd64', files: { 'usr/lib/liba.so.1': filler('a', 3000), 'usr/share/doc/liba/copyright': 'MIT\n' } },
];

const YAML = `sources:
  debian:
    suite: trixie
    components: [main]
architectures: [amd64]
packages: [base-files, liba]
`;

let archive: SynthArchive;
let work: string;
let mirrors: { flags: Record<string, string>; aptSources: [] };
let definition: string;

before(async () => {
  if (skip) return;
  work = tempDir('distill-cached-hostile-');
  ({ archive, mirrors, definition } = await lockedSynthImage(work, PACKAGES, YAML));
});

const digests = (r: BuildResult): string[] => r.variants.flatMap((v) => [v.index, ...v.manifests.map((m) => m.digest)]);
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** `deb` grown to exactly `size` bytes with an ignorable `_pad` member (deb(5): readers skip `_` members). */
function sameSize(deb: Buffer, size: number): Buffer {
  const room = size - deb.length - 60;
  assert.ok(room >= 0 && room % 2 === 0, `the hostile .deb (${deb.length} bytes) fits in ${size}`);
  const padded = Buffer.concat([deb, arArchive([{ name: '_pad', data: Buffer.alloc(room, 0x20) }]).subarray(8)]);
  assert.equal(padded.length, size);
  return padded;
}

test('a cached .deb replaced by a hostile one of the same size, or truncated, is fetched again and the same images built', { skip, timeout: 120_000 }, async () => {
  const cacheDir = join(work, 'cache');
  const opts = { cacheDir, mirrors, variants: ['latest' as const], noLayerCache: true };
  const first = await buildImage(definition, opts);
  const good = readFileSync(archive.debPath('debian', 'liba', 'amd64'));
  const path = join(cacheDir, 'blobs', 'sha256', sha256(good));
  const control = packageControl({ name: 'liba', version: '1.0' });
  const bomb = Buffer.concat([await craftTar([dir('./'), file('./usr/lib/x', 'x')]), Buffer.alloc(TRAILER_MAX + (1 << 20))]);
  const hostile: [string, (size: number) => Promise<Buffer>][] = [
    ['a ".." path', async (n) => sameSize(await craftDeb({ control, entries: [dir('./'), file('./usr/../../../etc/cron.d/x', '* * * * * root sh\n')] }), n)],
    ['a control file naming another package', async (n) => sameSize(await craftDeb({ control: packageControl({ name: 'other', version: '6.6' }), entries: [dir('./'), file('./usr/lib/liba.so.1', 'evil')] }), n)],
    ['a trailer bomb', async (n) => sameSize(await craftDeb({ control, dataCompression: 'xz', dataMember: compress(bomb, 'xz') }), n)],
    ['truncated to half', async (n) => good.subarray(0, n / 2)],
  ];
  for (const [label, make] of hostile) {
    chmodSync(path, 0o644);
    writeFileSync(path, await make(good.length));
    const fetched: string[] = [];
    const again = await buildImage(definition, {
      ...opts,
      onProgress: (e) => {
        if (e.type === 'download-start') fetched.push(e.what);
      },
    });
    assert.deepEqual(digests(again), digests(first), `${label}: the same images`);
    assert.deepEqual(fetched.map((f) => f.replace(/.*\//, '').replace(/_.*/, '')), ['liba'], `${label}: the replaced entry, and only it, is fetched again`);
    assert.equal(sha256(readFileSync(path)), sha256(good), `${label}: the cache holds the right bytes again`);
    const builds = join(cacheDir, 'build');
    assert.deepEqual(existsSync(builds) ? readdirSync(builds) : [], [], `${label}: no build directory is left behind`);
  }
});
