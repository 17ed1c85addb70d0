// The safety policy for package entries (src/rootfs/sanitize.ts), each rule exercised through readDeb
// with a crafted, hostile .deb, plus normalisePath on its own. Errors are matched by code, not wording.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { readDeb, type ReadDebOptions } from '../../src/rootfs/deb.js';
import { normalisePath, type FsEntry } from '../../src/rootfs/entry.js';
import { EntrySanitizer } from '../../src/rootfs/sanitize.js';
import { craftDeb, dir, file, hardlink, rawEntry, symlink, type TarItem } from '../helpers/craft-deb.js';
import { NO_SNAPSHOT, snapshotDir } from '../helpers/paths.js';

interface Result {
  entries: FsEntry[];
  warnings: string[];
}

async function read(items: TarItem[], opts: ReadDebOptions = {}): Promise<Result> {
  const out: Result = { entries: [], warnings: [] };
  await readDeb(
    Readable.from([await craftDeb({ entries: items })]),
    'hostile_1.0_amd64.deb',
    {
      entry: async (e, body) => {
        out.entries.push(e);
        if (body) for await (const c of body) void c;
      },
    },
    { onWarning: (m) => out.warnings.push(m), ...opts },
  );
  return out;
}

/** Rejects with UNSAFE_ENTRY, naming the package (and the path, when given). */
async function refused(items: TarItem[], path?: string, opts: ReadDebOptions = {}): Promise<void> {
  await assert.rejects(read(items, opts), (e: any) => {
    assert.equal(e.code, 'UNSAFE_ENTRY', e.message);
    assert.ok(e.message.includes('hostile_1.0_amd64.deb'), e.message);
    if (path !== undefined) assert.ok(e.message.includes(path), `${e.message} should name ${path}`);
    return true;
  });
}

const raw = (f: Parameters<typeof rawEntry>[0], body?: string): TarItem => ({ raw: rawEntry(f, body) });

test('normalisePath', () => {
  assert.equal(normalisePath('./usr/bin/python3'), 'usr/bin/python3');
  assert.equal(normalisePath('usr//bin/./python3/'), 'usr/bin/python3');
  assert.equal(normalisePath('/etc/passwd'), 'etc/passwd');
  assert.equal(normalisePath('.'), undefined);
  assert.equal(normalisePath('./'), undefined);
  assert.equal(normalisePath(''), undefined);
  assert.equal(normalisePath('usr/../etc'), undefined);
  assert.equal(normalisePath('..'), undefined);
  assert.equal(normalisePath('a\0b'), undefined);
  assert.equal(normalisePath('usr/..hidden/...'), 'usr/..hidden/...');
});

test('paths with .. components, NUL, control characters or invalid UTF-8 are refused', async () => {
  await refused([dir('./'), file('./usr/../../etc/passwd', 'x')], '../../etc/passwd');
  await refused([file('../escape', 'x')], '../escape');
  await refused([dir('./usr/lib/../../..')], 'usr/lib/../../..');
  // NUL can only arrive through a pax path (ustar names are NUL-terminated).
  await refused([{ header: { name: './usr/bin/a\0b', pax: { path: './usr/bin/a\0b' } }, body: 'x' }]);
  await refused([file('./usr/bin/new\nline', 'x')]);
  // A lone latin-1 byte where UTF-8 needs two.
  const nonUtf8 = rawEntry({ name: Buffer.concat([Buffer.from('./usr/caf'), Buffer.from([0xe9])]), typeflag: '0' }, 'x');
  await refused([{ raw: nonUtf8 }]);
});

test('absolute paths are refused, after dropping one leading ./', async () => {
  await refused([file('/etc/passwd', 'x')], '/etc/passwd');
  await refused([raw({ name: './/etc/shadow', typeflag: '0' }, 'x')], './/etc/shadow');
  await refused([dir('./'), hardlink('./usr/x', '/etc/passwd')]);
  // Names without './' are fine, and '.' components are normalised away.
  const r = await read([file('usr/plain', 'a'), file('./usr/./dotted//name', 'b')]);
  assert.deepEqual(r.entries.map((e) => e.path), ['usr/plain', 'usr/dotted/name']);
});

test('the root entry is skipped silently; a non-directory root is refused', async () => {
  const r = await read([dir('./'), dir('.'), dir('./usr/'), file('./usr/f', 'x')]);
  assert.deepEqual(r.entries.map((e) => e.path), ['usr', 'usr/f']);
  assert.deepEqual(r.warnings, []);
  await refused([raw({ name: './', typeflag: '0' }, 'x')]);
  await refused([symlink('.', '/etc')]);
});

test('symlinks: absolute targets are kept as stored; relative targets may not climb above the root', async () => {
  const r = await read([
    dir('./usr/'),
    dir('./usr/lib/'),
    symlink('./usr/bin/awk', '/etc/alternatives/awk'),
    symlink('./usr/lib/up', '../../etc/os-release'),
    symlink('./usr/lib/dots', './x/.././y//z'),
    symlink('./top', 'usr/lib'),
  ]);
  assert.deepEqual(
    r.entries.map((e) => [e.path, e.linkTarget]),
    [
      ['usr', undefined],
      ['usr/lib', undefined],
      ['usr/bin/awk', '/etc/alternatives/awk'],
      ['usr/lib/up', '../../etc/os-release'],
      ['usr/lib/dots', './x/.././y//z'],
      ['top', 'usr/lib'],
    ],
  );
  await refused([symlink('./usr/a', '../../../etc/shadow')], 'usr/a');
  await refused([symlink('./top', '..')], 'top');
  await refused([symlink('./usr/lib/x', 'a/../../../..')], 'usr/lib/x');
  await refused([symlink('./usr/x', '')]);
});

test('hardlinks must name a regular file seen earlier in the same package, inside the root', async () => {
  const r = await read([file('./usr/bin/a', 'body', 0o4755), hardlink('./usr/bin/b', './usr/bin/a', 0o4755)], { allowSetid: (p) => p === 'usr/bin/a' });
  assert.deepEqual(r.entries.map((e) => [e.path, e.type, e.linkTarget, e.mode, e.size]), [
    ['usr/bin/a', 'file', undefined, 0o4755, 4],
    ['usr/bin/b', 'hardlink', 'usr/bin/a', 0o4755, 0], // the same inode: the target's mode
  ]);
  await refused([hardlink('./usr/bin/b', './usr/bin/a')], 'usr/bin/b'); // target never seen
  await refused([hardlink('./usr/bin/b', './usr/bin/a'), file('./usr/bin/a', 'later')], 'usr/bin/b'); // target later
  await refused([dir('./usr/'), hardlink('./usr/b', './usr')], 'usr/b'); // a directory
  await refused([file('./a', 'x'), symlink('./s', 'a'), hardlink('./b', './s')], './b'); // a symlink
  await refused([file('./a', 'x'), hardlink('./b', '../a')], './b'); // outside the root
  await refused([file('./a', 'x'), hardlink('./b', './x/../a')], './b');
  // Replacing a file a hardlink already points at would leave the link's meaning ambiguous.
  await refused([file('./a', 'x'), hardlink('./b', './a'), file('./a', 'y')], './a');
});

test('device nodes, fifos, contiguous files and unknown types are refused', async () => {
  await refused([{ header: { name: './dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 } }], 'dev/null');
  await refused([{ header: { name: './dev/sda', type: 'block-device', devmajor: 8, devminor: 0 } }], 'dev/sda');
  await refused([{ header: { name: './run/fifo', type: 'fifo' } }], 'run/fifo');
  await refused([raw({ name: './contig', typeflag: '7' }, 'x')], 'contig');
  await refused([raw({ name: './sparse', typeflag: 'S' }, 'x')], 'sparse');
  await refused([raw({ name: './dumpdir', typeflag: 'D' })], 'dumpdir');
});

test('setuid/setgid bits are stripped with a warning unless allowSetid says yes; directories keep theirs', async () => {
  const items = [file('./usr/bin/su', 'su', 0o4755), file('./usr/sbin/unix_chkpwd', 'c', 0o2755), dir('./var/mail/', 0o2775), file('./plain', 'p', 0o755)];
  const r = await read(items);
  assert.deepEqual(r.entries.map((e) => [e.path, e.mode]), [
    ['usr/bin/su', 0o755],
    ['usr/sbin/unix_chkpwd', 0o755],
    ['var/mail', 0o2775],
    ['plain', 0o755],
  ]);
  assert.equal(r.warnings.length, 2);
  assert.match(r.warnings[0]!, /usr\/bin\/su.*setuid/);
  assert.match(r.warnings[1]!, /unix_chkpwd.*setgid/);
  const allowed = await read(items, { allowSetid: (p) => p === 'usr/bin/su' });
  assert.deepEqual(allowed.entries.map((e) => e.mode), [0o4755, 0o755, 0o2775, 0o755]);
  assert.equal(allowed.warnings.length, 1);
});

test('util-linux from the snapshot: su loses its setuid bit by default', { skip: snapshotDir() === undefined ? NO_SNAPSHOT : false }, async (t) => {
  const path = join(snapshotDir()!, 'debian/pool/main/u/util-linux/util-linux_2.41.5-0+deb13u1_amd64.deb');
  if (!existsSync(path)) return t.skip('util-linux is not in the snapshot');
  const modes = new Map<string, number>();
  const warnings: string[] = [];
  await readDeb(createReadStream(path), 'util-linux', { entry: async (e) => void modes.set(e.path, e.mode) }, { onWarning: (m) => warnings.push(m) });
  assert.equal(modes.get('usr/bin/su'), 0o755);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /usr\/bin\/su/);
});

test('world-writable files and non-sticky world-writable directories are kept, with a warning', async () => {
  const r = await read([dir('./tmp/', 0o1777), dir('./var/open/', 0o777), file('./etc/open.conf', 'x', 0o666), symlink('./l', 'x')]);
  assert.deepEqual(r.entries.map((e) => e.mode), [0o1777, 0o777, 0o666, 0o777]);
  assert.equal(r.warnings.length, 2);
  assert.match(r.warnings[0]!, /var\/open.*sticky/);
  assert.match(r.warnings[1]!, /etc\/open\.conf.*world-writable/);
});

test('sizes over the limits are refused before any data is read', async () => {
  await refused([file('./big', 'x'.repeat(1001))], 'big', { maxEntrySize: 1000 });
  await refused([file('./a', 'x'.repeat(600)), file('./b', 'x'.repeat(600))], 'b', { maxTotalSize: 1000 });
  assert.equal((await read([file('./a', 'x'.repeat(1000))], { maxEntrySize: 1000, maxTotalSize: 1000 })).entries.length, 1);
  // A header claiming 3 GiB (the default limit is 2 GiB), with no data behind it: refused at the header.
  let handed = 0;
  await assert.rejects(
    readDeb(Readable.from([await craftDeb({ entries: [raw({ name: './huge', typeflag: '0', size: 3 * 1024 ** 3 })] })]), 'hostile.deb', { entry: async () => void handed++ }),
    (e: any) => e.code === 'UNSAFE_ENTRY' && /absurd size/.test(e.message),
  );
  assert.equal(handed, 0);
  // Only regular files carry data: a symlink or directory with a size is refused.
  await refused([raw({ name: './s', typeflag: '2', linkname: 'x' }, 'hidden data')], './s');
  await refused([raw({ name: './d/', typeflag: '5', size: 512 }), raw({ name: './f', typeflag: '0' }, '')], './d/');
});

test('duplicates: the later entry wins when the type is the same; a different type is refused', async () => {
  const r = await read([file('./etc/a', 'first'), dir('./usr/'), file('./etc/a', 'second'), dir('./usr/')]);
  assert.deepEqual(r.entries.map((e) => [e.path, e.size]), [
    ['etc/a', 5],
    ['usr', 0],
    ['etc/a', 6],
    ['usr', 0],
  ]);
  assert.equal(r.warnings.length, 2);
  await refused([file('./etc/a', 'x'), symlink('./etc/a', '/etc/b')], 'etc/a');
  await refused([dir('./etc/a/'), file('./etc/a', 'x')], 'etc/a');
  // A directory implied by a deeper path counts too.
  await refused([file('./etc/a/b', 'x'), file('./etc/a', 'x')], 'etc/a');
  assert.equal((await read([file('./etc/a/b', 'x'), dir('./etc/a/')])).entries.length, 2);
});

test('nothing may sit under a file or symlink of the same package', async () => {
  await refused([symlink('./usr/lib', '/etc'), file('./usr/lib/shadow', 'x')], 'usr/lib/shadow');
  await refused([file('./usr/f', 'x'), file('./usr/f/g', 'y')], 'usr/f/g');
});

test('directory entries: trailing / dropped, mode kept, size 0', async () => {
  const r = await read([dir('./usr/share/', 0o750)]);
  assert.deepEqual(r.entries, [{ path: 'usr/share', type: 'dir', mode: 0o750, uid: 0, gid: 0, uname: 'root', gname: 'root', size: 0, mtime: 1748779200 }]);
});

test('EntrySanitizer on its own: file-type bits in the mode are dropped, paths of Linux-impossible length refused', () => {
  const s = new EntrySanitizer('unit.deb');
  const base = { uid: 0, gid: 0, uname: '', gname: '', size: 0, mtime: 0 };
  assert.equal(s.sanitize({ ...base, name: './f', type: 'file', mode: 0o100644 })!.mode, 0o644);
  assert.equal(s.sanitize({ ...base, name: './', type: 'dir', mode: 0o40755 }), undefined);
  assert.throws(() => s.sanitize({ ...base, name: './' + 'n'.repeat(256), type: 'file', mode: 0o644 }), (e: any) => e.code === 'UNSAFE_ENTRY');
  assert.throws(() => s.sanitize({ ...base, name: './' + 'd/'.repeat(2100), type: 'dir', mode: 0o755 }), (e: any) => e.code === 'UNSAFE_ENTRY');
  assert.throws(() => s.sanitize({ ...base, name: '', type: 'dir', mode: 0o755 }), (e: any) => e.code === 'UNSAFE_ENTRY');
  assert.throws(() => s.sanitize({ ...base, name: './sock', type: 'socket', mode: 0o755 }), (e: any) => e.code === 'UNSAFE_ENTRY');
});
