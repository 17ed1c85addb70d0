import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxApplets } from '../../../src/rootfs/generate/busybox.js';
import { BUSYBOX_OWNER, busyboxEntries } from '../../../src/rootfs/generate/busybox.js';
import { assembleDebugLayer } from '../../../src/build/assemble.js';
import { CRAFTED_APPLETS, CRAFTED_BUSYBOX, lockCrafted, stageCrafted, staging, syntheticImage } from '../../helpers/stage-debs.js';
import { NO_SNAPSHOT, snapshotDir } from '../../helpers/paths.js';
import { tempDir } from '../../helpers/tmp.js';

const snap = snapshotDir();
const haveDpkg = spawnSync('dpkg-deb', ['--version']).status === 0;

function extract(arch: string): Buffer {
  const dir = join(snap!, 'debian', 'pool', 'main', 'b', 'busybox');
  const deb = readdirSync(dir).find((f) => f.startsWith('busybox-static_') && f.endsWith(`_${arch}.deb`))!;
  const out = tempDir('distill-bb-');
  execFileSync('dpkg-deb', ['-x', join(dir, deb), out]);
  return readFileSync(join(out, 'usr', 'bin', 'busybox'));
}

test('the applet table read from the binary equals `busybox --list`, on both architectures', { skip: snap === undefined ? NO_SNAPSHOT : !haveDpkg && 'dpkg-deb is not installed' }, () => {
  const amd64 = extract('amd64');
  const fromBinary = busyboxApplets(amd64, 'busybox');
  const dir = tempDir('distill-bb-run-');
  const bin = join(dir, 'busybox');
  writeFileSync(bin, amd64, { mode: 0o755 });
  const listed = execFileSync(bin, ['--list'], { encoding: 'utf8' }).trim().split('\n').filter((n) => n !== 'busybox');
  assert.deepEqual(fromBinary, listed);
  assert.ok(fromBinary.includes('sh') && fromBinary.includes('ls') && fromBinary.length > 200);
  assert.deepEqual(busyboxApplets(extract('arm64'), 'busybox arm64'), fromBinary);
});

test('a binary without an applet table is refused', () => {
  assert.throws(() => busyboxApplets(Buffer.from('\x7fELF not busybox [\0[[\0 nope'), 'x'), (e: any) => e.code === 'GENERATE_FAILED');
});

test('generator: /busybox, the binary and one link per applet of its own table', () => {
  const binary = Buffer.from('\x7fELF..[\0[[\0ash\0busybox\0sh\0\0');
  const entries = busyboxEntries(binary, 'bb', 1_750_000_000);
  assert.deepEqual(entries.map((e) => `${e.type} ${e.path} ${e.mode.toString(8)} ${e.linkTarget ?? ''}`), [
    'dir busybox 755 ',
    'file busybox/busybox 755 ',
    'symlink busybox/[ 777 busybox',
    'symlink busybox/[[ 777 busybox',
    'symlink busybox/ash 777 busybox',
    'symlink busybox/sh 777 busybox',
  ]);
  assert.ok(entries.every((e) => e.owner === BUSYBOX_OWNER && e.mtime === 1_750_000_000 && e.uid === 0 && e.gid === 0));
});

test('debug layer from a crafted busybox-static .deb: BusyBox at /busybox, its copyright and status.d, nothing else', async () => {
  const s = staging();
  const staged = await stageCrafted(s, [CRAFTED_BUSYBOX]);
  // The binary is kept aside for the generator (under its merged-/usr path).
  assert.deepEqual([...staged[0]!.wanted.keys()], ['usr/bin/busybox']);
  const pkg = await lockCrafted(s, CRAFTED_BUSYBOX);
  const owner = syntheticImage({ name: 'static', debug: [pkg] });
  const tree = await assembleDebugLayer(owner, [pkg], staged, new Map(), 1_750_000_000);
  const byPath = (a: string, b: string): number => Buffer.compare(Buffer.from(a.split(' ')[1]!), Buffer.from(b.split(' ')[1]!));
  assert.deepEqual(tree.sorted().map((e) => `${e.type} ${e.path}`), [
    'dir busybox',
    'file busybox/busybox',
    ...CRAFTED_APPLETS.filter((a) => a !== 'busybox').map((a) => `symlink busybox/${a}`),
    'dir usr',
    'dir usr/share',
    'dir usr/share/doc',
    'dir usr/share/doc/busybox-static',
    'file usr/share/doc/busybox-static/copyright',
    'dir var',
    'dir var/lib',
    'dir var/lib/dpkg',
    'dir var/lib/dpkg/status.d',
    'file var/lib/dpkg/status.d/busybox-static',
    'file var/lib/dpkg/status.d/busybox-static.md5sums',
  ].sort(byPath));
  // md5sums lists only what the image ships: the copyright (the binary moved to /busybox, the man page was dropped).
  const md5 = tree.get('var/lib/dpkg/status.d/busybox-static.md5sums')!.body;
  assert.match(md5?.kind === 'bytes' ? md5.data.toString() : '', /^[0-9a-f]{32} {2}usr\/share\/doc\/busybox-static\/copyright\n$/);
  // Without a BusyBox binary among the debug packages: BUILD_FAILED, naming them.
  const other = await stageCrafted(s, [{ name: 'not-busybox', files: { 'bin/busybox': 'x' } }]);
  await assert.rejects(assembleDebugLayer(owner, [pkg], other, new Map(), 0), (e: any) => e.code === 'BUILD_FAILED' && /ship no bin\/busybox/.test(e.message));
});
