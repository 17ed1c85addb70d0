// Locking against a small synthetic archive that the test signs itself: what the frozen snapshot
// cannot show — virtual-package and alternative choices, odd versions, bad signatures, unknown keys,
// tampered indexes and .debs, expiry — each checked against apt where apt has an opinion.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { lockImages } from '../../src/lock/lock.js';
import { fetchImages } from '../../src/fetch/images.js';
import { makeArchive, makeKey, type SynthArchive, type SynthKey, type SynthPackage } from '../helpers/synthetic-archive.js';
import { aptAvailable, aptResolve } from '../helpers/apt-resolve.js';
import { tempDir } from '../helpers/tmp.js';

const haveGpg = spawnSync('gpg', ['--version']).status === 0;
const skip = haveGpg ? false : 'gpg is not installed (apt-get install gnupg)';

const PACKAGES: SynthPackage[] = [
  { name: 'libc6', version: '2.41-12', architecture: 'amd64', multiArch: 'same', priority: 'optional' },
  { name: 'app', version: '1:2.0~rc1-1', architecture: 'amd64', depends: 'libc6 (>= 2.41), awk, mail-transport-agent, python3:any (>= 3.11~), libfoo-api (>= 2)' },
  { name: 'mawk', version: '1.3.4-1', architecture: 'amd64', provides: 'awk', priority: 'required', depends: 'libc6' },
  { name: 'original-awk', version: '2024-1', architecture: 'amd64', provides: 'awk', priority: 'optional' },
  { name: 'exim4-daemon-light', version: '4.98-1', architecture: 'amd64', provides: 'mail-transport-agent', priority: 'optional' },
  { name: 'python3', version: '3.13.5-1', architecture: 'amd64', multiArch: 'allowed', depends: 'libc6' },
  { name: 'foo-old', version: '1.0-1', architecture: 'amd64', provides: 'libfoo-api (= 1.0)' },
  { name: 'foo-new', version: '1.0-1', architecture: 'amd64', provides: 'libfoo-api (= 2.5)' },
  { name: 'tzdata', version: '2026a-1', architecture: 'all', depends: 'debconf (>= 0.5) | debconf-2.0' },
  { name: 'debconf', version: '1.5.91', architecture: 'all', provides: 'debconf-2.0', preDepends: 'perl-base (>= 5.20)' },
  { name: 'perl-base', version: '5.40.1-6', architecture: 'amd64', essential: true, priority: 'required' },
  { name: 'broken', version: '1', architecture: 'amd64', depends: 'middle' },
  { name: 'middle', version: '1', architecture: 'amd64', depends: 'libc6 (>= 3.0)' },
];
const SECURITY: SynthPackage[] = [{ name: 'libc6', version: '2.41-12+deb13u1', architecture: 'amd64', multiArch: 'same' }];

let key: SynthKey;
let archive: SynthArchive;
let otherKey: SynthKey;

before(async () => {
  if (skip) return;
  const dir = tempDir('distill-synth-');
  key = await makeKey(join(dir, 'key'));
  otherKey = await makeKey(join(dir, 'other'), { algo: 'rsa3072' });
  archive = await makeArchive(join(dir, 'mirror'), [
    { archiveName: 'debian', suite: 'trixie', architectures: ['amd64'], packages: PACKAGES },
    { archiveName: 'debian-security', suite: 'trixie-security', architectures: ['amd64'], packages: SECURITY, style: 'debian-security' },
  ], { key });
});

/** A fresh copy of the archive (to tamper with) and an images dir holding one definition. */
function setup(packages: string[], exclude: string[] = [], archiveRoot = archive.root) {
  const dir = tempDir('distill-synthlock-');
  cpSync(archiveRoot, join(dir, 'mirror'), { recursive: true });
  mkdirSync(join(dir, 'images', 'app'), { recursive: true });
  const def = join(dir, 'images', 'app', 'image.yaml');
  writeFileSync(
    def,
    `sources:\n  debian:\n    suite: trixie\n  debian-security:\n    suite: trixie-security\narchitectures: [amd64]\npackages: [${packages.join(', ')}]\n` +
      (exclude.length ? `exclude: [${exclude.join(', ')}]\n` : ''),
  );
  const opts = {
    cacheDir: join(dir, 'cache'),
    keyring: key.keyringPath,
    mirrors: { flags: { debian: `file://${dir}/mirror/debian`, 'debian-security': `file://${dir}/mirror/debian-security` }, aptSources: [] },
    now: new Date('2025-07-01T00:00:00Z'),
  };
  return { dir, def, opts, lockPath: join(dir, 'images', 'app', 'image.lock.json') };
}

const closureOf = (lock: any) => Object.fromEntries(lock.architectures.amd64.packages.map((p: any) => [p.name, p.version]));

test('virtual packages, versioned Provides, :any, security updates and excludes resolve as apt does', { skip }, async () => {
  const s = setup(['app', 'tzdata'], ['debconf']);
  const [r] = await lockImages([s.def], s.opts);
  const ours = closureOf(r!.lock);
  assert.deepEqual(ours, {
    app: '1:2.0~rc1-1',
    'exim4-daemon-light': '4.98-1',
    'foo-new': '1.0-1',
    libc6: '2.41-12+deb13u1',
    mawk: '1.3.4-1',
    python3: '3.13.5-1',
    tzdata: '2026a-1',
  });
  assert.equal(r!.lock.architectures['amd64']!.packages.find((p) => p.name === 'libc6')!.archive, 'debian-security');
  if (await aptAvailable()) {
    const apt = await aptResolve({
      sources: [
        { url: archive.url('debian'), suite: 'trixie', components: ['main'] },
        { url: archive.url('debian-security'), suite: 'trixie-security', components: ['main'] },
      ],
      keyring: key.keyringPath,
      arch: 'amd64',
      packages: ['app', 'tzdata'],
      exclude: ['debconf'],
      workDir: join(s.dir, 'apt'),
    });
    assert.deepEqual(ours, Object.fromEntries([...apt].map(([n, c]) => [n, c.version])));
  }
});

test('a Packages.xz with one byte changed is refused before parsing; nothing is written', { skip }, async () => {
  const s = setup(['app']);
  const idx = join(s.dir, 'mirror', 'debian', 'dists', 'trixie', 'main', 'binary-amd64', 'Packages.xz');
  const b = readFileSync(idx);
  const at = Math.floor(b.length / 2);
  b[at] = b[at]! ^ 0x01;
  writeFileSync(idx, b);
  await assert.rejects(lockImages([s.def], s.opts), (e: any) => e.code === 'INDEX_HASH_MISMATCH' && /binary-amd64\/Packages\.xz/.test(e.message));
  assert.equal(existsSync(s.lockPath), false);
  // The corrupt index did not enter the cache either.
  const blobs = join(s.opts.cacheDir, 'blobs', 'sha256');
  const cached = existsSync(blobs) ? readdirSync(blobs).map((h) => readFileSync(join(blobs, h))) : [];
  assert.ok(!cached.some((c) => c.equals(b)));
});

test('an InRelease whose signed text was changed is SIGNATURE_BAD', { skip }, async () => {
  const s = setup(['app']);
  const p = join(s.dir, 'mirror', 'debian', 'dists', 'trixie', 'InRelease');
  writeFileSync(p, readFileSync(p, 'utf8').replace('Suite: trixie', 'Suite: trixiE'));
  await assert.rejects(lockImages([s.def], s.opts), (e: any) => e.code === 'SIGNATURE_BAD');
  assert.equal(existsSync(s.lockPath), false);
});

test('an InRelease signed by a key outside the keyring is SIGNATURE_UNKNOWN_KEY', { skip }, async () => {
  const s = setup(['app']);
  await assert.rejects(lockImages([s.def], { ...s.opts, keyring: otherKey.keyringPath }), (e: any) => e.code === 'SIGNATURE_UNKNOWN_KEY' && /--keyring/.test(e.hint));
});

test('unsigned text outside the signature is refused', { skip }, async () => {
  const s = setup(['app']);
  const p = join(s.dir, 'mirror', 'debian', 'dists', 'trixie', 'InRelease');
  writeFileSync(p, readFileSync(p, 'utf8') + '\nSHA256:\n 0000 1 main/binary-amd64/Packages.xz\n');
  await assert.rejects(lockImages([s.def], s.opts), (e: any) => e.code === 'SIGNATURE_MALFORMED');
});

test('an expired Release needs --allow-expired', { skip }, async () => {
  const dir = tempDir('distill-synth-exp-');
  const expired = await makeArchive(join(dir, 'mirror'), [
    { archiveName: 'debian', suite: 'trixie', architectures: ['amd64'], packages: PACKAGES, validUntil: new Date('2025-06-08T00:00:00Z') },
    { archiveName: 'debian-security', suite: 'trixie-security', architectures: ['amd64'], packages: SECURITY },
  ], { key });
  const s = setup(['python3'], [], expired.root);
  await assert.rejects(lockImages([s.def], s.opts), (e: any) => e.code === 'RELEASE_EXPIRED');
  const [r] = await lockImages([s.def], { ...s.opts, allowExpired: true });
  assert.deepEqual(closureOf(r!.lock), { libc6: '2.41-12+deb13u1', python3: '3.13.5-1' });
});

test('an unsatisfiable dependency names the chain; an unknown package suggests names', { skip }, async () => {
  const s = setup(['broken']);
  await assert.rejects(lockImages([s.def], s.opts), (e: any) => e.code === 'DEPENDENCY_UNSATISFIABLE' && e.message.includes('broken → middle') && e.message.includes('libc6 (>= 3.0)'));
  const t = setup(['pyhton3']);
  await assert.rejects(lockImages([t.def], t.opts), (e: any) => e.code === 'PACKAGE_UNKNOWN' && e.message.includes('"python3"'));
  assert.equal(existsSync(t.lockPath), false);
});

test('a .deb whose content differs from the lock is refused; the cache keeps nothing of it', { skip }, async () => {
  const s = setup(['python3']);
  await lockImages([s.def], s.opts);
  const deb = join(s.dir, 'mirror', 'debian', 'pool', 'main', 'p', 'python3', 'python3_3.13.5-1_amd64.deb');
  assert.ok(existsSync(deb), 'fixture layout');
  const b = readFileSync(deb);
  b[b.length - 10] = b[b.length - 10]! ^ 0xff;
  chmodSync(deb, 0o644);
  writeFileSync(deb, b);
  await assert.rejects(fetchImages([s.def], { cacheDir: s.opts.cacheDir, mirrors: s.opts.mirrors }), (e: any) => e.code === 'BLOB_DIGEST_MISMATCH' && /python3_3\.13\.5-1_amd64\.deb/.test(e.message));
  const lock = JSON.parse(readFileSync(s.lockPath, 'utf8'));
  const py = lock.architectures.amd64.packages.find((p: any) => p.name === 'python3');
  assert.equal(existsSync(join(s.opts.cacheDir, 'blobs', 'sha256', py.sha256)), false);
  assert.deepEqual(readdirSync(join(s.opts.cacheDir, 'ingest')), []);
});

test('a lock goes stale when its definition changes', { skip }, async () => {
  const s = setup(['python3']);
  await lockImages([s.def], s.opts);
  writeFileSync(s.def, readFileSync(s.def, 'utf8').replace('[python3]', '[python3, mawk]'));
  await assert.rejects(fetchImages([s.def], { cacheDir: s.opts.cacheDir, mirrors: s.opts.mirrors }), (e: any) => e.code === 'LOCK_STALE');
});
