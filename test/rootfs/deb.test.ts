// readDeb: the deb(5)/ar(5) container and its tar members, against real packages from the frozen
// snapshot (compared with dpkg-deb and GNU tar where installed) and crafted, often hostile, archives.
// The per-entry safety policy has its own tests in test/rootfs/sanitize.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { readDeb, type DebControl, type ReadDebOptions } from '../../src/rootfs/deb.js';
import type { FsEntry } from '../../src/rootfs/entry.js';
import {
  END_OF_ARCHIVE,
  compress,
  craftDeb,
  craftTar,
  dir,
  file,
  gnuLong,
  rawEntry,
  symlink,
  type Compression,
} from '../helpers/craft-deb.js';
import { NO_SNAPSHOT, snapshotDir } from '../helpers/paths.js';

interface Collected {
  control: DebControl | undefined;
  entries: (FsEntry & { body?: string })[];
  warnings: string[];
  /** 'control' and entry paths, in the order the handlers saw them. */
  order: string[];
}

async function collect(deb: Buffer | Readable, opts: ReadDebOptions = {}): Promise<Collected> {
  const out: Collected = { control: undefined, entries: [], warnings: [], order: [] };
  const input = Buffer.isBuffer(deb) ? Readable.from([deb]) : deb;
  await readDeb(
    input,
    'crafted.deb',
    {
      control: (c) => {
        out.control = c;
        out.order.push('control');
      },
      entry: async (e, body) => {
        out.order.push(e.path);
        if (body === undefined) {
          out.entries.push(e);
          return;
        }
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(c as Buffer);
        out.entries.push({ ...e, body: Buffer.concat(chunks).toString('utf8') });
      },
    },
    { onWarning: (m) => out.warnings.push(m), ...opts },
  );
  return out;
}

const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;

// ------------------------------------------------------------------------------------------------
// Real packages from the snapshot, compared with dpkg-deb and GNU tar.

const snap = snapshotDir();
const hasDpkgDeb = spawnSync('dpkg-deb', ['--version']).status === 0 && spawnSync('tar', ['--version']).status === 0;

interface Listed {
  path: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  linkTarget?: string;
}

/** `dpkg-deb --fsys-tarfile X | tar -tv --numeric-owner`, parsed (root entry dropped). */
function tarListing(deb: string): Listed[] {
  const tarBytes = spawnSync('dpkg-deb', ['--fsys-tarfile', deb], { maxBuffer: 1 << 30 });
  assert.equal(tarBytes.status, 0, String(tarBytes.stderr));
  const r = spawnSync('tar', ['-tv', '--numeric-owner', '--quoting-style=literal'], { input: tarBytes.stdout, maxBuffer: 1 << 28, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out: Listed[] = [];
  for (const line of r.stdout.split('\n')) {
    if (line === '') continue;
    const m = /^(.)(.{9}) (\d+)\/(\d+) +(\d+) \S+ \S+ (.*)$/.exec(line);
    assert.ok(m, `unparsed tar line ${JSON.stringify(line)}`);
    const [, t, perms, uid, gid, size, rest] = m as unknown as [string, string, string, string, string, string, string];
    let name = rest;
    let linkTarget: string | undefined;
    const type = { '-': 'file', d: 'dir', l: 'symlink', h: 'hardlink' }[t] ?? t;
    if (type === 'symlink') [name, linkTarget] = rest.split(' -> ') as [string, string];
    if (type === 'hardlink') [name, linkTarget] = rest.split(' link to ') as [string, string];
    const path = name.replace(/^\.\//, '').replace(/\/$/, '');
    if (path === '' || path === '.') continue;
    if (type === 'hardlink') linkTarget = linkTarget!.replace(/^\.\//, '');
    const e: Listed = { path, type, mode: permsToMode(perms), uid: Number(uid), gid: Number(gid), size: Number(size) };
    if (linkTarget !== undefined) e.linkTarget = linkTarget;
    out.push(e);
  }
  return out;
}

function permsToMode(p: string): number {
  let mode = 0;
  const bit = (i: number, v: number) => (p[i] !== '-' ? v : 0);
  mode |= bit(0, 0o400) | bit(1, 0o200) | bit(3, 0o40) | bit(4, 0o20) | bit(6, 0o4) | bit(7, 0o2);
  mode |= 'xst'.includes(p[2]!) ? 0o100 : 0;
  mode |= 'xst'.includes(p[5]!) ? 0o10 : 0;
  mode |= 'xst'.includes(p[8]!) ? 0o1 : 0;
  if ('sS'.includes(p[2]!)) mode |= 0o4000;
  if ('sS'.includes(p[5]!)) mode |= 0o2000;
  if ('tT'.includes(p[8]!)) mode |= 0o1000;
  return mode;
}

function dpkgInfo(deb: string, member: string): string | undefined {
  const r = spawnSync('dpkg-deb', ['-I', deb, member], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : undefined;
}

const REAL = [
  'debian/pool/main/b/base-files/base-files_13.8+deb13u7_amd64.deb',
  'debian/pool/main/g/glibc/libc6_2.41-12+deb13u4_amd64.deb',
  'debian/pool/main/u/util-linux/util-linux_2.41.5-0+deb13u1_amd64.deb',
];

for (const rel of REAL) {
  const name = rel.split('/').pop()!;
  test(`${name}: entries and control agree with dpkg-deb and GNU tar`, { skip: snap === undefined ? NO_SNAPSHOT : false }, async (t) => {
    const path = join(snap!, rel);
    if (!existsSync(path)) return t.skip(`${rel} is not in the snapshot`);
    // allowSetid: everything, so modes compare as packaged (the stripping has its own tests).
    const got = await collect(createReadStream(path), { allowSetid: () => true, size: statSync(path).size });
    assert.equal(got.order[0], 'control');
    const fields = got.control!.fields;
    assert.equal(`${fields.get('Package')}_${fields.get('Version')}_${fields.get('Architecture')}.deb`, name.replace(/%3a/g, ':'));
    for (const e of got.entries) {
      assert.ok(!e.path.startsWith('/') && !e.path.startsWith('./') && !e.path.endsWith('/') && e.path !== '', e.path);
    }
    if (!hasDpkgDeb) return t.skip('dpkg-deb or GNU tar is not installed: the comparison is skipped');
    const ours: Listed[] = got.entries.map((e) => {
      const l: Listed = { path: e.path, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, size: e.size };
      if (e.linkTarget !== undefined) l.linkTarget = e.linkTarget;
      return l;
    });
    assert.deepEqual(ours, tarListing(path));
    assert.equal(got.control!.text, dpkgInfo(path, 'control'));
    assert.equal(got.control!.md5sums, dpkgInfo(path, 'md5sums'));
    assert.equal(got.control!.conffiles, dpkgInfo(path, 'conffiles'));
  });
}

test('file bodies are the packaged bytes (base-files: every md5sum matches)', { skip: snap === undefined ? NO_SNAPSHOT : false }, async () => {
  const { createHash } = await import('node:crypto');
  const path = join(snap!, REAL[0]!);
  const sums = new Map<string, string>();
  let control: DebControl | undefined;
  await readDeb(createReadStream(path), 'base-files', {
    control: (c) => void (control = c),
    entry: async (e, body) => {
      if (!body) return;
      const h = createHash('md5');
      for await (const c of body) h.update(c as Buffer);
      sums.set(e.path, h.digest('hex'));
    },
  });
  const listed = control!.md5sums!.trim().split('\n');
  assert.ok(listed.length > 10);
  for (const line of listed) {
    const [sum, p] = line.split(/ +/) as [string, string];
    assert.equal(sums.get(p), sum, p);
  }
});

// ------------------------------------------------------------------------------------------------
// Compressions, names, control.

const SAMPLE = [
  dir('./'),
  dir('./usr/'),
  dir('./usr/bin/'),
  file('./usr/bin/hello', '#!/bin/sh\necho hello\n', 0o755),
  symlink('./usr/bin/hi', 'hello'),
  dir('./etc/'),
  file('./etc/hello.conf', 'greeting=hello\n'),
];

for (const c of ['none', 'gzip', 'xz', 'zstd'] as Compression[]) {
  test(`data.tar and control.tar compressed with ${c}`, async () => {
    const deb = await craftDeb({ entries: SAMPLE, dataCompression: c, controlCompression: c, controlFiles: { md5sums: 'abc  usr/bin/hello\n', conffiles: '/etc/hello.conf\n', postinst: '#!/bin/sh\nexit 1\n' } });
    const got = await collect(deb);
    assert.deepEqual(got.order, ['control', 'usr', 'usr/bin', 'usr/bin/hello', 'usr/bin/hi', 'etc', 'etc/hello.conf']);
    assert.equal(got.control!.fields.get('Package'), 'crafted');
    assert.equal(got.control!.md5sums, 'abc  usr/bin/hello\n');
    assert.equal(got.control!.conffiles, '/etc/hello.conf\n');
    const hello = got.entries.find((e) => e.path === 'usr/bin/hello')!;
    assert.deepEqual(
      { type: hello.type, mode: hello.mode, size: hello.size, body: hello.body, uname: hello.uname, mtime: hello.mtime },
      { type: 'file', mode: 0o755, size: 21, body: '#!/bin/sh\necho hello\n', uname: 'root', mtime: 1748779200 },
    );
    assert.deepEqual(got.entries.find((e) => e.path === 'usr/bin/hi'), { path: 'usr/bin/hi', type: 'symlink', mode: 0o777, uid: 0, gid: 0, uname: 'root', gname: 'root', size: 0, mtime: 1748779200, linkTarget: 'hello' });
    assert.equal(got.entries.find((e) => e.path === 'usr')!.type, 'dir');
  });
}

test('the control text is kept exactly; it must be one paragraph with Package, Version, Architecture', async () => {
  const text = 'Package: exact\nVersion: 2:1.0~rc1-1\nArchitecture: all\nDescription: line\n more\n .\n end\n';
  const got = await collect(await craftDeb({ control: text, entries: SAMPLE }));
  assert.equal(got.control!.text, text);
  assert.equal(got.control!.fields.get('description'), 'line\nmore\n.\nend');
  assert.equal(got.control!.md5sums, undefined);
  await assert.rejects(collect(await craftDeb({ control: 'Package: a\nVersion: 1\n' })), code('DEB_MALFORMED'));
  await assert.rejects(collect(await craftDeb({ control: text + '\nPackage: second\n' })), code('DEB_MALFORMED'));
  await assert.rejects(collect(await craftDeb({ control: 'not a field\n' })), code('DEB_MALFORMED'));
  await assert.rejects(collect(await craftDeb({ control: Buffer.from([0x50, 0x3a, 0xff, 0x0a]).toString('latin1') })), code('DEB_MALFORMED'));
});

test('long names: GNU L/K records, pax path/linkpath/ids/mtime, ustar prefix', async () => {
  const long = 'usr/share/' + 'a'.repeat(120) + '/' + 'b'.repeat(90);
  const longTarget = '/opt/' + 'c'.repeat(150);
  const entries = [
    // ustar prefix: tar-stream's pack splits a long name into prefix + name.
    file(`./${long}/prefixed`, 'p'),
    { raw: Buffer.concat([gnuLong('L', `./${long}/gnu-file`), rawEntry({ name: 'truncated-name', typeflag: '0' }, 'g')]) },
    { raw: Buffer.concat([gnuLong('L', `./${long}/gnu-link`), gnuLong('K', longTarget), rawEntry({ name: 'x', typeflag: '2', linkname: 'y' })]) },
    {
      header: {
        name: `./${long}/pax`,
        mode: 0o640,
        pax: { uid: '1234567', gid: '7654321', uname: 'someone', gname: 'somegroup', mtime: '1700000000.75', 'SCHILY.xattr.user.x': 'v', atime: '1' },
      },
      body: 'pax body',
    },
  ];
  const got = await collect(await craftDeb({ entries }));
  assert.deepEqual(got.order.slice(1), [`${long}/prefixed`, `${long}/gnu-file`, `${long}/gnu-link`, `${long}/pax`]);
  assert.equal(got.entries[1]!.body, 'g');
  assert.equal(got.entries[2]!.linkTarget, longTarget);
  const pax = got.entries[3]!;
  assert.deepEqual([pax.uid, pax.gid, pax.uname, pax.gname, pax.mtime, pax.mode, pax.body], [1234567, 7654321, 'someone', 'somegroup', 1700000000, 0o640, 'pax body']);
  assert.ok(got.warnings.some((w) => /extended attribute user\.x dropped/.test(w)), got.warnings.join('\n'));
});

test('pax global headers and GNU sparse files are refused', async () => {
  const g = rawEntry({ name: 'pax_global_header', typeflag: 'g' }, '20 path=etc/passwd\n');
  await assert.rejects(collect(await craftDeb({ entries: [{ raw: g }, file('./a', 'x')] })), code('DEB_MALFORMED'));
  const sparse = { header: { name: './s', pax: { 'GNU.sparse.major': '1', 'GNU.sparse.minor': '0' } }, body: 'x' };
  await assert.rejects(collect(await craftDeb({ entries: [sparse] })), code('DEB_MALFORMED'));
  await assert.rejects(collect(await craftDeb({ entries: [{ header: { name: './u', pax: { uid: '-1' } }, body: 'x' }] })), code('DEB_MALFORMED'));
});

test('`_` members are skipped wherever they are; bzip2 and lzma members are unsupported', async () => {
  const extra = (name: string) => ({ name, data: Buffer.from('ignored!!') });
  const deb = await craftDeb({ entries: SAMPLE, members: (m) => [m[0]!, extra('_sig'), m[1]!, extra('_x'), m[2]!, extra('_gpgbuilder')] });
  assert.equal((await collect(deb)).entries.length, 6);
  await assert.rejects(collect(await craftDeb({ entries: SAMPLE, dataName: 'data.tar.bz2' })), code('DEB_UNSUPPORTED_COMPRESSION'));
  await assert.rejects(collect(await craftDeb({ entries: SAMPLE, controlName: 'control.tar.lzma' })), code('DEB_UNSUPPORTED_COMPRESSION'));
  // GNU ar's trailing '/' on names is accepted, as dpkg does.
  const slash = await craftDeb({ entries: SAMPLE, members: (m) => m.map((x) => ({ ...x, fields: { name: `${x.name}/` } })) });
  assert.equal((await collect(slash)).entries.length, 6);
});

// ------------------------------------------------------------------------------------------------
// Hostile or broken containers.

test('a wrong debian-binary, ar magic or member order is DEB_MALFORMED', async () => {
  for (const v of ['3.0\n', '2.0', '1.0\n', '20\n', '']) {
    await assert.rejects(collect(await craftDeb({ entries: SAMPLE, debianBinary: v })), code('DEB_MALFORMED'), JSON.stringify(v));
  }
  assert.equal((await collect(await craftDeb({ entries: SAMPLE, debianBinary: '2.9\nfuture line\n' }))).entries.length, 6);
  const deb = await craftDeb({ entries: SAMPLE });
  await assert.rejects(collect(Buffer.concat([Buffer.from('!<arch!\n'), deb.subarray(8)])), code('DEB_MALFORMED'));
  const orders: [string, (m: import('../helpers/craft-deb.js').ArMember[]) => import('../helpers/craft-deb.js').ArMember[]][] = [
    ['data before control', (m) => [m[0]!, m[2]!, m[1]!]],
    ['no debian-binary', (m) => [m[1]!, m[2]!]],
    ['no data', (m) => [m[0]!, m[1]!]],
    ['no control', (m) => [m[0]!, m[2]!]],
    ['two data members', (m) => [...m, m[2]!]],
    ['an unknown member', (m) => [m[0]!, m[1]!, { name: 'extra', data: Buffer.from('x') }, m[2]!]],
  ];
  for (const [label, members] of orders) {
    await assert.rejects(collect(await craftDeb({ entries: SAMPLE, members })), code('DEB_MALFORMED'), label);
  }
});

test('ar header fields are validated strictly', async () => {
  const bad: [string, Partial<Record<'name' | 'date' | 'uid' | 'gid' | 'mode' | 'size' | 'fmag', string>>][] = [
    ['fmag', { fmag: '`x' }],
    ['hex size', { size: '0x10' }],
    ['negative size', { size: '-4' }],
    ['size with leading space', { size: ' 4' }],
    ['empty size', { size: '' }],
    ['mode not octal', { mode: '100948' }],
    ['date not decimal', { date: 'yesterday' }],
  ];
  for (const [label, fields] of bad) {
    const deb = await craftDeb({ entries: SAMPLE, members: (m) => [{ ...m[0]!, fields }, m[1]!, m[2]!] });
    await assert.rejects(collect(deb), code('DEB_MALFORMED'), label);
  }
  const badPad = await craftDeb({ entries: SAMPLE, members: (m) => [{ ...m[0]!, data: Buffer.from('2.0\n\n\n') , pad: ' ' }, m[1]!, m[2]!] });
  assert.equal((await collect(badPad)).entries.length, 6); // 6 bytes: even, no padding
  const oddPad = await craftDeb({ entries: SAMPLE, members: (m) => [{ ...m[0]!, data: Buffer.from('2.0\n\n'), pad: '\0' }, m[1]!, m[2]!] });
  await assert.rejects(collect(oddPad), code('DEB_MALFORMED'));
});

test('a truncated .deb is DEB_MALFORMED wherever it is cut', async () => {
  const deb = await craftDeb({ entries: [...SAMPLE, file('./big', Buffer.alloc(200_000, 7).toString('latin1'))], dataCompression: 'none' });
  const cuts = [0, 4, 8, 30, 68, 100, 200, 1000, 5000, deb.length - 100_000, deb.length - 1025, deb.length - 1];
  for (const cut of cuts) {
    await assert.rejects(collect(deb.subarray(0, cut)), code('DEB_MALFORMED'), `cut at ${cut}`);
  }
  // The same through xz and zstd (the decompressor sees a short stream).
  for (const c of ['xz', 'zstd', 'gzip'] as Compression[]) {
    const d = await craftDeb({ entries: SAMPLE, dataCompression: c });
    await assert.rejects(collect(d.subarray(0, d.length - 20)), code('DEB_MALFORMED'), c);
  }
});

test('an ar member claiming more bytes than the file has is refused (up front when the size is known)', async () => {
  const deb = await craftDeb({ entries: SAMPLE, dataCompression: 'none' });
  const lying = await craftDeb({ entries: SAMPLE, dataCompression: 'none', members: (m) => [m[0]!, m[1]!, { ...m[2]!, fields: { size: String(m[2]!.data.length + 4096) } }] });
  assert.equal(lying.length, deb.length);
  await assert.rejects(collect(lying), code('DEB_MALFORMED'));
  let entries = 0;
  await assert.rejects(
    readDeb(Readable.from([lying]), 'lying.deb', { entry: async () => void entries++ }, { size: lying.length }),
    (e: any) => e.code === 'DEB_MALFORMED' && /claims \d+ bytes but only \d+ remain/.test(e.message),
  );
  assert.equal(entries, 0, 'no entry may be handed on from a member that cannot be complete');
  const huge = await craftDeb({ entries: SAMPLE, members: (m) => [m[0]!, { ...m[1]!, fields: { size: '9999999999' } }, m[2]!] });
  await assert.rejects(collect(huge), code('DEB_MALFORMED'));
});

test('a decompressed tar that is truncated, or has entries after its end marker, is DEB_MALFORMED', async () => {
  const whole = await craftTar([...SAMPLE, file('./tail', 'x'.repeat(3000))], { endMarker: false });
  for (const c of ['gzip', 'xz', 'zstd', 'none'] as Compression[]) {
    // Cut inside the last file's data, and cut exactly at the end of the last entry (no end marker).
    await assert.rejects(collect(await craftDeb({ dataTar: whole.subarray(0, whole.length - 700), dataCompression: c })), code('DEB_MALFORMED'), `${c} mid-data`);
    await assert.rejects(collect(await craftDeb({ dataTar: whole, dataCompression: c })), code('DEB_MALFORMED'), `${c} no end marker`);
  }
  // One zero block ends the archive for dpkg and GNU tar: an entry hidden after it is refused.
  const hidden = Buffer.concat([await craftTar(SAMPLE, { endMarker: false }), Buffer.alloc(512), await craftTar([file('./etc/hidden', 'x')])]);
  await assert.rejects(collect(await craftDeb({ dataTar: hidden })), (e: any) => e.code === 'DEB_MALFORMED' && /end-of-archive/.test(e.message));
  // Record padding (zeros) after the end marker is normal.
  const padded = Buffer.concat([await craftTar(SAMPLE), Buffer.alloc(8192)]);
  assert.equal((await collect(await craftDeb({ dataTar: padded }))).entries.length, 6);
  // An empty data.tar (just the end marker) is a valid, empty package.
  assert.equal((await collect(await craftDeb({ dataTar: END_OF_ARCHIVE }))).entries.length, 0);
  // Garbage where a header belongs.
  const garbage = Buffer.concat([await craftTar(SAMPLE, { endMarker: false }), Buffer.alloc(512, 0x41), END_OF_ARCHIVE]);
  await assert.rejects(collect(await craftDeb({ dataTar: garbage })), code('DEB_MALFORMED'));
});

test('corrupt compressed data is DEB_MALFORMED', async () => {
  for (const c of ['gzip', 'xz', 'zstd'] as Compression[]) {
    const member = compress(await craftTar(SAMPLE), c);
    const corrupt = Buffer.from(member);
    for (let i = Math.floor(corrupt.length / 3); i < corrupt.length - 8; i += 7) corrupt[i] = corrupt[i]! ^ 0x5a;
    await assert.rejects(collect(await craftDeb({ entries: SAMPLE, dataCompression: c, dataMember: corrupt })), code('DEB_MALFORMED'), c);
  }
  // gzip data followed by garbage inside the member.
  const trailing = Buffer.concat([gzipSync(await craftTar(SAMPLE)), Buffer.from('garbage')]);
  await assert.rejects(collect(await craftDeb({ entries: SAMPLE, dataMember: trailing })), code('DEB_MALFORMED'));
});

// ------------------------------------------------------------------------------------------------
// Handlers and streams.

test('handlers: control comes first; unread or half-read bodies are discarded; handler errors propagate unchanged', async () => {
  const big = 'z'.repeat(300_000);
  const deb = await craftDeb({ entries: [file('./a', big), file('./b', big), file('./c', 'c!')], dataCompression: 'xz' });
  const seen: string[] = [];
  await readDeb(Readable.from([deb]), 'x', {
    control: async () => {
      await new Promise((r) => setTimeout(r, 5));
      seen.push('control');
    },
    entry: async (e, body) => {
      seen.push(e.path);
      if (e.path === 'b') {
        for await (const c of body!) {
          assert.ok((c as Buffer).length > 0);
          break; // half-read
        }
      }
      if (e.path === 'c') {
        let s = '';
        for await (const c of body!) s += String(c);
        assert.equal(s, 'c!');
      }
    },
  });
  assert.deepEqual(seen, ['control', 'a', 'b', 'c']);

  class Mine extends Error {}
  const input = Readable.from([deb]);
  await assert.rejects(readDeb(input, 'x', { entry: async (e) => { if (e.path === 'b') throw new Mine('stop'); } }), (e) => e instanceof Mine);
  assert.ok(input.destroyed, 'the input is destroyed after an error');
  await assert.rejects(readDeb(Readable.from([deb]), 'x', { control: () => { throw new Mine('no'); } }), (e) => e instanceof Mine);
});

test('input errors propagate unchanged; a slow consumer gets backpressure, not buffering', async () => {
  const deb = await craftDeb({ entries: SAMPLE });
  class Broken extends Error {}
  const failing = new Readable({
    read() {
      this.push(deb.subarray(0, 100));
      this.destroy(new Broken('disk on fire'));
    },
  });
  await assert.rejects(collect(failing), (e) => e instanceof Broken);

  // A 4 MB file read 1 byte-chunk at a time by a handler that waits: memory stays bounded.
  const big = Buffer.alloc(4 * 1024 * 1024, 1);
  const deb2 = await craftDeb({ entries: [file('./big', big.toString('latin1'))], dataCompression: 'none' });
  let got = 0;
  await readDeb(Readable.from([deb2]), 'x', {
    entry: async (_e, body) => {
      for await (const c of body!) {
        got += (c as Buffer).length;
        if (got < 200_000) await new Promise((r) => setImmediate(r));
      }
    },
  });
  assert.equal(got, big.length);
});

test('readDeb never loads a whole data member: chunks reach the handler while the input is still being read', async () => {
  const deb = await craftDeb({ entries: [file('./big', Buffer.alloc(3_000_000, 2).toString('latin1'))], dataCompression: 'none' });
  let sent = 0;
  let sentAtFirstChunk = -1;
  const input = new Readable({
    read() {
      if (sent >= deb.length) return void this.push(null);
      const c = deb.subarray(sent, sent + 65536);
      sent += c.length;
      this.push(c);
    },
  });
  await readDeb(input, 'x', {
    entry: async (_e, body) => {
      for await (const c of body!) {
        if (sentAtFirstChunk < 0) sentAtFirstChunk = sent;
        void c;
      }
    },
  });
  assert.ok(sentAtFirstChunk > 0 && sentAtFirstChunk < deb.length / 2, `first body chunk after ${sentAtFirstChunk} of ${deb.length} bytes`);
});
