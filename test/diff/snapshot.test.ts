// distill diff on the frozen Debian snapshot: the committed locks against copies edited back to the
// openssl the trixie main archive still indexes (3.5.7-1~deb13u2; the security archive has
// 3.5.7-1~deb13u3, whose .deb is the one present). The diff must name exactly the CVEs of the
// deb13u3 changelog entry — taken independently with dpkg-deb and zcat — and none of deb13u2's.
// Also on real packages: libgcc-s1, whose doc dir is a symlink to gcc-14-base's; busybox-static's
// binNMU changelog (changelog.Debian.amd64.gz); an OCI layout read through its provenance; and
// `distill lock --check` printing the same summary.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diffImages, type DiffResult } from '../../src/diff/diff.js';
import { parseDeb822 } from '../../src/debian/deb822.js';
import { serializeLock, type Lockfile } from '../../src/lock/lockfile.js';
import { main } from '../../src/cli/main.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors, systemKeyring } from '../helpers/paths.js';

const snap = snapshotDir();
const skip = snap === undefined ? NO_SNAPSHOT : false;
const work = mkdtempSync(join(tmpdir(), 'distill-diff-snap-'));
after(() => rmSync(work, { recursive: true, force: true }));
const cache = join(work, 'cache');
const OLD_SSL = '3.5.7-1~deb13u2';
const NEW_SSL = '3.5.7-1~deb13u3';

async function cli(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: { HOME: work } });
  return { code, stdout, stderr };
}
const mirrorArgs = (): string[] => Object.entries(snapshotMirrors(snap!)).flatMap(([k, v]) => ['--mirror', `${k}=${v}`]);
const opts = () => ({ cacheDir: cache, mirrors: { flags: snapshotMirrors(snap!), aptSources: [] } });

/** The main archive's amd64 index entry for a package at a version. */
function indexed(name: string, version: string): Record<string, string> {
  const text = spawnSync('xz', ['-dc', join(snap!, 'debian', 'dists', 'trixie', 'main', 'binary-amd64', 'Packages.xz')], { maxBuffer: 1 << 30 }).stdout.toString('utf8');
  const p = parseDeb822(text, 'Packages').find((x) => x.get('Package') === name && x.get('Version') === version);
  assert.ok(p, `${name} ${version} is in the snapshot's trixie main index`);
  return { filename: p.get('Filename')!, size: p.get('Size')!, sha256: p.get('SHA256')! };
}

/** images/ copied, with `edit` applied to one image's lock. */
function editedImages(image: string, edit: (l: Lockfile) => void): string {
  const dir = mkdtempSync(join(work, 'images-'));
  cpSync(join(repoRoot, 'images'), dir, { recursive: true });
  const p = join(dir, image, 'image.lock.json');
  const lock = JSON.parse(readFileSync(p, 'utf8')) as Lockfile;
  edit(lock);
  writeFileSync(p, serializeLock(lock));
  return dir;
}

function olderOpenssl(l: Lockfile): void {
  for (const p of l.architectures['amd64']!.packages) {
    if (p.name !== 'openssl' && p.name !== 'libssl3t64') continue;
    const i = indexed(p.name, OLD_SSL);
    Object.assign(p, { version: OLD_SSL, sourceVersion: OLD_SSL, archive: 'debian', filename: i.filename, size: Number(i.size), sha256: i.sha256 });
  }
}

/** The CVEs of the newest entry of the .deb's changelog, read with Debian's own tools. */
function cvesOfTopEntry(deb: string, pkg: string): string[] {
  const tar = spawnSync('dpkg-deb', ['--fsys-tarfile', deb], { maxBuffer: 1 << 30 });
  const gz = spawnSync('tar', ['-xOf', '-', `./usr/share/doc/${pkg}/changelog.Debian.gz`], { input: tar.stdout, maxBuffer: 1 << 30 });
  const text = spawnSync('zcat', [], { input: gz.stdout }).stdout.toString('utf8');
  const top = text.split(/\n(?=\S)/).filter((l) => /^\S+ \(/.test(l))[0]!;
  return [...new Set(top.match(/CVE-\d{4}-\d+/g) ?? [])].sort((a, b) => (a < b ? -1 : 1));
}

let result: DiffResult;

test('an older openssl in the base lock: the upgrade names exactly the CVEs of the intervening deb13u3 entry', { skip }, async () => {
  const old = editedImages('base', olderOpenssl);
  result = await diffImages(old, join(repoRoot, 'images'), opts());
  const base = result.images.find((i) => i.image === 'base')!;
  const amd64 = base.architectures.find((a) => a.arch === 'amd64')!;
  assert.deepEqual(amd64.upgraded.map((u) => `${u.name} ${u.oldVersion} ${u.newVersion} ${u.source}`), [`libssl3t64 ${OLD_SSL} ${NEW_SSL} openssl`, `openssl ${OLD_SSL} ${NEW_SSL} openssl`]);
  assert.deepEqual([amd64.added, amd64.removed, amd64.downgraded], [[], [], []]);
  assert.equal(base.architectures.find((a) => a.arch === 'arm64')!.upgraded.length, 0);
  const deb = join(snap!, 'debian-security', 'pool', 'updates', 'main', 'o', 'openssl', `libssl3t64_${NEW_SSL}_amd64.deb`);
  const expected = existsSync('/usr/bin/dpkg-deb') ? cvesOfTopEntry(deb, 'libssl3t64') : undefined;
  for (const u of amd64.upgraded) {
    assert.equal(u.changelog!.status, 'ok', u.changelog!.warnings.join('\n'));
    assert.deepEqual(u.changelog!.entries.map((e) => e.version), [NEW_SSL]);
    assert.deepEqual(u.changelog!.entries[0]!.distributions, ['trixie-security']);
    assert.ok(u.changelog!.cves.length >= 10);
    if (expected) assert.deepEqual([...u.changelog!.cves].sort((a, b) => (a < b ? -1 : 1)), expected);
    // deb13u2's own entry is what the image already had.
    assert.ok(!u.changelog!.cves.includes('CVE-2026-18798'));
  }
  assert.deepEqual(amd64.cves, amd64.upgraded[0]!.changelog!.cves);
  // Every image built on base gets the same upgrade through its lock chain; the others are unchanged.
  for (const name of ['cc', 'java', 'nodejs', 'python3']) {
    const img = result.images.find((i) => i.image === name)!;
    assert.equal(img.status, 'changed', name);
    assert.deepEqual(img.architectures.find((a) => a.arch === 'amd64')!.cves, amd64.cves, name);
  }
  for (const name of ['base-nossl', 'static']) assert.equal(result.images.find((i) => i.image === name)!.status, 'unchanged', name);
  assert.equal(result.summary.cves.length, amd64.cves.length);
  // The edited base lock no longer has the digest the images on it recorded: said, not fatal.
  for (const w of result.warnings) assert.match(w, /the lock of its base image base changed since it was locked/);
});

test('libgcc-s1 (doc dir -> gcc-14-base) and busybox-static (binNMU changelog, debug layer) on real .debs', { skip }, async () => {
  const gcc = editedImages('base-nossl', (l) => {
    for (const p of l.architectures['amd64']!.packages) if (p.name === 'libgcc-s1') p.version = p.sourceVersion = '14.2.0-18';
  });
  const g = await diffImages(join(gcc, 'base-nossl'), join(repoRoot, 'images', 'base-nossl'), opts());
  const u = g.images[0]!.architectures.find((a) => a.arch === 'amd64')!.upgraded;
  assert.deepEqual(u.map((x) => x.name), ['libgcc-s1']);
  assert.deepEqual(u[0]!.changelog!.files, ['gcc-14-base:usr/share/doc/gcc-14-base/changelog.Debian.gz']);
  assert.deepEqual(u[0]!.changelog!.entries.map((e) => e.version), ['14.2.0-19']);

  const bb = editedImages('static', (l) => {
    for (const p of l.architectures['amd64']!.debug!) if (p.name === 'busybox-static') p.version = '1:1.37.0-6+b8';
  });
  const b = await diffImages(join(bb, 'static'), join(repoRoot, 'images', 'static'), opts());
  const up = b.images[0]!.architectures.find((a) => a.arch === 'amd64')!.upgraded;
  assert.deepEqual(up.map((x) => `${x.name} ${x.oldVersion} ${x.newVersion} ${x.debugOnly}`), ['busybox-static 1:1.37.0-6+b8 1:1.37.0-6+b9 true']);
  assert.deepEqual(up[0]!.changelog!.entries.map((e) => e.version), ['1:1.37.0-6+b9']);
  assert.match(up[0]!.changelog!.entries[0]!.changes, /Binary-only non-maintainer upload for amd64/);
});

test('an OCI layout is read through its provenance', { skip }, async () => {
  const out = join(work, 'layout');
  const b = await cli(['build', join(repoRoot, 'images', 'static'), '--out', out, '--platform', 'amd64', '--cache', cache, ...mirrorArgs()]);
  assert.equal(b.code, 0, b.stderr);
  const bb = editedImages('static', (l) => {
    for (const p of l.architectures['amd64']!.debug!) if (p.name === 'busybox-static') p.version = '1:1.37.0-6+b8';
  });
  const r = await cli(['diff', join(bb, 'static'), out, '--json', '--cache', cache, ...mirrorArgs()]);
  assert.equal(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout) as DiffResult;
  assert.deepEqual(d.images[0]!.architectures.map((a) => a.arch), ['amd64', 'arm64']);
  // The layout was built for amd64 only: its provenance says so, and arm64 is all "removed".
  assert.deepEqual(d.images[0]!.architectures[0]!.upgraded.map((u) => u.name), ['busybox-static']);
  assert.ok(d.images[0]!.architectures[1]!.removed.length > 0);
  assert.equal(d.images[0]!.architectures[1]!.added.length, 0);
});

test('distill lock --check prints what a relock would change, with the CVEs', { skip: skip || (!existsSync(systemKeyring) && `${systemKeyring} is missing`) }, async () => {
  const old = editedImages('base', olderOpenssl);
  const r = await cli(['lock', join(old, 'base'), '--check', '--allow-expired', '--keyring', systemKeyring, '--cache', cache, ...mirrorArgs()]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /would change \[LOCK_STALE\]/);
  assert.match(r.stdout, new RegExp(`upgraded   libssl3t64 ${OLD_SSL.replace(/[~.]/g, '\\$&')} → ${NEW_SSL.replace(/[~.]/g, '\\$&')} \\(openssl\\): \\d+ CVEs`));
  assert.match(r.stdout, /summary: 2 upgraded, 0 added, 0 removed, 0 downgraded; the upgrades' changelogs name \d+ CVEs/);
  const j = await cli(['lock', join(old, 'base'), '--check', '--json', '--allow-expired', '--keyring', systemKeyring, '--cache', cache, ...mirrorArgs()]);
  assert.equal(j.code, 1);
  const parsed = JSON.parse(j.stdout) as { diff: DiffResult };
  assert.equal(parsed.diff.summary.upgraded, 2);
  assert.deepEqual(parsed.diff.summary.cves, result?.summary.cves ?? parsed.diff.summary.cves);
  // Nothing was written.
  assert.equal(JSON.parse(readFileSync(join(old, 'base', 'image.lock.json'), 'utf8')).architectures.amd64.packages.find((p: { name: string }) => p.name === 'openssl').version, OLD_SSL);
});
