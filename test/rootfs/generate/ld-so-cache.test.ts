// ld.so.cache against the real ldconfig: trixie's own (static) ldconfig from the snapshot's libc-bin
// .deb, run with -r on a root assembled from snapshot libraries, must write exactly the bytes we write.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  debianLdconfigGenerator,
  dlCacheLibcmp,
  elfLibraryInfo,
  LDCONFIG_FLAGS,
  ldSoCache,
  libraryDirectoryEntries,
  type LdCacheEntry,
  type LibraryDirEntry,
} from '../../../src/rootfs/generate/ld-so-cache.js';
import { NO_SNAPSHOT } from '../../helpers/paths.js';
import { extractDeb, hasTool, run, snapshotDeb, tempDir } from './helpers.js';

const failed = (e: unknown) => (e as { code?: string }).code === 'GENERATE_FAILED';
const LIBS = ['libc6', 'libgcc-s1', 'zlib1g', 'libbz2-1.0', 'libexpat1', 'libtinfo6', 'libncursesw6', 'libffi8', 'liblzma5'];

/** A directory of the assembled root as search_dir sees it (files, and symlinks to files). */
function listing(dir: string): LibraryDirEntry[] {
  const out: LibraryDirEntry[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const l = lstatSync(p);
    if (l.isFile()) out.push({ name, kind: 'file', read: () => readFileSync(p) });
    else if (l.isSymbolicLink()) {
      let target: string;
      try {
        target = realpathSync(p);
      } catch {
        continue; // dangling
      }
      if (statSync(target).isFile()) out.push({ name, kind: 'symlink', read: () => readFileSync(target) });
    }
  }
  return out;
}

test('byte-identical to trixie\'s ldconfig -r on snapshot libraries (merged /usr, two directories)', (t) => {
  const libcBin = snapshotDeb('libc-bin', 'amd64');
  if (!libcBin) return t.skip(NO_SNAPSHOT);
  if (process.platform !== 'linux' || process.arch !== 'x64') return t.skip('runs the snapshot\'s x86-64 ldconfig');
  if (!hasTool('dpkg-deb')) return t.skip('dpkg-deb is not installed on this machine');
  const { dir, cleanup } = tempDir('ldconfig');
  try {
    const root = join(dir, 'root');
    const tools = join(dir, 'libc-bin');
    extractDeb(libcBin, tools);
    for (const pkg of LIBS) extractDeb(snapshotDeb(pkg, 'amd64')!, root);
    copyFileSync(join(tools, 'etc/ld.so.conf'), join(root, 'etc/ld.so.conf'));
    symlinkSync('usr/lib', join(root, 'lib')); // merged /usr
    symlinkSync('usr/lib64', join(root, 'lib64'));
    const multiarch = join(root, 'usr/lib/x86_64-linux-gnu');
    // Cases for search_dir's rules: the ld(1) link counts under its own name; a link named neither
    // the soname nor its .so prefix counts as a plain file; non-ELF files, directories and dangling
    // links do not count; a library also in an earlier directory (/usr/local first in the conf).
    const z = readdirSync(multiarch).find((n) => /^libz\.so\.1\.\d/.test(n))!;
    symlinkSync(z, join(multiarch, 'libz.so'));
    symlinkSync(z, join(multiarch, 'libzee.so.7'));
    writeFileSync(join(multiarch, 'libscript.so'), 'INPUT(libz.so.1)\n');
    mkdirSync(join(multiarch, 'libdir.so.1'));
    symlinkSync('nowhere', join(multiarch, 'libgone.so.1'));
    writeFileSync(join(multiarch, 'notalib.so.1'), readFileSync(join(multiarch, z)));
    const local = join(root, 'usr/local/lib/x86_64-linux-gnu');
    mkdirSync(local, { recursive: true });
    copyFileSync(join(multiarch, z), join(local, 'libz.so.1'));

    const r = spawnSync(join(tools, 'usr/sbin/ldconfig'), ['-r', root, '-X'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const expected = readFileSync(join(root, 'etc/ld.so.cache'));

    const version = run('dpkg-deb', ['-f', libcBin, 'Version']).stdout.trim();
    // ldconfig's directory order: the conf's (/usr/local/lib/…, /lib/…, /usr/lib/… — the same
    // directory as /lib/… on merged /usr, so only the first name counts).
    const entries: LdCacheEntry[] = [
      ...libraryDirectoryEntries('/usr/local/lib/x86_64-linux-gnu', listing(local)),
      ...libraryDirectoryEntries('/lib/x86_64-linux-gnu', listing(multiarch)),
    ];
    const sonames = entries.map((e) => e.soname);
    assert.ok(sonames.includes('libz.so') && !sonames.includes('libzee.so.7') && !sonames.includes('libscript.so') && !sonames.includes('notalib.so.1'));
    assert.equal(sonames.filter((s) => s === 'libz.so.1').length, 2);
    // Input order does not matter, except between equal keys: the two libz.so.1 keep directory order.
    const generator = debianLdconfigGenerator(version);
    const tie = entries.filter((e) => e.soname === 'libz.so.1');
    const got = ldSoCache([...entries.filter((e) => e.soname !== 'libz.so.1').reverse(), ...tie], { generator });
    assert.ok(!ldSoCache([...entries.filter((e) => e.soname !== 'libz.so.1'), ...tie.reverse()], { generator }).equals(expected));
    assert.equal(got.length, expected.length);
    assert.ok(got.equals(expected), 'the cache differs from ldconfig\'s');
  } finally {
    cleanup();
  }
});

test('_dl_cache_libcmp: digit runs compare as numbers, digits after other bytes', () => {
  const lt = (a: string, b: string) => {
    assert.ok(dlCacheLibcmp(a, b) < 0, `${a} < ${b}`);
    assert.ok(dlCacheLibcmp(b, a) > 0, `${b} > ${a}`);
  };
  lt('libfoo.so.9', 'libfoo.so.10');
  lt('libfoo.so.1', 'libfoo.so.1.2');
  lt('libfoo.so', 'libfoo.so.1');
  lt('libA.so', 'liba.so');
  lt('libx.so', 'lib1.so'); // a digit sorts after any other byte
  lt('libc.so.6', 'libcrypto.so.3');
  assert.equal(dlCacheLibcmp('libz.so.01', 'libz.so.1'), 0);
  assert.equal(dlCacheLibcmp('libc.so.6', 'libc.so.6'), 0);
});

test('layout: header, sorted entries, shared suffixes, extension, both byte orders; refusals', () => {
  const entries: LdCacheEntry[] = [
    { soname: 'libc.so.6', path: '/lib/x86_64-linux-gnu/libc.so.6', flags: LDCONFIG_FLAGS.amd64 },
    { soname: 'libz.so.1', path: '/lib/x86_64-linux-gnu/libz.so.1', flags: LDCONFIG_FLAGS.amd64 },
  ];
  for (const endianness of ['little', 'big'] as const) {
    const b = ldSoCache(entries, { generator: 'test', endianness });
    const u32 = (o: number) => (endianness === 'little' ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const str = (o: number) => b.subarray(o, b.indexOf(0, o)).toString('latin1');
    assert.equal(b.subarray(0, 20).toString('latin1'), 'glibc-ld.so.cache1.1');
    assert.equal(u32(20), 2);
    assert.equal(b[28], endianness === 'little' ? 2 : 3);
    assert.deepEqual([str(u32(48 + 4)), str(u32(48 + 8)), str(u32(72 + 4)), str(u32(72 + 8))], ['libz.so.1', '/lib/x86_64-linux-gnu/libz.so.1', 'libc.so.6', '/lib/x86_64-linux-gnu/libc.so.6']);
    // Each soname is the tail of its path: the table holds only the two paths.
    assert.equal(u32(24), '/lib/x86_64-linux-gnu/libz.so.1'.length + 1 + '/lib/x86_64-linux-gnu/libc.so.6'.length + 1);
    const ext = u32(32);
    assert.equal(ext % 4, 0);
    assert.deepEqual([u32(ext), u32(ext + 4), u32(ext + 8), u32(ext + 12), u32(ext + 16), u32(ext + 20)], [0xeaa42174, 1, 0, 0, ext + 24, 4]);
    assert.equal(b.subarray(ext + 24).toString('latin1'), 'test');
  }
  assert.equal(debianLdconfigGenerator('2.41-12+deb13u4'), 'ldconfig (Debian GLIBC 2.41-12+deb13u4) stable release version 2.41');
  assert.throws(() => ldSoCache([{ soname: 'libé.so', path: '/lib/libé.so', flags: 0x303 }], { generator: 'x' }), failed);
  assert.throws(() => ldSoCache([{ soname: 'libx.so', path: 'lib/libx.so', flags: 0x303 }], { generator: 'x' }), failed);
  assert.throws(() => debianLdconfigGenerator('garbage'), failed);
});

test('ELF reading: the host\'s own libc, and bytes that are not a library', (t) => {
  assert.equal(elfLibraryInfo(Buffer.from('INPUT(libc.so.6)\n')), undefined);
  assert.equal(elfLibraryInfo(Buffer.alloc(0)), undefined);
  const truncated = Buffer.alloc(64);
  truncated.write('\x7fELF\x02\x01\x01', 0, 'latin1');
  truncated.writeUInt16LE(3, 16);
  truncated.writeUInt16LE(62, 18);
  truncated.writeBigUInt64LE(1n << 40n, 32); // program headers far outside the file
  truncated.writeUInt16LE(56, 54);
  truncated.writeUInt16LE(3, 56);
  assert.equal(elfLibraryInfo(truncated), undefined);
  const libc = '/lib/x86_64-linux-gnu/libc.so.6';
  if (process.arch !== 'x64') return t.skip('needs an x86-64 host libc');
  const info = elfLibraryInfo(readFileSync(realpathSync(libc)));
  assert.deepEqual(info && [info.soname, info.flags, info.class64, info.littleEndian], ['libc.so.6', 0x0303, true, true]);
});
