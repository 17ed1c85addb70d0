// Locking the standard images against the frozen Debian snapshot (a file:// mirror): the committed
// locks are exactly what distill produces, relocking is byte-identical, and every closure equals what
// apt itself resolves for the same requested packages and excludes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, readdirSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { lockImages } from '../../src/lock/lock.js';
import { loadLockChain } from '../../src/lock/load.js';
import { fetchImages } from '../../src/fetch/images.js';
import { findDefinitions } from '../../src/definition/find.js';
import { aptAvailable, aptResolve } from '../helpers/apt-resolve.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors, systemKeyring } from '../helpers/paths.js';
import { existsSync } from 'node:fs';
import { tempDir } from '../helpers/tmp.js';

const snap = snapshotDir();
const skip = snap === undefined ? NO_SNAPSHOT : !existsSync(systemKeyring) ? `${systemKeyring} is missing (apt-get install debian-archive-keyring)` : false;
const cache = tempDir('distill-cache-');

function copyImages(): string {
  const dir = tempDir('distill-images-');
  cpSync(join(repoRoot, 'images'), join(dir, 'images'), { recursive: true });
  return join(dir, 'images');
}

function opts() {
  return { cacheDir: cache, mirrors: { flags: snapshotMirrors(snap!), aptSources: [] }, allowExpired: true, keyring: systemKeyring };
}

test('the committed locks are exactly what locking the snapshot produces, and relocking changes nothing', { skip }, async () => {
  const images = copyImages();
  const files = await findDefinitions([images]);
  const first = await lockImages(files, opts());
  assert.equal(first.length, 7);
  for (const r of first) {
    const committed = readFileSync(join(repoRoot, 'images', r.lock.image, 'image.lock.json'), 'utf8');
    assert.equal(readFileSync(r.path, 'utf8'), committed, `${r.lock.image}: committed lock differs from a fresh lock`);
    assert.equal(r.changed, false, `${r.lock.image} was rewritten although nothing changed`);
  }
  for (const [name, arches] of Object.entries({ static: ['amd64', 'arm64'], python3: ['amd64', 'arm64'], java: ['amd64', 'arm64'] })) {
    const lock = first.find((r) => r.lock.image === name)!.lock;
    assert.deepEqual(Object.keys(lock.architectures), arches);
  }
});

test('no package appears in two layers of an image chain', { skip }, async () => {
  for (const f of await findDefinitions([join(repoRoot, 'images')])) {
    const chain = await loadLockChain(f);
    for (const arch of Object.keys(chain[chain.length - 1]!.lock.architectures)) {
      const seen = new Map<string, string>();
      for (const li of chain) {
        for (const p of li.lock.architectures[arch]?.packages ?? []) {
          assert.ok(!seen.has(p.name), `${p.name} is in both ${seen.get(p.name)} and ${li.lock.image} (${arch})`);
          seen.set(p.name, li.lock.image);
        }
      }
    }
  }
});

test('every closure equals what apt resolves for the same packages and excludes', { skip: skip || (!(await aptAvailable()) && 'apt-get is not available') }, async () => {
  const work = tempDir('distill-apt-');
  const mirrors = snapshotMirrors(snap!);
  for (const f of await findDefinitions([join(repoRoot, 'images')])) {
    const chain = await loadLockChain(f);
    const top = chain[chain.length - 1]!;
    const requested = [...new Set(chain.flatMap((li) => li.definition.packages))];
    // One apt state per architecture, architectures in parallel (apt reloads 40 MB of cache per call).
    await Promise.all(Object.keys(top.lock.architectures).map(async (arch) => {
      const ours = new Map(chain.flatMap((li) => li.lock.architectures[arch]?.packages ?? []).map((p) => [p.name, `${p.version} ${p.architecture}`]));
      const apt = await aptResolve({
        sources: [
          { url: mirrors['debian']!, suite: 'trixie', components: ['main'] },
          { url: mirrors['debian-security']!, suite: 'trixie-security', components: ['main'] },
        ],
        keyring: systemKeyring,
        arch,
        packages: requested,
        exclude: top.definition.exclude,
        allowExpired: true,
        workDir: join(work, arch),
        reuseLists: true,
      });
      const theirs = new Map([...apt].map(([n, c]) => [n, `${c.version} ${c.arch}`]));
      assert.deepEqual(Object.fromEntries([...ours].sort()), Object.fromEntries([...theirs].sort()), `${top.lock.image} ${arch}`);
    }));
  }
});

test('fetch fills the cache with every locked .deb, verified; a second fetch downloads nothing', { skip }, async () => {
  const files = await findDefinitions([join(repoRoot, 'images', 'python3'), join(repoRoot, 'images', 'static')]);
  const o = { cacheDir: tempDir('distill-cache-'), mirrors: { flags: snapshotMirrors(snap!), aptSources: [] } };
  const first = await fetchImages(files, o);
  assert.ok(first.files > 20);
  assert.equal(first.downloaded, first.files);
  const second = await fetchImages(files, o);
  assert.equal(second.downloaded, 0);
  assert.equal(readdirSync(join(o.cacheDir, 'blobs', 'sha256')).length, first.files);
});

test('a stale lock is refused by fetch and names the command to run', { skip }, async () => {
  const images = copyImages();
  appendFileSync(join(images, 'cc', 'image.yaml'), '# edited\n');
  await assert.rejects(
    fetchImages([join(images, 'python3', 'image.yaml')], { cacheDir: cache, mirrors: { flags: snapshotMirrors(snap!) } }),
    (e: any) => e.code === 'LOCK_STALE' && /cc\/image\.yaml/.test(e.message) && /distill lock/.test(e.hint),
  );
});

test('an expired Release is refused without --allow-expired, and nothing is written', { skip }, async () => {
  const images = copyImages();
  const before = readFileSync(join(images, 'static', 'image.lock.json'), 'utf8');
  writeFileSync(join(images, 'static', 'image.yaml'), readFileSync(join(images, 'static', 'image.yaml'), 'utf8') + '# relock\n');
  await assert.rejects(
    lockImages([join(images, 'static', 'image.yaml')], { ...opts(), allowExpired: false, now: new Date('2026-12-01T00:00:00Z') }),
    (e: any) => e.code === 'RELEASE_EXPIRED' && /--allow-expired/.test(e.hint),
  );
  assert.equal(readFileSync(join(images, 'static', 'image.lock.json'), 'utf8'), before);
});

test('an unknown package suggests close names; nothing is written', { skip }, async () => {
  const images = copyImages();
  const f = join(images, 'python3', 'image.yaml');
  const before = readFileSync(join(images, 'python3', 'image.lock.json'), 'utf8');
  writeFileSync(f, readFileSync(f, 'utf8').replace('python3.13-minimal', 'python3.13-minimall'));
  await assert.rejects(lockImages([f], opts()), (e: any) => e.code === 'PACKAGE_UNKNOWN' && e.message.includes('"python3.13-minimal"'));
  assert.equal(readFileSync(join(images, 'python3', 'image.lock.json'), 'utf8'), before);
});
