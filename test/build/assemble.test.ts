// Layer assembly on crafted .debs (no snapshot): dpkg's conflict rules with the packages' own Replaces,
// hardlinks written after their target, borrowed packages, the definition's own files winning,
// dropped directories pruned — and the tar that writeTree makes of it, read back.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { assembleImageLayer, CertificateSource, Slots, stageAll, writeTree, type AssemblyContext } from '../../src/build/assemble.js';
import type { LockedImage } from '../../src/lock/load.js';
import type { LockedPackage } from '../../src/lock/lockfile.js';
import type { CraftPackage } from '../helpers/craft-deb.js';
import { readTarGz } from '../helpers/make-layer.js';
import { lockCrafted, staging, syntheticImage, type SyntheticImageSpec } from '../helpers/stage-debs.js';
import { tempDir } from '../helpers/tmp.js';

const MTIME = 1_750_000_000;

async function setup(packages: CraftPackage[], spec: Omit<SyntheticImageSpec, 'packages'> = { name: 'img' }, borrowed: CraftPackage[] = []) {
  const s = staging();
  const ctx: AssemblyContext = { store: s.store, stageDir: s.stageDir, slots: new Slots(2) };
  const pkgs: LockedPackage[] = [];
  for (const p of packages) pkgs.push(await lockCrafted(s, p));
  const borrow: LockedPackage[] = [];
  for (const p of borrowed) borrow.push(await lockCrafted(s, p));
  const li: LockedImage = syntheticImage({ ...spec, packages: pkgs });
  const staged = await stageAll(pkgs, ctx, li, borrow);
  const assemble = (lower = new Map()) => assembleImageLayer({ li, arch: 'amd64', staged, lower, mtime: MTIME, isRoot: false, accountsChanged: false, certificates: CertificateSource.forChain([li], 'amd64', ctx) }, ctx);
  return { ctx, li, staged, assemble };
}

async function readTar(gz: Buffer): Promise<{ name: string; type: string; linkname?: string; body: string }[]> {
  return (await readTarGz(gz)).map(({ header: h, body }) => ({ name: h.name, type: h.type ?? 'file', ...(h.linkname ? { linkname: h.linkname } : {}), body: body.toString() }));
}

test('two packages shipping one path: PATH_CONFLICT naming both, unless the later declares Replaces', async () => {
  const a: CraftPackage = { name: 'tool-a', files: { 'usr/bin/tool': 'a\n' } };
  const b: CraftPackage = { name: 'tool-b', files: { 'usr/bin/tool': 'b\n' } };
  await assert.rejects((await setup([a, b])).assemble(), (e: any) => e.code === 'PATH_CONFLICT' && /tool-a/.test(e.message) && /tool-b/.test(e.message));
  const tree = await (await setup([a, { ...b, fields: { Replaces: 'tool-a (<< 2)' } }])).assemble();
  const tool = tree.get('usr/bin/tool')!;
  assert.equal(tool.owner, 'tool-b');
  // The same bytes from two packages are no conflict.
  await (await setup([a, { ...b, files: { 'usr/bin/tool': 'a\n' } }])).assemble();
});

test('hardlinks: the first path in sorted order carries the bytes, the others link to it, in the tar too', async () => {
  const { assemble } = await setup([{ name: 'linky', files: { 'usr/bin/zz': 'same bytes\n' }, hardlinks: { 'usr/bin/aa': 'usr/bin/zz' } }]);
  const tree = await assemble();
  const file = join(tempDir('distill-assemble-'), 'layer.tar.gz');
  const result = await writeTree(tree, file, MTIME, undefined, 'gzip');
  assert.match(result.digest, /^sha256:[0-9a-f]{64}$/);
  const entries = await readTar(readFileSync(file));
  const aa = entries.findIndex((e) => e.name === 'usr/bin/aa');
  const zz = entries.findIndex((e) => e.name === 'usr/bin/zz');
  assert.ok(aa >= 0 && zz > aa);
  assert.deepEqual([entries[aa]!.type, entries[aa]!.body], ['file', 'same bytes\n']);
  assert.deepEqual([entries[zz]!.type, entries[zz]!.linkname], ['link', 'usr/bin/aa']);
  // Sorted, every directory before what it holds.
  const names = entries.map((e) => e.name.replace(/\/$/, ''));
  assert.deepEqual(names, [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
  // The SBOM's view was recorded while writing: the package's status.d is there.
  assert.ok(result.sbomChanges);
});

test('a borrowed package ships only its globs and its copyright, no directories of its own', async () => {
  const libcBin: CraftPackage = { name: 'libc-bin', files: { 'usr/lib/locale/C.utf8/LC_CTYPE': 'ctype', 'usr/bin/ldconfig': 'elf', 'usr/share/doc/libc-bin/copyright': 'LGPL\n' }, directories: { 'etc/ld.so.conf.d': 0o755 } };
  const { assemble } = await setup([{ name: 'app', files: { 'usr/bin/app': 'app' } }], { name: 'img', borrow: [{ package: 'libc-bin', paths: ['/usr/lib/locale/C.utf8/**'] }] }, [libcBin]);
  const tree = await assemble();
  const paths = tree.sorted().map((e) => e.path);
  assert.ok(paths.includes('usr/lib/locale/C.utf8/LC_CTYPE'));
  assert.ok(paths.includes('usr/share/doc/libc-bin/copyright'));
  assert.ok(!paths.includes('usr/bin/ldconfig'));
  assert.ok(!paths.includes('etc/ld.so.conf.d'));
  // Parents made for the borrowed files are distill's, root 0755.
  assert.deepEqual([tree.get('usr/lib/locale')!.owner, tree.get('usr/lib/locale')!.mode], ['distill:img', 0o755]);
});

test('the definition\'s own files win over packages; md5sums then leave the replaced file out; dropped directories are pruned', async () => {
  const pkg: CraftPackage = { name: 'conf', files: { 'etc/conf/app.conf': 'package\n', 'usr/bin/conf': 'elf', 'usr/share/man/man1/conf.1.gz': 'man' } };
  const { assemble } = await setup([pkg], { name: 'img', files: [{ path: '/etc/conf/app.conf', content: 'mine\n', mode: 0o600 }] });
  const tree = await assemble();
  const conf = tree.get('etc/conf/app.conf')!;
  assert.deepEqual([conf.owner, conf.mode, conf.body?.kind === 'bytes' ? conf.body.data.toString() : ''], ['distill:files of img', 0o600, 'mine\n']);
  const md5 = tree.get('var/lib/dpkg/status.d/conf.md5sums')!.body;
  assert.deepEqual((md5?.kind === 'bytes' ? md5.data.toString() : '').split('\n').filter(Boolean).map((l) => l.slice(34)), ['usr/bin/conf']);
  // usr/share/man/man1 held only a dropped file: gone, with its empty parents.
  assert.equal(tree.get('usr/share/man/man1'), undefined);
  assert.equal(tree.get('usr/share/man'), undefined);
});

test('a path already in a lower layer is checked against it: the same file is fine, another one is a conflict', async () => {
  const lowerPkg: CraftPackage = { name: 'low', files: { 'usr/lib/x': 'one' } };
  const low = await (await setup([lowerPkg])).assemble();
  const lower = new Map([...low.values()].map((e) => [e.path, e]));
  await (await setup([{ name: 'up', files: { 'usr/lib/x': 'one', 'usr/lib/y': 'y' } }])).assemble(lower);
  await assert.rejects((await setup([{ name: 'up', files: { 'usr/lib/x': 'two' } }])).assemble(lower), (e: any) => e.code === 'PATH_CONFLICT');
});

test('Slots: never more than n at once; waiting work starts largest first; hold() queues until released', async () => {
  const slots = new Slots(2);
  const started: string[] = [];
  let running = 0;
  let peak = 0;
  const gates = new Map<string, () => void>();
  const job = (name: string, weight: number) =>
    slots.run(async () => {
      started.push(name);
      running++;
      peak = Math.max(peak, running);
      await new Promise<void>((r) => gates.set(name, r));
      running--;
    }, weight);
  const release = slots.hold();
  const all = [job('small', 1), job('huge', 100), job('mid', 10), job('mid-later', 10), job('tiny', 0)];
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, [], 'nothing starts while held');
  release();
  release(); // idempotent
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, ['huge', 'mid']);
  gates.get('huge')!();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, ['huge', 'mid', 'mid-later'], 'equal weights keep their arrival order');
  for (const name of ['mid', 'mid-later', 'small', 'tiny']) {
    await new Promise((r) => setImmediate(r));
    gates.get(name)!();
  }
  await Promise.all(all);
  assert.deepEqual(started, ['huge', 'mid', 'mid-later', 'small', 'tiny']);
  assert.equal(peak, 2);
});

test('Slots: a failing job frees its slot for the next', async () => {
  const slots = new Slots(1);
  await assert.rejects(slots.run(() => Promise.reject(new Error('boom')), 5), /boom/);
  assert.equal(await slots.run(async () => 'next'), 'next');
});
