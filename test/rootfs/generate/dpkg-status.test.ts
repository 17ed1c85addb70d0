// status.d files against the real .debs of the snapshot: each status.d/<pkg> is the control file
// byte for byte and parses to what dpkg-deb reads from the .deb; each <pkg>.md5sums is the shipped file.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseDeb822 } from '../../../src/debian/deb822.js';
import { STATUS_DIR, shippedMd5sums, statusDFiles, statusParagraph } from '../../../src/rootfs/generate/dpkg-status.js';
import { statusEntries } from '../../../src/rootfs/generate/dpkg-status.js';
import { statusInput } from '../../../src/build/assemble.js';
import { packageControl, type CraftPackage } from '../../helpers/craft-deb.js';
import { stageCrafted, staging } from '../../helpers/stage-debs.js';
import { NO_SNAPSHOT } from '../../helpers/paths.js';
import { hasTool, run, snapshotDebs, tempDir } from './helpers.js';

const failed = (e: unknown) => (e as { code?: string }).code === 'GENERATE_FAILED' && Boolean((e as { hint?: string }).hint);

test('every amd64 image package of the snapshot: control and md5sums kept byte for byte, names plain', (t) => {
  const debs = snapshotDebs().filter((p) => /_(amd64|all)\.deb$/.test(p));
  if (debs.length === 0) return t.skip(NO_SNAPSHOT);
  if (!hasTool('dpkg-deb')) return t.skip('dpkg-deb is not installed on this machine');
  const { dir, cleanup } = tempDir('dpkg-status');
  try {
    // Each .deb's control archive, and what dpkg-deb itself reads from it: one shell for all of them.
    const script = 'i=0; for d in "$@"; do dpkg-deb -e "$d" "$0/$i"; i=$((i+1)); dpkg-deb --show --showformat=\'${Package}\\t${Version}\\t${Architecture}\\t${Multi-Arch}\\n\' "$d"; done';
    const fields = run('sh', ['-c', script, dir, ...debs]).stdout.trim().split('\n');
    assert.equal(fields.length, debs.length);
    const records = debs.map((_, i) => {
      const md5 = join(dir, String(i), 'md5sums');
      return { control: readFileSync(join(dir, String(i), 'control'), 'utf8'), md5sums: existsSync(md5) ? readFileSync(md5) : undefined };
    });
    const files = statusDFiles(records);
    const byPath = new Map(files.map((f) => [f.path, f.content]));
    assert.deepEqual(files.map((f) => f.path), [...files.map((f) => f.path)].sort());
    let sameArch = 0;
    records.forEach((r, i) => {
      const [name, version, arch, multiArch] = fields[i]!.split('\t');
      const status = byPath.get(`${STATUS_DIR}/${name!}`);
      assert.ok(status, `${STATUS_DIR}/${name!}`);
      assert.equal(status.toString('utf8'), r.control, `${name!}: the control file unchanged`);
      const [p] = parseDeb822(status.toString('utf8'), name!);
      assert.deepEqual([p!.get('Package'), p!.get('Version'), p!.get('Architecture'), p!.get('Multi-Arch') ?? 'no'], [name, version, arch, multiArch]);
      assert.equal(p!.has('Status'), false);
      if (multiArch === 'same') sameArch++;
      const md5 = byPath.get(`${STATUS_DIR}/${name!}.md5sums`);
      if (r.md5sums === undefined) assert.equal(md5, undefined);
      else assert.ok(md5?.equals(r.md5sums), `${name!}.md5sums unchanged`);
    });
    assert.ok(sameArch > 10, 'Multi-Arch: same packages are among them (libc6, libssl3t64, …), named plainly');
    assert.ok(byPath.has(`${STATUS_DIR}/libc6`) && byPath.has(`${STATUS_DIR}/libc6.md5sums`));
    assert.equal(files.length, records.length + records.filter((r) => r.md5sums !== undefined).length);
  } finally {
    cleanup();
  }
});

const CONTROL = 'Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: A <a@example.org>\nDescription: hi\n more\n .\n end\n';

test('statusParagraph: exact text, one final newline, surrounding blank lines dropped', () => {
  assert.equal(statusParagraph(CONTROL), CONTROL);
  assert.equal(statusParagraph('\n' + CONTROL + '\n\n'), CONTROL);
  assert.equal(statusParagraph(CONTROL.slice(0, -1)), CONTROL);
});

test('refusals: not one paragraph, missing or bad fields, dpkg database fields, duplicates, bad md5sums', () => {
  assert.throws(() => statusParagraph(CONTROL + '\nPackage: two\nVersion: 1\nArchitecture: all\n'), failed);
  assert.throws(() => statusParagraph(''), failed);
  assert.throws(() => statusParagraph('not a control file\n'), failed);
  assert.throws(() => statusParagraph(CONTROL.replace('Version: 1.0-1\n', '')), failed);
  assert.throws(() => statusParagraph(CONTROL.replace('Architecture: amd64\n', '')), failed);
  for (const bad of ['../../etc/passwd', 'Hello', 'a', 'hello world', 'hel/lo']) {
    assert.throws(() => statusParagraph(CONTROL.replace('hello', bad)), failed, bad);
  }
  assert.throws(() => statusParagraph(CONTROL + 'Status: deinstall ok config-files\n'), failed);
  assert.throws(() => statusParagraph(CONTROL + 'config-version: 1\n'), failed);
  assert.throws(() => statusDFiles([{ control: CONTROL }, { control: CONTROL.replace('amd64', 'arm64') }]), failed);
  assert.throws(() => statusDFiles([{ control: CONTROL, md5sums: 'd41d8cd98f00b204e9800998ecf8427e usr/bin/hello\n' }]), failed);
  assert.throws(() => statusDFiles([{ control: CONTROL, md5sums: 'd41d8cd98f00b204e9800998ecf8427e  usr/bin/hello' }]), failed);
  assert.deepEqual(
    statusDFiles([{ control: CONTROL, md5sums: '' }, { control: CONTROL.replace('hello', 'libfoo1') }]).map((f) => [f.path, f.content.length]),
    [
      ['/var/lib/dpkg/status.d/hello', CONTROL.length],
      ['/var/lib/dpkg/status.d/hello.md5sums', 0],
      ['/var/lib/dpkg/status.d/libfoo1', CONTROL.length + 2],
    ],
  );
});

test('shippedMd5sums keeps, in order and byte for byte, only the lines of files the image ships', () => {
  const md5 = 'd41d8cd98f00b204e9800998ecf8427e  usr/bin/kept\n' + '0123456789abcdef0123456789abcdef  usr/share/doc/p/changelog.gz\n' + '00112233445566778899aabbccddeeff  lib/x86_64-linux-gnu/libp.so.1\n';
  const shipped = new Set(['usr/bin/kept', 'lib/x86_64-linux-gnu/libp.so.1']);
  assert.equal(shippedMd5sums(md5, 'p', (p) => shipped.has(p)).toString(), 'd41d8cd98f00b204e9800998ecf8427e  usr/bin/kept\n00112233445566778899aabbccddeeff  lib/x86_64-linux-gnu/libp.so.1\n');
  assert.equal(shippedMd5sums(md5, 'p', () => false).length, 0);
  const files = statusDFiles([{ control: 'Package: pp\nVersion: 1\nArchitecture: amd64\n', md5sums: md5 }], (p) => p === 'usr/bin/kept');
  assert.equal(files[1]!.content.toString(), 'd41d8cd98f00b204e9800998ecf8427e  usr/bin/kept\n');
  assert.throws(() => shippedMd5sums('not a line\n', 'p', () => true), (e: any) => e.code === 'GENERATE_FAILED');
});

test('generator, on crafted .debs staged as the build stages them: control byte for byte, md5sums of shipped files only', async () => {
  const libfoo: CraftPackage = {
    name: 'libfoo1',
    version: '1.2-1',
    fields: { 'Multi-Arch': 'same', Depends: 'libc6 (>= 2.36)' },
    files: { 'usr/lib/x86_64-linux-gnu/libfoo.so.1': 'foo\n', 'usr/share/doc/libfoo1/changelog.Debian.gz': 'log', 'usr/share/doc/libfoo1/copyright': 'MIT\n' },
  };
  const nosums: CraftPackage = { name: 'no-md5sums', architecture: 'all', md5sums: false, files: { 'etc/x': 'x' } };
  const staged = await stageCrafted(staging(), [libfoo, nosums]);
  const kept = new Set(staged.flatMap((s) => s.entries.filter((e) => e.type === 'file').map((e) => e.path)));
  const entries = statusEntries(staged.map(statusInput), 1_750_000_000, (p) => kept.has(p));
  assert.deepEqual(entries.map((e) => e.path), ['var/lib/dpkg/status.d/libfoo1', 'var/lib/dpkg/status.d/libfoo1.md5sums', 'var/lib/dpkg/status.d/no-md5sums']);
  assert.ok(entries.every((e) => e.type === 'file' && e.mode === 0o644 && e.owner === 'distill:dpkg-status' && e.mtime === 1_750_000_000));
  const text = (i: number) => { const b = entries[i]!.body; return b?.kind === 'bytes' ? b.data.toString() : ''; };
  assert.equal(text(0), packageControl(libfoo));
  assert.deepEqual(text(1).split('\n').filter(Boolean).map((l) => l.slice(34)), ['usr/lib/x86_64-linux-gnu/libfoo.so.1', 'usr/share/doc/libfoo1/copyright']);
  assert.equal(text(2), packageControl(nosums));
});
