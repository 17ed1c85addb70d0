// distill diff on a synthetic archive: every kind of change (added, removed, upgraded, downgraded, an
// epoch bump), changelogs as Debian ships them (binNMU changelogs, native packages, doc dirs that are
// symlinks to another package's), and hostile ones (a decompression bomb, corrupt gzip, text that is
// not a changelog, Latin-1) — each degrades to a marked, partial report, never a failure of the diff.
// The .debs are read through the cache and a file:// mirror, verified against the locks.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { makeArchive, type SynthArchive, type SynthPackage } from '../helpers/synthetic-archive.js';
import { diffImages, type DiffResult } from '../../src/diff/diff.js';
import { formatDiffMarkdown, formatDiffText } from '../../src/diff/format.js';
import { serializeLock, type Lockfile, type LockedPackage } from '../../src/lock/lockfile.js';
import { main } from '../../src/cli/main.js';

const work = mkdtempSync(join(tmpdir(), 'distill-diff-'));
after(() => rmSync(work, { recursive: true, force: true }));

function changelog(src: string, entries: [string, string[]][], opts: { binNMU?: boolean } = {}): Buffer {
  const text = entries
    .map(([v, lines]) => `${src} (${v}) stable; urgency=${opts.binNMU ? 'low, binary-only=yes' : 'medium'}\n\n${lines.map((l) => `  ${l}`).join('\n')}\n\n -- Synthetic Maintainers <synthetic@example.invalid>  Sun, 01 Jun 2025 12:00:00 +0000\n`)
    .join('\n');
  return gzipSync(Buffer.from(text));
}

const doc = (pkg: string, file = 'changelog.Debian.gz') => `usr/share/doc/${pkg}/${file}`;

const OLD: SynthPackage[] = [
  { name: 'libfoo1', version: '1.0-1', architecture: 'amd64', source: 'foo', files: { 'usr/lib/libfoo.so.1': 'v1' } },
  { name: 'foo-common', version: '1.0-1', architecture: 'all', source: 'foo', files: { 'usr/share/foo/data': 'v1' } },
  { name: 'epochy', version: '2.0-1', architecture: 'amd64' },
  { name: 'quiet', version: '1.0-1', architecture: 'amd64' },
  { name: 'downer', version: '2.0-1', architecture: 'amd64' },
  { name: 'gone', version: '1.0-1', architecture: 'amd64' },
  { name: 'binny', version: '1.0-1', architecture: 'amd64' },
  { name: 'nativepkg', version: '1.0', architecture: 'all' },
  { name: 'bomb', version: '1.0-1', architecture: 'amd64' },
  { name: 'corrupt', version: '1.0-1', architecture: 'amd64' },
  { name: 'notalog', version: '1.0-1', architecture: 'amd64' },
  { name: 'latin', version: '1.0-1', architecture: 'amd64' },
  { name: 'nolog', version: '1.0-1', architecture: 'amd64' },
  { name: 'tampered', version: '1.0-1', architecture: 'amd64' },
];

const NEW: SynthPackage[] = [
  {
    name: 'libfoo1', version: '1.2-1', architecture: 'amd64', source: 'foo',
    files: {
      'usr/lib/libfoo.so.1': 'v2',
      [doc('libfoo1')]: changelog('foo', [
        ['1.2-1', ['* New upstream release.', '* Fix CVE-2025-1111 (Closes: #1001)']],
        ['1.1-1', ['* Fix CVE-2025-2222 and CVE-2024-3333.']],
        ['1.0-1', ['* Initial release; CVE-2020-0001 was fixed long ago.']],
      ]),
    },
  },
  // The doc dir is a symlink to libfoo1's, as libgcc-s1's is to gcc-14-base's.
  { name: 'foo-common', version: '1.2-1', architecture: 'all', source: 'foo', files: { 'usr/share/foo/data': 'v2' }, symlinks: { 'usr/share/doc/foo-common': 'libfoo1' } },
  // 1:1.0-1 is newer than 2.0-1: the epoch wins.
  { name: 'epochy', version: '1:1.0-1', architecture: 'amd64', files: { [doc('epochy')]: changelog('epochy', [['1:1.0-1', ['* Go back to the 1.x series (CVE-2025-4444).']], ['2.0-1', ['* CVE-2019-0001']]]) } },
  { name: 'quiet', version: '1.0-2', architecture: 'amd64', files: { [doc('quiet')]: changelog('quiet', [['1.0-2', ['* Packaging only.']], ['1.0-1', ['* Initial.']]]) } },
  { name: 'downer', version: '1.0-1', architecture: 'amd64' },
  { name: 'fresh', version: '3.0-1', architecture: 'amd64' },
  // A binNMU: the source is unchanged; its entry is in changelog.Debian.amd64.gz.
  {
    name: 'binny', version: '1.0-1+b1', architecture: 'amd64', source: 'binny (1.0-1)',
    files: {
      [doc('binny')]: changelog('binny', [['1.0-1', ['* Initial.']]]),
      [doc('binny', 'changelog.Debian.amd64.gz')]: changelog('binny', [['1.0-1+b1', ['* Binary-only non-maintainer upload for amd64; no source changes.', '* Rebuild against libssl with CVE-2025-5555 fixed.']]], { binNMU: true }),
    },
  },
  // A native package: changelog.gz, no changelog.Debian.gz.
  { name: 'nativepkg', version: '1.1', architecture: 'all', files: { [doc('nativepkg', 'changelog.gz')]: changelog('nativepkg', [['1.1', ['* CVE-2025-6666']], ['1.0', ['* Initial.']]]) } },
  // 40 MiB of one line behind a valid header: stopped at the decompression cap.
  { name: 'bomb', version: '1.0-2', architecture: 'amd64', files: { [doc('bomb')]: gzipSync(Buffer.concat([Buffer.from('bomb (1.0-2) stable; urgency=high\n\n  * CVE-2025-7777 '), Buffer.alloc(40 * 1024 * 1024, 0x41)]), { level: 9 }) } },
  { name: 'corrupt', version: '1.0-2', architecture: 'amd64', files: { [doc('corrupt')]: Buffer.concat([changelog('corrupt', [['1.0-2', ['* CVE-2025-8888']]]).subarray(0, 30), Buffer.from('this is not deflate data at all')]) } },
  { name: 'notalog', version: '1.0-2', architecture: 'amd64', files: { [doc('notalog')]: gzipSync(Buffer.from(Array.from({ length: 5000 }, (_, i) => String.fromCharCode(i % 256)).join(''), 'latin1')) } },
  { name: 'latin', version: '1.0-2', architecture: 'amd64', files: { [doc('latin')]: gzipSync(Buffer.concat([Buffer.from('latin (1.0-2) stable; urgency=low\n\n  * Fix CVE-2025-9999, thanks to Jos'), Buffer.from([0xe9]), Buffer.from('\n\n -- X <x@example.invalid>  Sun, 01 Jun 2025 12:00:00 +0000\n')])) } },
  { name: 'nolog', version: '1.0-2', architecture: 'amd64' },
  { name: 'tampered', version: '1.0-2', architecture: 'amd64', files: { [doc('tampered')]: changelog('tampered', [['1.0-2', ['* CVE-2025-1212']]]) } },
];

let archive: SynthArchive;
let oldDir: string;
let newDir: string;
const cache = join(work, 'cache');
const mirrorFlag = () => ['--mirror', `synth=${archive.url('synth')}`];

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function lockOf(pkgs: SynthPackage[]): Lockfile {
  const packages: LockedPackage[] = pkgs.map((p) => {
    const path = archive.debPath('synth', p.name, p.architecture, p.version);
    const bytes = readFileSync(path);
    const m = /^(\S+)(?:\s+\((.+)\))?$/.exec(p.source ?? p.name)!;
    return {
      name: p.name, version: p.version, architecture: p.architecture, source: m[1]!, sourceVersion: m[2] ?? p.version,
      archive: 'synth', filename: relative(join(archive.root, 'synth'), path), size: bytes.length, sha256: sha(bytes), depends: [],
    };
  });
  return {
    lockfileVersion: 1, image: 'app', definition: { file: 'image.yaml', sha256: '0'.repeat(64) }, timestamp: '2025-06-01T12:00:00Z',
    requested: [], exclude: [], sources: { synth: { suite: 'stable', components: ['main'], date: '2025-06-01T12:00:00Z', inRelease: { sha256: '0'.repeat(64), size: 1 }, signedBy: [] } },
    architectures: { amd64: { packages } },
  };
}

async function run(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: { HOME: work } });
  return { code, stdout, stderr };
}

let result: DiffResult;

test('setup: an archive with both versions of every package, and a lock for each side', async () => {
  archive = await makeArchive(join(work, 'archive'), [{ archiveName: 'synth', suite: 'stable', architectures: ['amd64'], packages: [...OLD, ...NEW], compression: undefined } as never], { unsigned: true });
  oldDir = join(work, 'old', 'app');
  newDir = join(work, 'new', 'app');
  for (const [dir, pkgs] of [[oldDir, OLD], [newDir, NEW]] as const) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'image.lock.json'), serializeLock(lockOf(pkgs)));
  }
  // The pool file of 'tampered' no longer matches what the lock pins.
  const t = archive.debPath('synth', 'tampered', 'amd64', '1.0-2');
  chmodSync(t, 0o644);
  writeFileSync(t, Buffer.concat([readFileSync(t), Buffer.from('x')]));
  result = await diffImages(oldDir, newDir, { cacheDir: cache, mirrors: { flags: { synth: archive.url('synth') }, aptSources: [] } });
});

function arch() {
  assert.equal(result.images.length, 1);
  return result.images[0]!.architectures.find((a) => a.arch === 'amd64')!;
}
const up = (name: string) => arch().upgraded.find((u) => u.name === name)!;

test('added, removed, downgraded, and an epoch bump counted as an upgrade', () => {
  const a = arch();
  assert.deepEqual(a.added.map((p) => `${p.name} ${p.version}`), ['fresh 3.0-1']);
  assert.deepEqual(a.removed.map((p) => `${p.name} ${p.version}`), ['gone 1.0-1']);
  assert.deepEqual(a.downgraded.map((p) => `${p.name} ${p.oldVersion}>${p.newVersion}`), ['downer 2.0-1>1.0-1']);
  assert.deepEqual(a.upgraded.map((u) => u.name), ['binny', 'bomb', 'corrupt', 'epochy', 'foo-common', 'latin', 'libfoo1', 'nativepkg', 'nolog', 'notalog', 'quiet', 'tampered']);
  assert.equal(a.unchanged, 0);
  assert.equal(result.images[0]!.status, 'changed');
  assert.deepEqual({ ...result.summary, cves: undefined }, { added: 1, removed: 1, upgraded: 12, downgraded: 1, changed: true, cves: undefined });
  // A downgrade's changelog is never read.
  assert.equal(a.downgraded[0]!.changelog, undefined);
  const e = up('epochy');
  assert.deepEqual(e.changelog!.entries.map((x) => x.version), ['1:1.0-1']);
  assert.deepEqual(e.changelog!.cves, ['CVE-2025-4444']);
});

test('the entries between the versions, with their CVEs and bugs; the old version\'s own entry is not one', () => {
  const u = up('libfoo1');
  assert.equal(u.source, 'foo');
  assert.equal(u.changelog!.status, 'ok');
  assert.deepEqual(u.changelog!.files, ['libfoo1:usr/share/doc/libfoo1/changelog.Debian.gz']);
  assert.deepEqual(u.changelog!.entries.map((x) => x.version), ['1.2-1', '1.1-1']);
  assert.deepEqual(u.changelog!.cves, ['CVE-2024-3333', 'CVE-2025-1111', 'CVE-2025-2222']);
  assert.deepEqual(u.changelog!.entries[0]!.bugs, [1001]);
  // A changelog without CVEs.
  assert.equal(up('quiet').changelog!.status, 'ok');
  assert.deepEqual(up('quiet').changelog!.entries.map((x) => x.version), ['1.0-2']);
  assert.deepEqual(up('quiet').changelog!.cves, []);
});

test('a doc dir symlinked to another package\'s, a binNMU changelog, a native package\'s changelog.gz', () => {
  const c = up('foo-common');
  assert.deepEqual(c.changelog!.files, ['libfoo1:usr/share/doc/libfoo1/changelog.Debian.gz']);
  assert.deepEqual(c.changelog!.cves, ['CVE-2024-3333', 'CVE-2025-1111', 'CVE-2025-2222']);
  const b = up('binny');
  assert.equal(b.oldSourceVersion, '1.0-1');
  assert.equal(b.newSourceVersion, '1.0-1');
  assert.deepEqual(b.changelog!.files, ['binny:usr/share/doc/binny/changelog.Debian.amd64.gz', 'binny:usr/share/doc/binny/changelog.Debian.gz']);
  assert.deepEqual(b.changelog!.entries.map((x) => x.version), ['1.0-1+b1']);
  assert.deepEqual(b.changelog!.cves, ['CVE-2025-5555']);
  const n = up('nativepkg');
  assert.deepEqual(n.changelog!.entries.map((x) => x.version), ['1.1']);
  assert.deepEqual(n.changelog!.cves, ['CVE-2025-6666']);
});

test('hostile changelogs: a bomb, corrupt gzip, binary junk, Latin-1 — partial reports, the diff goes on', () => {
  const bomb = up('bomb').changelog!;
  assert.equal(bomb.status, 'partial');
  assert.deepEqual(bomb.cves, ['CVE-2025-7777']);
  assert.match(bomb.warnings.join('\n'), /decompressed/);
  assert.ok(bomb.entries[0]!.changes.length < 64 * 1024);
  const corrupt = up('corrupt').changelog!;
  assert.equal(corrupt.status, 'partial');
  assert.match(corrupt.warnings.join('\n'), /not a valid gzip stream/);
  const junk = up('notalog').changelog!;
  assert.equal(junk.entries.length, 0);
  assert.ok(junk.warnings.length > 0);
  const latin = up('latin').changelog!;
  assert.equal(latin.entries[0]!.changes, '* Fix CVE-2025-9999, thanks to José');
  assert.match(latin.warnings.join('\n'), /not valid UTF-8/);
  assert.equal(up('nolog').changelog!.status, 'missing');
  // The pool file does not match the lock: never read, reported with the code.
  const t = up('tampered').changelog!;
  assert.equal(t.status, 'unavailable');
  assert.match(t.error!.code, /^BLOB_(SIZE|DIGEST)_MISMATCH$/);
  assert.match(result.warnings.join('\n'), /tampered: changelog unavailable/);
});

test('the JSON schema is stable: the fields consumers read', () => {
  assert.equal(result.schemaVersion, 1);
  assert.deepEqual(Object.keys(result).sort(), ['images', 'new', 'old', 'schemaVersion', 'summary', 'warnings']);
  assert.deepEqual(Object.keys(arch()).sort(), ['added', 'arch', 'cves', 'downgraded', 'removed', 'unchanged', 'upgraded']);
  assert.deepEqual(Object.keys(up('libfoo1')).sort(), ['architecture', 'changelog', 'name', 'newSourceVersion', 'newVersion', 'oldSourceVersion', 'oldVersion', 'source']);
  assert.deepEqual(Object.keys(up('libfoo1').changelog!).sort(), ['cves', 'entries', 'files', 'status', 'warnings']);
  assert.deepEqual(Object.keys(up('libfoo1').changelog!.entries[0]!).sort(), ['bugs', 'changes', 'cves', 'date', 'distributions', 'maintainer', 'source', 'urgency', 'version']);
});

test('renderings: text and a Markdown pull-request body that escapes what the packages say', () => {
  const text = formatDiffText(result);
  assert.match(text, /upgraded {3}libfoo1 1\.0-1 → 1\.2-1 \(foo\): 3 CVEs/);
  assert.match(text, /downgraded downer 2\.0-1 → 1\.0-1/);
  assert.match(text, /added {6}fresh 3\.0-1/);
  const md = formatDiffMarkdown(result);
  assert.match(md, /^## Package changes/);
  assert.match(md, /\| amd64 \| libfoo1 \| upgraded \| 1\.0-1 \| 1\.2-1 \| foo \|/);
  assert.match(md, /<details><summary>foo 1\.0-1 → 1\.2-1 \(foo-common, libfoo1; 3 CVEs\)<\/summary>/);
  assert.ok(md.length < 65536);
});

test('the CLI: --json, --markdown, --no-changelogs, --exit-code; errors are one line with a code', async () => {
  const j = await run(['diff', oldDir, newDir, '--json', '--cache', cache, ...mirrorFlag()]);
  assert.equal(j.code, 0, j.stderr);
  const parsed = JSON.parse(j.stdout) as DiffResult;
  assert.deepEqual(parsed.summary, result.summary);
  const m = await run(['diff', join(oldDir, 'image.lock.json'), join(newDir, 'image.lock.json'), '--markdown', '--cache', cache, ...mirrorFlag()]);
  assert.equal(m.code, 0, m.stderr);
  assert.match(m.stdout, /### app/);
  const quick = await run(['diff', oldDir, newDir, '--no-changelogs', '--json', '--cache', join(work, 'empty-cache')]);
  assert.equal(quick.code, 0, quick.stderr);
  assert.equal((JSON.parse(quick.stdout) as DiffResult).images[0]!.architectures[0]!.upgraded[0]!.changelog!.status, 'skipped');
  const same = await run(['diff', oldDir, oldDir, '--exit-code', '--cache', cache]);
  assert.equal(same.code, 0);
  assert.match(same.stdout, /app: unchanged/);
  const differ = await run(['diff', oldDir, newDir, '--exit-code', '--no-changelogs', '--cache', cache]);
  assert.equal(differ.code, 1);
  for (const args of [['diff', join(work, 'nope'), newDir], ['diff', work, newDir], ['diff', 'registry.invalid/x:1', newDir]]) {
    const r = await run([...args, '--cache', cache]);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, /^distill: .+ \[[A-Z_]+\]\nhint: /, r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
  // No mirror for a .deb missing from the cache: the changelog is unavailable, the diff still answers.
  const noMirror = await run(['diff', oldDir, newDir, '--json', '--cache', join(work, 'empty-cache-2')]);
  assert.equal(noMirror.code, 0, noMirror.stderr);
  const nm = JSON.parse(noMirror.stdout) as DiffResult;
  assert.equal(nm.images[0]!.architectures[0]!.upgraded.find((u) => u.name === 'libfoo1')!.changelog!.error!.code, 'MIRROR_NOT_CONFIGURED');
});
