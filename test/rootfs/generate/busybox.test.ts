import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxApplets } from '../../../src/rootfs/generate/busybox.js';
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
