// A hostile-input review of what a build runs on a .deb's bytes: the tar reader (both drivers), the
// ar/.deb reader, the sanitiser, the xz paths (shared processes, own child, in process) and staging in
// the worker. Each test feeds crafted bytes through the path a build uses and checks what a user sees:
// a DistillError with its code, bounded work (no hang, however small the compressed input), nothing
// left behind, and the next package unaffected.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { stageInWorker } from '../../src/build/stage-pool.js';
import { stageOptionsOf, stagePackage, type StageRules } from '../../src/build/stage.js';
import { DistillError } from '../../src/errors.js';
import type { LockedPackage } from '../../src/lock/lockfile.js';
import { crc32 } from '../../src/compress/xz-format.js';
import { readDeb } from '../../src/rootfs/deb.js';
import { LayerTree } from '../../src/rootfs/tree.js';
import { LONG_HEADERS_TOTAL_MAX, TRAILER_MAX, readTar, readTarSync, type ReadTarOptions } from '../../src/tar/reader.js';
import { END_OF_ARCHIVE, arArchive, compress, craftDeb, craftTar, dir, file, gnuLong, packageControl, rawEntry, rawHeader, type Compression } from '../helpers/craft-deb.js';
import { staging, type Staging } from '../helpers/stage-debs.js';

const haveXz = spawnSync('xz', ['--version']).status === 0;
const malformed = (message: string, cause?: unknown): DistillError => new DistillError('DEB_MALFORMED', message, { cause });
const OPTS: ReadTarOptions = { what: 'bomb.tar', malformed };
const IMAGE: StageRules = { kind: 'image', paths: { keep: [], drop: [], setid: [] } };

/** `head`, then `block` repeated `times` (lazily: nothing is held), then `tail`; counts what was read. */
function repeated(head: Buffer, block: Buffer, times: number, tail: Buffer = Buffer.alloc(0)): Readable & { served: number } {
  let i = -1;
  const r = new Readable({
    read() {
      const c = i < 0 ? head : i < times ? block : i === times ? tail : null;
      i++;
      if (c !== null) r.served += c.length;
      this.push(c);
    },
  }) as Readable & { served: number };
  r.served = 0;
  return r;
}

async function bothDrivers(make: () => Readable & { served: number }): Promise<{ errors: unknown[]; served: number[] }> {
  const errors: unknown[] = [];
  const served: number[] = [];
  for (const drive of [
    (s: Readable) => readTar(s, OPTS, async () => {}),
    (s: Readable) => readTarSync(s, OPTS, () => undefined),
  ]) {
    const s = make();
    errors.push(await drive(s).then(() => undefined, (e: unknown) => e));
    served.push(s.served);
  }
  return { errors, served };
}

function lockedOf(name: string, bytes: Buffer): LockedPackage {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return { name, version: '1.0-1', architecture: 'amd64', source: name, sourceVersion: '1.0-1', archive: 'crafted', filename: `pool/${name}_1.0-1_amd64.deb`, size: bytes.length, sha256, depends: [] };
}

async function store(s: Staging, name: string, bytes: Buffer): Promise<LockedPackage> {
  const pkg = lockedOf(name, bytes);
  await s.store.put({ sha256: pkg.sha256, size: pkg.size, what: name }, Readable.from([bytes]));
  return pkg;
}

/** The package staged as the build stages it (in the worker) and in process: both outcomes. */
async function stageBoth(s: Staging, pkg: LockedPackage): Promise<[unknown, unknown]> {
  const pooled = await stageInWorker(pkg, { store: s.store, stageDir: s.stageDir, rules: IMAGE }).then((r) => r, (e: unknown) => e);
  const local = await stagePackage(pkg, { store: s.store, stageDir: s.stageDir, ...stageOptionsOf(IMAGE) }).then((r) => r, (e: unknown) => e);
  return [pooled, local];
}

function isCode(e: unknown, code: string, message?: RegExp): boolean {
  return e instanceof DistillError && e.code === code && (message === undefined || message.test(e.message)) && !e.message.includes('\n');
}

test('zeros after the end-of-archive marker are read up to TRAILER_MAX, then refused (a small .xz can decode to terabytes of them)', { timeout: 30_000 }, async () => {
  const tar = await craftTar([file('./a', 'a')]);
  // Record padding (GNU tar's 10 KiB, a few MiB with -b) still reads.
  for (const pad of [0, 10240 - 1024, 4 << 20]) {
    const r = await bothDrivers(() => repeated(tar, Buffer.alloc(512), pad / 512));
    assert.deepEqual(r.errors, [undefined, undefined], `${pad} bytes of padding`);
  }
  const blocks = 2 ** 40 / 512; // a terabyte, never produced
  const r = await bothDrivers(() => repeated(tar, Buffer.alloc(512), blocks));
  for (const e of r.errors) assert.ok(isCode(e, 'DEB_MALFORMED', /more than 16777216 bytes after the end-of-archive marker/), String(e));
  for (const n of r.served) assert.ok(n < TRAILER_MAX + (1 << 20), `read ${n} bytes before refusing`);
});

test('long-name and pax headers are capped in total, not only each (a flood of them precedes no entry)', { timeout: 30_000 }, async () => {
  const L = gnuLong('L', './' + 'n'.repeat(4 * 1024 * 1024 - 8));
  const pax = rawEntry({ name: 'x', typeflag: 'x' }, '4194304 comment=' + 'c'.repeat(4194304 - 17) + '\n');
  for (const flood of [L, pax]) {
    const r = await bothDrivers(() => repeated(Buffer.alloc(0), flood, 100_000, END_OF_ARCHIVE));
    for (const e of r.errors) assert.ok(isCode(e, 'DEB_MALFORMED', /bytes of long-name and pax headers/), String(e));
    for (const n of r.served) assert.ok(n < LONG_HEADERS_TOTAL_MAX + 3 * flood.length, `read ${n} bytes before refusing`);
  }
  // An archive with a long name per entry, as dpkg-deb writes one, is far under the cap.
  const many: Buffer[] = [];
  for (let i = 0; i < 2000; i++) many.push(gnuLong('L', `./usr/share/${'d'.repeat(150)}/${i}`), rawEntry({ name: `./x${i}`, typeflag: '0' }, 'x'));
  let n = 0;
  await readTarSync(Readable.from([Buffer.concat([...many, END_OF_ARCHIVE])]), OPTS, () => void n++);
  assert.equal(n, 2000);
});

test('control.tar: an entry skipped unread is held to the control-file limit, and all of them together', { timeout: 30_000 }, async () => {
  // A control.tar (uncompressed, streamed) whose postinst claims 8 GB: refused at its header, not read.
  const head = Buffer.concat([rawEntry({ name: './control', typeflag: '0' }, packageControl({ name: 'bomb' })), rawHeader({ name: './postinst', typeflag: '0', size: 8_000_000_000 })]);
  const ar = arArchive([{ name: 'debian-binary', data: Buffer.from('2.0\n') }]);
  const memberHeader = Buffer.from('control.tar'.padEnd(16) + '0'.padEnd(12) + '0'.padEnd(6) + '0'.padEnd(6) + '100644'.padEnd(8) + '9999999998'.padEnd(10) + '`\n', 'latin1');
  const input = repeated(Buffer.concat([ar, memberHeader, head]), Buffer.alloc(1 << 20), 9000);
  await assert.rejects(
    readDeb(input, 'bomb.deb', {}),
    (e: unknown) => isCode(e, 'DEB_MALFORMED', /bomb\.deb: control\.tar: "\.\/postinst" is 8000000000 bytes \(the limit is 67108864\)/),
  );
  assert.ok(input.served < 4 << 20, `read ${input.served} bytes before refusing`);
  // Many entries each under the limit, adding up past the total: refused once the sum passes it.
  const parts: Buffer[] = [rawEntry({ name: './control', typeflag: '0' }, packageControl({ name: 'bomb' }))];
  const scripts = 5;
  const block = Buffer.alloc(1 << 20);
  const gen = async function* (): AsyncGenerator<Buffer> {
    yield Buffer.concat([ar, Buffer.from('control.tar'.padEnd(16) + '0'.padEnd(12) + '0'.padEnd(6) + '0'.padEnd(6) + '100644'.padEnd(8) + '9999999998'.padEnd(10) + '`\n', 'latin1'), ...parts]);
    for (let i = 0; i < scripts; i++) {
      yield rawHeader({ name: `./script${i}`, typeflag: '0', size: 60 << 20 });
      for (let k = 0; k < 60; k++) yield block;
    }
  };
  await assert.rejects(readDeb(Readable.from(gen()), 'bomb.deb', {}), (e: unknown) => isCode(e, 'DEB_MALFORMED', /control\.tar's entries add up to more than 268435456/));
  // An honest control.tar with scripts, symbols and triggers still reads.
  const honest = await craftDeb({ control: packageControl({ name: 'ok' }), controlFiles: { postinst: '#!/bin/sh\n', symbols: 'libx.so.1 libx1 #MINVER#\n', triggers: 'activate-noawait ldconfig\n' }, entries: [dir('./')] });
  await readDeb(Readable.from([honest]), 'ok.deb', {});
});

test('an owner name with a NUL or control character (a pax uname/gname) is UNSAFE_ENTRY naming the package, not a layer error later', async () => {
  const s = staging();
  for (const [key, value] of [['uname', 'ro\0ot'], ['gname', 'wheel\n'], ['uname', 'a\x1b[31m']] as const) {
    const record = ` ${key}=${value}\n`;
    let len = record.length + 2;
    if (String(len).length + record.length !== len) len += 1;
    const tar = await craftTar([dir('./'), { raw: rawEntry({ name: 'x', typeflag: 'x' }, `${len}${record}`) }, { raw: rawEntry({ name: './usr/bin/tool', typeflag: '0', mode: 0o755 }, 'x') }]);
    const pkg = await store(s, 'owner', await craftDeb({ control: packageControl({ name: 'owner' }), dataTar: tar }));
    for (const e of await stageBoth(s, pkg)) {
      assert.ok(isCode(e, 'UNSAFE_ENTRY', /^owner 1\.0-1 \(pool\/owner_1\.0-1_amd64\.deb\): "\.\/usr\/bin\/tool": owner name .* contains a NUL or control character$/), `${key}=${JSON.stringify(value)}: ${String(e)}`);
    }
  }
  // Long and non-ASCII owner names are kept (the layer writer puts them in pax records).
  const tar = await craftTar([dir('./'), { header: { name: './usr/bin/tool', mode: 0o755, pax: { uname: 'u'.repeat(40), gname: 'gr\u00fcppe' } }, body: 'x' }]);
  const pkg = await store(s, 'owner2', await craftDeb({ control: packageControl({ name: 'owner2' }), dataTar: tar }));
  const [pooled] = await stageBoth(s, pkg);
  const tool = (pooled as { entries: { path: string; uname: string; gname: string }[] }).entries.find((e) => e.path === 'usr/bin/tool');
  assert.deepEqual([tool?.uname, tool?.gname], ['u'.repeat(40), 'gr\u00fcppe']);
});

test('a data.tar.xz bomb (zeros after the end marker) is refused in the build’s staging, through the shared xz processes and a child of its own', { skip: !haveXz && 'xz is not installed', timeout: 60_000 }, async () => {
  const s = staging();
  const control = packageControl({ name: 'zbomb' });
  const tar = Buffer.concat([await craftTar([dir('./'), file('./usr/bin/z', 'z')]), Buffer.alloc(TRAILER_MAX + (1 << 20))]);
  // Small: the shared processes take it; with incompressible filler in front: a child of its own.
  const noise: Buffer[] = [];
  for (let i = 0; noise.length < 40_000; i++) noise.push(createHash('sha256').update(`noise ${i}`).digest());
  const filler = file('./usr/share/filler', Buffer.concat(noise));
  const big = Buffer.concat([await craftTar([dir('./'), filler, file('./usr/bin/z', 'z')]), Buffer.alloc(TRAILER_MAX + (1 << 20))]);
  for (const [label, data] of [['shared', tar], ['own child', big]] as const) {
    const member = compress(data, 'xz');
    assert.equal(label === 'shared', member.length < 1 << 20, `${label}: ${member.length} bytes compressed`);
    const pkg = await store(s, 'zbomb', await craftDeb({ control, dataCompression: 'xz', dataMember: member }));
    for (const e of await stageBoth(s, pkg)) assert.ok(isCode(e, 'DEB_MALFORMED', /after the end-of-archive marker/), `${label}: ${String(e)}`);
  }
  // The next package stages normally.
  const ok = await store(s, 'fine', await craftDeb({ control: packageControl({ name: 'fine' }), dataCompression: 'xz', entries: [dir('./'), file('./usr/bin/fine', 'fine')] }));
  for (const r of await stageBoth(s, ok)) assert.ok(!(r instanceof Error), String(r));
});

test('the same data.tar in every compression, and xz as concatenated Streams with padding, stages the same; bad Stream Padding, trailing bytes or a truncated second Stream are DEB_MALFORMED', { skip: !haveXz && 'xz is not installed', timeout: 60_000 }, async () => {
  const s = staging();
  const tar = await craftTar([dir('./'), dir('./usr/'), dir('./usr/bin/'), file('./usr/bin/a', 'a'.repeat(5000)), file('./usr/bin/b', Buffer.alloc(70_000, 1))]);
  const summaries: string[] = [];
  const stageAs = async (label: string, kind: Compression, member: Buffer): Promise<[unknown, unknown]> => {
    const name = `c-${summaries.length}`;
    const pkg = await store(s, name, await craftDeb({ control: packageControl({ name }), dataCompression: kind, dataMember: member }));
    void label;
    return stageBoth(s, pkg);
  };
  const shape = (r: unknown): string => JSON.stringify((r as { entries: { path: string; size: number; body?: { sha256: string } }[] }).entries.map((e) => [e.path, e.size, e.body?.sha256]));
  const half = 3 * 512;
  const twoStreams = Buffer.concat([compress(tar.subarray(0, half), 'xz'), Buffer.alloc(8), compress(tar.subarray(half), 'xz'), Buffer.alloc(4)]);
  for (const [label, kind, member] of [
    ['none', 'none', tar],
    ['gzip', 'gzip', compress(tar, 'gzip')],
    ['xz', 'xz', compress(tar, 'xz')],
    ['zstd', 'zstd', compress(tar, 'zstd')],
    ['xz, two Streams and padding', 'xz', twoStreams],
  ] as const) {
    const [pooled, local] = await stageAs(label, kind, member);
    assert.ok(!(pooled instanceof Error), `${label}: ${String(pooled)}`);
    assert.equal(shape(pooled), shape(local), label);
    summaries.push(shape(pooled));
  }
  assert.equal(new Set(summaries).size, 1, 'every compression stages the same entries and bodies');
  const xz = compress(tar, 'xz');
  const badPadding = Buffer.concat([xz, Buffer.alloc(3)]);
  const trailing = Buffer.concat([xz, Buffer.from('junk')]);
  const secondTruncated = Buffer.concat([xz, xz.subarray(0, xz.length - 1)]);
  for (const [label, member] of [['padding not a multiple of four', badPadding], ['trailing bytes', trailing], ['a truncated second Stream', secondTruncated]] as const) {
    for (const e of await stageAs(label, 'xz', member)) assert.ok(isCode(e, 'DEB_MALFORMED'), `${label}: ${String(e)}`);
  }
});

test('staging leaves no xz process behind once its pool is idle, however its members failed', { skip: !haveXz && 'xz is not installed', timeout: 60_000 }, async () => {
  const s = staging();
  const tar = await craftTar([dir('./'), file('./usr/bin/a', 'a')]);
  const xz = compress(tar, 'xz');
  const corrupt = Buffer.from(xz);
  corrupt[Math.floor(corrupt.length / 2)]! ^= 0x55;
  const pkgs = [
    await store(s, 'good1', await craftDeb({ control: packageControl({ name: 'good1' }), dataCompression: 'xz', dataMember: xz })),
    await store(s, 'bad', await craftDeb({ control: packageControl({ name: 'bad' }), dataCompression: 'xz', dataMember: corrupt })),
    await store(s, 'good2', await craftDeb({ control: packageControl({ name: 'good2' }), dataCompression: 'xz', dataMember: xz })),
  ];
  const results = await Promise.all(pkgs.map((p) => stagePackage(p, { store: s.store, stageDir: s.stageDir, ...stageOptionsOf(IMAGE) }).then((r) => r, (e: unknown) => e)));
  assert.ok(!(results[0] instanceof Error) && !(results[2] instanceof Error), 'the good ones stage');
  assert.ok(isCode(results[1], 'DEB_MALFORMED'), String(results[1]));
  // The shared processes end IDLE_MS (5 s) after their last member.
  const children = (): number[] => {
    const r = spawnSync('pgrep', ['-P', String(process.pid), '-x', 'xz'], { encoding: 'utf8' });
    return r.stdout.split('\n').filter(Boolean).map(Number);
  };
  for (let i = 0; i < 100 && children().length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(children(), [], 'no xz process outlives its idle time');
  void readdirSync;
});

test('control.tar: a non-file entry with data (readers disagree on whether it has any) is DEB_MALFORMED, whatever its name', async () => {
  const ctl = packageControl({ name: 'hide' });
  // A hardlink whose "data" is a second control file: GNU tar lists that control file, this reader skipped it.
  const hidden = rawEntry({ name: './control', typeflag: '0' }, packageControl({ name: 'other' }));
  for (const [typeflag, name] of [['1', './x'], ['2', './x'], ['5', './dir/'], ['6', './fifo']] as const) {
    const controlTar = Buffer.concat([rawEntry({ name: './control', typeflag: '0' }, ctl), rawHeader({ name, typeflag, size: hidden.length, linkname: typeflag === '1' || typeflag === '2' ? './control' : '' }), hidden, END_OF_ARCHIVE]);
    const deb = await craftDeb({ control: ctl, entries: [dir('./')], members: (ms) => ms.map((m) => (m.name.startsWith('control.tar') ? { name: 'control.tar', data: controlTar } : m)) });
    await assert.rejects(readDeb(Readable.from([deb]), 'hide.deb', {}), (e: unknown) => isCode(e, 'DEB_MALFORMED', new RegExp(`control\\.tar: "${name.replace(/[./]/g, '\\$&')}" is a \\S+ with ${hidden.length} bytes of data`)), `typeflag ${typeflag}`);
  }
});

/** `member` with its first Index record's Uncompressed Size moved by `delta` and the Index CRC32 fixed: only xz's own check can tell. */
function lyingIndex(member: Buffer, delta: number): Buffer {
  const b = Buffer.from(member);
  const footer = b.length - 12;
  const index = footer - (b.readUInt32LE(footer + 4) + 1) * 4;
  let at = index + 2; // Index Indicator, Number of Records (< 128: one byte)
  while (b[at]! & 0x80) at++; // Unpadded Size
  at++;
  b[at] = (b[at]! & 0x80) | (((b[at]! & 0x7f) + delta) & 0x7f);
  let c = 0xffffffff;
  for (let i = index; i < footer - 4; i++) {
    c ^= b[i]!;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  b.writeUInt32LE((c ^ 0xffffffff) >>> 0, footer - 4);
  return b;
}

test('packages staged at once through the shared xz processes: a lying Index, a corrupt Block or a member in the wrong compression fails its own package only', { skip: !haveXz && 'xz is not installed', timeout: 60_000 }, async () => {
  const s = staging();
  const body = (seed: number, n: number): Buffer => {
    const parts: Buffer[] = [];
    for (let i = 0; parts.length * 32 < n; i++) parts.push(createHash('sha256').update(`${seed}/${i}`).digest());
    return Buffer.concat(parts).subarray(0, n);
  };
  const tarOf = (seed: number): Promise<Buffer> => craftTar([dir('./'), dir('./usr/'), dir('./usr/lib/'), file(`./usr/lib/f${seed}`, body(seed, 100_000 + seed * 1000)), file(`./usr/lib/g${seed}`, 'small')]);
  const xzOf = async (seed: number): Promise<Buffer> => compress(await tarOf(seed), 'xz');
  const corrupt = Buffer.from(await xzOf(3));
  corrupt[Math.floor(corrupt.length / 2)]! ^= 0x55;
  const specs: [string, Buffer | undefined, Compression, Buffer][] = [
    ['good0', await tarOf(0), 'xz', await xzOf(0)],
    ['liar-low', undefined, 'xz', lyingIndex(await xzOf(1), -1)],
    ['good2', await tarOf(2), 'xz', await xzOf(2)],
    ['corrupt', undefined, 'xz', corrupt],
    ['liar-high', undefined, 'xz', lyingIndex(await xzOf(4), +1)],
    ['gzip-as-xz', undefined, 'xz', compress(await tarOf(5), 'gzip')],
    ['xz-as-gzip', undefined, 'gzip', await xzOf(6)],
    ['xz-as-plain', undefined, 'none', await xzOf(7)],
    ['good8', await tarOf(8), 'xz', await xzOf(8)],
  ];
  const pkgs = await Promise.all(specs.map(async ([name, , kind, member]) => store(s, name, await craftDeb({ control: packageControl({ name }), dataCompression: kind, dataMember: member }))));
  const results = await Promise.all(pkgs.map((p) => stageInWorker(p, { store: s.store, stageDir: s.stageDir, rules: IMAGE }).then((r) => r, (e: unknown) => e)));
  specs.forEach(([name, tar], i) => {
    const r = results[i];
    if (tar === undefined) {
      assert.ok(isCode(r, 'DEB_MALFORMED', new RegExp(`^${name} 1\\.0-1 \\(pool/${name}_1\\.0-1_amd64\\.deb\\): data\\.tar`)), `${name}: ${String(r)}`);
      return;
    }
    assert.ok(!(r instanceof Error), `${name}: ${String(r)}`);
    const staged = r as { entries: { path: string; body?: { sha256: string } }[] };
    const seed = Number(name.slice(4));
    const want = createHash('sha256').update(body(seed, 100_000 + seed * 1000)).digest('hex');
    assert.equal(staged.entries.find((e) => e.path === `usr/lib/f${seed}`)?.body?.sha256, want, `${name}: its own bytes, exactly`);
  });
});

test('data.tar: more than a million entries is DEB_MALFORMED before they exhaust the heap (every directory is kept)', { timeout: 60_000 }, async () => {
  const control = compress(await craftTar([file('./control', packageControl({ name: 'many' }))]), 'gzip');
  const head = arArchive([{ name: 'debian-binary', data: Buffer.from('2.0\n') }, { name: 'control.tar.gz', data: control }]);
  const n = 1_000_001;
  const member = Buffer.from('data.tar'.padEnd(16) + '0'.padEnd(12) + '0'.padEnd(6) + '0'.padEnd(6) + '100644'.padEnd(8) + String(n * 512 + 1024).padEnd(10) + '`\n', 'latin1');
  const batch = Buffer.concat(Array.from({ length: 1000 }, () => rawHeader({ name: './usr/', typeflag: '5', mode: 0o755 })));
  let kept = 0;
  await assert.rejects(
    readDeb(repeated(Buffer.concat([head, member]), batch, n / 1000 + 1, END_OF_ARCHIVE), 'many.deb', {
      entrySync: () => {
        kept++;
        return undefined;
      },
    }),
    (e: unknown) => isCode(e, 'DEB_MALFORMED', /^many\.deb: data\.tar: more than 1000000 entries$/),
  );
  assert.equal(kept, 1_000_000);
});

test('a decompressor’s failure names the package and member once', { skip: !haveXz && 'xz is not installed' }, async () => {
  const tar = await craftTar([dir('./'), file('./a', 'a'.repeat(5000))]);
  for (const kind of ['xz', 'zstd'] as const) {
    const member = Buffer.concat([compress(tar, kind), Buffer.from('junk')]);
    const deb = await craftDeb({ control: packageControl({ name: 'once' }), dataCompression: kind, dataMember: member });
    await assert.rejects(readDeb(Readable.from([deb]), 'once.deb', { entrySync: () => undefined }), (e: unknown) => {
      assert.ok(isCode(e, 'DEB_MALFORMED'), String(e));
      const m = (e as Error).message;
      assert.match(m, new RegExp(`^once\\.deb: data\\.tar\\.${kind === 'xz' ? 'xz' : 'zst'}: ${kind}`), m);
      assert.equal(m.split('once.deb').length, 2, m);
      return true;
    });
  }
});

test('an xz member with a Check ID xz does not support is refused however large (in process, shared processes, a child of its own)', { skip: !haveXz && 'xz is not installed', timeout: 60_000 }, async () => {
  const noise = (n: number): Buffer => {
    const parts: Buffer[] = [];
    for (let i = 0; parts.length * 32 < n; i++) parts.push(createHash('sha256').update(`c${i}`).digest());
    return Buffer.concat(parts).subarray(0, n);
  };
  /** An xz Stream with CRC32 checks (4 bytes) relabelled as reserved Check ID 0x02 (also 4 bytes), CRCs fixed. */
  const relabelled = (x: Buffer): Buffer => {
    const b = Buffer.from(x);
    b[7] = 0x02;
    b.writeUInt32LE(crc32(b, 6, 8), 8);
    const f = b.length - 12;
    b[f + 9] = 0x02;
    b.writeUInt32LE(crc32(b, f + 4, f + 10), f);
    return b;
  };
  for (const n of [2000, 700_000, 2_000_000]) {
    const tar = await craftTar([dir('./'), file('./usr/lib/blob', noise(n))]);
    const good = compress(tar, 'xz');
    const bad = relabelled(Buffer.from(spawnSync('xz', ['-c', '--check=crc32'], { input: tar, maxBuffer: 1 << 28 }).stdout));
    for (const [label, member] of [['one Stream', bad], ['a good Stream, then one with the reserved check', Buffer.concat([compress(Buffer.alloc(0), 'xz'), bad])]] as const) {
      const deb = await craftDeb({ control: packageControl({ name: 'chk' }), dataCompression: 'xz', dataMember: member });
      await assert.rejects(
        readDeb(Readable.from([deb]), 'chk.deb', { entrySync: () => undefined }),
        (e: unknown) => isCode(e, 'DEB_MALFORMED', /^chk\.deb: data\.tar\.xz: xz.*the integrity check type is not supported$/),
        `${label}, ${member.length} bytes`,
      );
    }
    // The same data with a known check reads.
    await readDeb(Readable.from([await craftDeb({ control: packageControl({ name: 'chk' }), dataCompression: 'xz', dataMember: good })]), 'chk.deb', { entrySync: () => undefined });
  }
});

test('a .deb’s control field quoted in an error carries no escape sequence or line break to the terminal', async () => {
  const s = staging();
  for (const [field, value] of [['Package', 'esc\x1b[2J\x1b]0;owned\x07'], ['Version', '1.0-1\u202e'], ['Architecture', 'amd64\u0085x']] as const) {
    const control = packageControl({ name: 'esc' }).replace(new RegExp(`^${field}: .*$`, 'm'), `${field}: ${value}`);
    const bytes = await craftDeb({ control, entries: [dir('./')] });
    const pkg = { ...lockedOf('esc', bytes) };
    await s.store.put({ sha256: pkg.sha256, size: pkg.size, what: 'esc' }, Readable.from([bytes]));
    for (const e of await stageBoth(s, pkg)) {
      assert.ok(isCode(e, 'LOCK_INVALID'), String(e));
      const m = (e as Error).message;
      assert.match(m, /^[\x20-\x7e]*$/, 'printable ASCII only');
      const quoted = JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
      assert.ok(m.includes(`says ${field}: ${quoted}, the lock says`), m);
    }
  }
});

test('a staging file that cannot be written (its directory gone) is CACHE_IO, not an internal error', async () => {
  const s = staging();
  const pkg = await store(s, 'io', await craftDeb({ control: packageControl({ name: 'io' }), entries: [dir('./'), file('./usr/bin/io', 'io')] }));
  const gone = s.stageDir + '-gone';
  const pooled = await stageInWorker(pkg, { store: s.store, stageDir: gone, rules: IMAGE }).then((r) => r, (e: unknown) => e);
  const local = await stagePackage(pkg, { store: s.store, stageDir: gone, ...stageOptionsOf(IMAGE) }).then((r) => r, (e: unknown) => e);
  for (const e of [pooled, local]) assert.ok(isCode(e, 'CACHE_IO', /ENOENT/) && (e as DistillError).hint !== undefined, String(e));
});

test('deep paths (2,000 components, 4 KiB) cost their new components, not their depth: staging and the layer tree stay fast', { timeout: 120_000 }, async () => {
  const s = staging();
  const deep = (top: string, leaf: string): string => `./${top}/${'d/'.repeat(1990)}${leaf}`;
  const items = [dir('./')];
  // Many entries in one deep directory, and a few deep paths each with a directory chain of its own.
  for (let i = 0; i < 6000; i++) items.push({ raw: rawEntry({ name: 'x', typeflag: 'x' }, paxPath(deep('usr/lib', `f${i}/`))) }, { raw: rawHeader({ name: 'placeholder', typeflag: '5', mode: 0o755 }) });
  for (let i = 0; i < 40; i++) items.push({ raw: rawEntry({ name: 'x', typeflag: 'x' }, paxPath(deep(`usr/lib/t${i}`, 'leaf/'))) }, { raw: rawHeader({ name: 'placeholder', typeflag: '5', mode: 0o755 }) });
  const pkg = await store(s, 'deep', await craftDeb({ control: packageControl({ name: 'deep' }), dataCompression: 'xz', entries: items }));
  const started = Date.now();
  const staged = await stageInWorker(pkg, { store: s.store, stageDir: s.stageDir, rules: IMAGE });
  const tree = new LayerTree({ mergedUsr: true, replaces: () => false });
  for (const e of staged.entries) tree.add(e);
  tree.addMissingParents('distill:test', 0);
  // Walking every ancestor of every entry took ~20 ms an entry here (minutes for this package, hours
  // for one with 65,000 such entries); each new component once takes well under a second in all.
  assert.ok(Date.now() - started < 60_000, `staged and assembled in ${Date.now() - started} ms`);
  assert.ok(tree.has(deep('usr/lib', 'f5999').slice(2, -1)), 'the deep directory is there');
  assert.ok(tree.has(`usr/lib/t39/${'d/'.repeat(1989)}d`), 'an implied parent is there');
});

test('a package whose deep paths imply directories of more than 256 Mi characters in all is UNSAFE_ENTRY', { timeout: 120_000 }, async () => {
  const parts: Buffer[] = [];
  for (let i = 0; i < 1100; i++) parts.push(rawEntry({ name: 'x', typeflag: 'x' }, paxPath(`./t${i}/${'d/'.repeat(1990)}leaf/`)), rawHeader({ name: 'placeholder', typeflag: '5', mode: 0o755 }));
  const deb = await craftDeb({ control: packageControl({ name: 'wide' }), dataTar: Buffer.concat([...parts, END_OF_ARCHIVE]) });
  await assert.rejects(
    readDeb(Readable.from([deb]), 'wide.deb', { entrySync: () => undefined }),
    (e: unknown) => isCode(e, 'UNSAFE_ENTRY', /the package names more than 2000000 paths or 268435456 characters of them/),
  );
});

/** A pax extended header body setting `path`. */
function paxPath(path: string): string {
  const record = ` path=${path}\n`;
  let n = record.length + 1;
  while (String(n).length + record.length !== n) n++;
  return `${n}${record}`;
}

test('an xz Block asking for a dictionary over 80 MiB fails alike in process, in the shared processes and in a child of its own', { skip: !haveXz && 'xz is not installed', timeout: 60_000 }, async () => {
  const noise = (n: number): Buffer => {
    const parts: Buffer[] = [];
    for (let i = 0; parts.length * 32 < n; i++) parts.push(createHash('sha256').update(`m${i}`).digest());
    return Buffer.concat(parts).subarray(0, n);
  };
  /** The first Block Header's LZMA2 dictionary property set to 32 (256 MiB), its CRC32 fixed: the data decodes the same. */
  const hugeDictionary = (x: Buffer): Buffer => {
    const b = Buffer.from(x);
    const size = (b[12]! + 1) * 4; // Block Header Size
    const flags = b[13]!;
    assert.equal(flags & 0x03, 0, 'one filter');
    let at = 14;
    if (flags & 0x40) while (b[at++]! & 0x80); // Compressed Size
    if (flags & 0x80) while (b[at++]! & 0x80); // Uncompressed Size
    assert.deepEqual([b[at], b[at + 1]], [0x21, 0x01], 'LZMA2, one property byte');
    b[at + 2] = 32;
    b.writeUInt32LE(crc32(b, 12, 12 + size - 4), 12 + size - 4);
    return b;
  };
  for (const n of [2000, 700_000, 2_000_000]) {
    const tar = await craftTar([dir('./'), file('./usr/lib/blob', noise(n))]);
    const member = hugeDictionary(compress(tar, 'xz'));
    const deb = await craftDeb({ control: packageControl({ name: 'dict' }), dataCompression: 'xz', dataMember: member });
    await assert.rejects(readDeb(Readable.from([deb]), 'dict.deb', { entrySync: () => undefined }), (e: unknown) => isCode(e, 'DEB_MALFORMED', /^dict\.deb: data\.tar\.xz: xz.*[Mm]emory/), `${member.length} bytes`);
  }
});

test('a benign ustar name overridden by a pax path or GNU long name is judged by the override (.., absolute, NUL, aliasing a file as a directory)', async () => {
  const s = staging();
  const cases: [string, Buffer[], RegExp][] = [
    ['pax path ..', [rawEntry({ name: 'x', typeflag: 'x' }, paxPath('./usr/../../etc/passwd')), rawEntry({ name: './usr/bin/ok', typeflag: '0' }, 'x')], /has a '\.\.' component/],
    ['pax path absolute', [rawEntry({ name: 'x', typeflag: 'x' }, paxPath('/etc/shadow')), rawEntry({ name: './usr/bin/ok', typeflag: '0' }, 'x')], /absolute path/],
    ['pax path with NUL', [rawEntry({ name: 'x', typeflag: 'x' }, paxPath('./usr/bin/a\0/../../x')), rawEntry({ name: './usr/bin/ok', typeflag: '0' }, 'x')], /NUL or control character/],
    ['GNU long name ..', [gnuLong('L', '../outside'), rawEntry({ name: './usr/bin/ok', typeflag: '0' }, 'x')], /has a '\.\.' component/],
    ['pax linkpath of a hardlink ..', [rawEntry({ name: './usr/bin/t', typeflag: '0' }, 't'), rawEntry({ name: 'x', typeflag: 'x' }, paxPath('../../usr/bin/t').replace('path=', 'linkpath=').replace(/^\d+/, (n) => String(Number(n) + 4))), rawEntry({ name: './usr/bin/h', typeflag: '1', linkname: './usr/bin/t' })], /hardlink target .* has a '\.\.' component/],
    ['a file, then a directory of the same path spelled ./usr//bin/x/.', [rawEntry({ name: './usr/bin/x', typeflag: '0' }, 'x'), rawEntry({ name: 'x', typeflag: 'x' }, paxPath('./usr//bin/x/.')), rawEntry({ name: './dir/', typeflag: '5' })], /appears twice, as a file and as a dir/],
  ];
  for (const [label, entries, message] of cases) {
    const tar = Buffer.concat([await craftTar([dir('./')], { endMarker: false }), ...entries, END_OF_ARCHIVE]);
    const name = `ovr${cases.findIndex((c) => c[0] === label)}`;
    const pkg = await store(s, name, await craftDeb({ control: packageControl({ name }), dataTar: tar }));
    for (const e of await stageBoth(s, pkg)) assert.ok(isCode(e, 'UNSAFE_ENTRY', message), `${label}: ${String(e)}`);
  }
});
