// A differential fuzz of the tar reader's two drivers and the sanitiser behind them (src/tar/reader.ts,
// src/rootfs/sanitize.ts): seeded, bounded mutations of an honest archive (bytes flipped in headers,
// numeric fields rewritten, blocks cut, duplicated, dropped or swapped, extended headers and zero
// blocks inserted) are read by readTar and readTarSync, each fed the bytes in its own random chunk
// sizes, every entry sanitised as readDeb does. Both must accept alike (the same sanitised entries and
// bodies) or refuse alike (the same code and message), always with a DistillError, never a hang.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { DistillError } from '../../src/errors.js';
import { readDeb, type DebControl } from '../../src/rootfs/deb.js';
import type { FsEntry } from '../../src/rootfs/entry.js';
import { EntrySanitizer } from '../../src/rootfs/sanitize.js';
import { readTar, readTarSync, type ReadTarOptions } from '../../src/tar/reader.js';
import { craftDeb, craftTar, gnuLong, rawEntry, rawHeader } from '../helpers/craft-deb.js';

const malformed = (message: string, cause?: unknown): DistillError => new DistillError('DEB_MALFORMED', message, { cause });

/** mulberry32: a small seeded generator, so that a failure names the seed that reproduces it. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `buf` as a stream cut at random points (1 byte up to a few blocks, sometimes everything at once). */
function randomChunks(buf: Buffer, rand: () => number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; ) {
    const r = rand();
    const n = r < 0.1 ? 1 : r < 0.2 ? 512 : r < 0.25 ? buf.length : 1 + Math.floor(rand() * 2000);
    parts.push(buf.subarray(i, i + n));
    i += n;
  }
  return Readable.from(parts);
}

type Outcome = { ok: true; entries: string[] } | { ok: false; code: string; message: string };

const LIMITS = { maxEntrySize: 1 << 20, maxTotalSize: 4 << 20 };

function opts(): ReadTarOptions {
  return { what: 'fuzz.tar', member: 'data.tar', malformed, maxEntries: 200 };
}

/** What one sanitised entry is, with its body's digest. */
function describe(e: NonNullable<ReturnType<EntrySanitizer['sanitize']>>, digest: string): string {
  return JSON.stringify([e.path, e.type, e.mode, e.uid, e.gid, e.uname, e.gname, e.size, e.mtime, e.linkTarget ?? null, digest]);
}

function outcomeOf(e: unknown): Outcome {
  if (!(e instanceof DistillError)) throw new Error(`not a DistillError: ${(e as Error)?.stack ?? String(e)}`);
  return { ok: false, code: e.code, message: e.message };
}

async function viaAsync(tar: Buffer, rand: () => number): Promise<Outcome> {
  const sanitizer = new EntrySanitizer('fuzz.tar', LIMITS);
  const entries: string[] = [];
  try {
    await readTar(randomChunks(tar, rand), opts(), async (raw, body) => {
      const e = sanitizer.sanitize(raw);
      if (e === undefined) return;
      const h = createHash('sha256');
      if (e.type === 'file') for await (const c of body()) h.update(c as Buffer);
      entries.push(describe(e, h.digest('hex')));
    });
  } catch (e) {
    return outcomeOf(e);
  }
  return { ok: true, entries };
}

async function viaSync(tar: Buffer, rand: () => number): Promise<Outcome> {
  const sanitizer = new EntrySanitizer('fuzz.tar', LIMITS);
  const entries: string[] = [];
  try {
    await readTarSync(randomChunks(tar, rand), opts(), (raw) => {
      const e = sanitizer.sanitize(raw);
      if (e === undefined) return undefined;
      const h = createHash('sha256');
      if (e.type !== 'file') {
        entries.push(describe(e, h.digest('hex')));
        return undefined;
      }
      return { data: (c) => void h.update(c), end: () => void entries.push(describe(e, h.digest('hex'))) };
    });
  } catch (e) {
    return outcomeOf(e);
  }
  return { ok: true, entries };
}

/** A header block with its checksum recomputed (so that mutations get past the checksum). */
function resum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += block[i]!;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
}

async function seedArchive(): Promise<Buffer> {
  return craftTar([
    { header: { name: './', type: 'directory', mode: 0o755 } },
    { header: { name: './usr/', type: 'directory', mode: 0o755 } },
    { header: { name: './usr/bin/x', mode: 0o4755 }, body: 'hello world\n' },
    { header: { name: './usr/share/' + 'long/'.repeat(30) + 'f', mode: 0o644, uid: 1000, uname: 'u'.repeat(40) }, body: Buffer.alloc(1500, 9) },
    { header: { name: './usr/lib/l', type: 'symlink', linkname: '../bin/x' } },
    { header: { name: './usr/lib/abs', type: 'symlink', linkname: '/etc/' + 'z'.repeat(120) } },
    { header: { name: './usr/bin/h', type: 'link', linkname: './usr/bin/x' } },
    { raw: Buffer.concat([gnuLong('L', './usr/' + 'g'.repeat(150)), rawEntry({ name: './usr/short', typeflag: '0' }, 'gnu long name')]) },
    { raw: Buffer.concat([gnuLong('K', 'target/' + 't'.repeat(120)), rawEntry({ name: './usr/klink', typeflag: '2' })]) },
    { raw: rawEntry({ name: 'PaxHeaders/x', typeflag: 'x' }, '30 mtime=1700000000.123456789\n17 uid=4294967295\n') },
    { raw: rawEntry({ name: './usr/paxed', typeflag: '0' }, 'pax') },
    { header: { name: './empty', mode: 0o644 }, body: '' },
  ]);
}

const NUMERIC_FIELDS: [number, number][] = [
  [100, 8], // mode
  [108, 8], // uid
  [116, 8], // gid
  [124, 12], // size
  [136, 12], // mtime
  [329, 8], // devmajor
];

const TYPEFLAGS = '0123456789LKxgSNAVM\0';

/** One seeded mutation of `base`. */
function mutate(base: Buffer, rand: () => number): Buffer {
  const pick = (n: number): number => Math.floor(rand() * n);
  const out = Buffer.from(base);
  const rounds = 1 + pick(3);
  let b = out;
  // A whole block of what the archive is now (its first when it has been cut shorter than one).
  const headerAt = (): number => pick(Math.max(1, Math.floor(b.length / 512))) * 512;
  for (let r = 0; r < rounds; r++) {
    if (b.length < 512) b = Buffer.concat([b, Buffer.alloc(512 - b.length)]);
    const kind = pick(11);
    switch (kind) {
      case 0: {
        // Random bytes anywhere (checksum usually breaks: the header is refused).
        for (let i = 0, n = 1 + pick(4); i < n; i++) b[pick(b.length)] = pick(256);
        break;
      }
      case 1: {
        // A header field rewritten, checksum fixed.
        const at = headerAt();
        const [off, len] = NUMERIC_FIELDS[pick(NUMERIC_FIELDS.length)]!;
        const block = b.subarray(at, at + 512);
        const choice = pick(6);
        if (choice === 0) block.fill(0x20, off, off + len);
        else if (choice === 1) block.write('7'.repeat(len - 1), off, 'latin1');
        else if (choice === 2) {
          block[off] = rand() < 0.5 ? 0x80 : 0xff;
          for (let i = 1; i < len; i++) block[off + i] = pick(256);
        } else if (choice === 3) block.write((pick(70000)).toString(8).padStart(len - 1, '0'), off, 'latin1');
        else if (choice === 4) block.write('-1', off, 'latin1');
        else block[off + pick(len)] = pick(256);
        resum(block);
        break;
      }
      case 2: {
        // The typeflag changed, checksum fixed.
        const at = headerAt();
        const block = b.subarray(at, at + 512);
        block[156] = TYPEFLAGS.charCodeAt(pick(TYPEFLAGS.length));
        resum(block);
        break;
      }
      case 3: {
        // A name or link name byte changed ('/', '.', NUL, high bytes), checksum fixed.
        const at = headerAt();
        const block = b.subarray(at, at + 512);
        const off = rand() < 0.7 ? pick(100) : 157 + pick(100);
        block[off] = [0x2f, 0x2e, 0x00, 0xff, 0xc3, 0x41, 0x0a][pick(7)]!;
        resum(block);
        break;
      }
      case 4:
        // Cut anywhere.
        b = b.subarray(0, pick(b.length));
        break;
      case 5: {
        // A block duplicated.
        const at = pick(b.length / 512 | 0) * 512;
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 512), b.subarray(at)]);
        break;
      }
      case 6: {
        // A block dropped.
        const at = pick(b.length / 512 | 0) * 512;
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 512)]);
        break;
      }
      case 7: {
        // Zero blocks inserted (an early end marker, or padding).
        const at = pick(b.length / 512 | 0) * 512;
        b = Buffer.concat([b.subarray(0, at), Buffer.alloc(512 * (1 + pick(2))), b.subarray(at)]);
        break;
      }
      case 8: {
        // An extended header inserted in front of a block.
        const at = pick(b.length / 512 | 0) * 512;
        const records = [
          '18 path=../escape\n',
          '17 path=/etc/pwn\n',
          '12 size=999\n',
          '10 size=0\n',
          '21 linkpath=../../up\n',
          '16 path=a\0b/c.d\n',
          '20 GNU.sparse.map=1\n',
          '29 SCHILY.xattr.user.k=value\n',
          '13 uid=-400\n',
          '18 mtime=1e300000\n',
          '9 path=\n',
          '99 truncated=record\n',
          '5 x=\n',
        ];
        const kindChar = ['x', 'L', 'K', 'g'][pick(4)]!;
        const body = kindChar === 'x' ? records[pick(records.length)]! : ['../up', './usr/bin/x', '/abs', 'usr//bin/./x/', '\u00e9t\u00e9'][pick(5)]! + '\0';
        b = Buffer.concat([b.subarray(0, at), rawEntry({ name: 'ext', typeflag: kindChar }, body), b.subarray(at)]);
        break;
      }
      case 9: {
        // Two blocks swapped.
        const n = b.length / 512 | 0;
        if (n < 2) break;
        const i = pick(n) * 512;
        const j = pick(n) * 512;
        const x = Buffer.from(b.subarray(i, i + 512));
        b.subarray(j, j + 512).copy(b, i);
        x.copy(b, j);
        break;
      }
      default: {
        // A whole crafted header inserted (hostile types and paths).
        const at = pick(b.length / 512 | 0) * 512;
        const names = ['./usr/bin/x', './usr/bin/x/y', './usr', '../x', './a/../b', '/abs', './', '.', './dev/null', './usr/lib/l/z', './usr/bin/h'];
        const links = ['./usr/bin/x', './usr', '../../../etc', '/etc/passwd', './nope', ''];
        const h = rawEntry(
          { name: names[pick(names.length)]!, typeflag: TYPEFLAGS[pick(10)]!, linkname: links[pick(links.length)]!, mode: pick(0o10000) },
          rand() < 0.5 ? '' : 'data'.repeat(pick(300)),
        );
        b = Buffer.concat([b.subarray(0, at), h, b.subarray(at)]);
        break;
      }
    }
    if (b === out) b = Buffer.from(b); // later rounds may shrink or grow it
  }
  return b;
}

test('fuzz: readTar and readTarSync with the sanitiser accept and refuse mutated archives alike, with DistillErrors only', { timeout: 60_000 }, async () => {
  const base = await seedArchive();
  // The unmutated archive reads, and the same by both drivers.
  const honest = await viaAsync(base, rng(1));
  assert.ok(honest.ok, JSON.stringify(honest));
  assert.deepEqual(await viaSync(base, rng(2)), honest);
  const started = Date.now();
  let accepted = 0;
  const codes = new Map<string, number>();
  const CASES = Number(process.env.FUZZ_CASES ?? 4000);
  for (let seed = 1; seed <= CASES; seed++) {
    const rand = rng(seed);
    const tar = mutate(base, rand);
    let a: Outcome;
    let s: Outcome;
    try {
      a = await viaAsync(tar, rng(seed * 7919));
      s = await viaSync(tar, rng(seed * 104729));
    } catch (e) {
      assert.fail(`seed ${seed}: ${(e as Error).message}`);
    }
    assert.deepEqual(s, a, `seed ${seed}: the drivers disagree`);
    if (a.ok) accepted++;
    else codes.set(a.code, (codes.get(a.code) ?? 0) + 1);
  }
  // The mutations reach both sides: some archives still read, and refusals come from both the reader and the sanitiser.
  if (process.env.FUZZ_VERBOSE) console.log(accepted, [...codes]);
  assert.ok(accepted > 50, `only ${accepted} of ${CASES} mutated archives were accepted`);
  assert.ok((codes.get('DEB_MALFORMED') ?? 0) > 100 && (codes.get('UNSAFE_ENTRY') ?? 0) > 50, JSON.stringify([...codes]));
  assert.ok(Date.now() - started < 30_000, 'the fuzz run is meant to take seconds');
});

test('fuzz: the end-of-archive, long-header and checksum edges, one block at a time, agree across drivers', async () => {
  // Every prefix of a small archive at block granularity and a few byte offsets: both drivers refuse alike.
  const base = await craftTar([
    { raw: Buffer.concat([gnuLong('L', './' + 'n'.repeat(600)), rawEntry({ name: './f', typeflag: '0' }, Buffer.alloc(700, 1))]) },
    { raw: rawEntry({ name: 'x', typeflag: 'x' }, '16 path=./pathy\n') },
    { raw: rawEntry({ name: './g', typeflag: '0' }, 'g') },
  ]);
  for (let cut = 0; cut <= base.length; cut += cut % 512 === 0 ? 1 : cut % 512 === 1 ? 510 : 1) {
    const tar = base.subarray(0, cut);
    const a = await viaAsync(tar, rng(cut + 1));
    const s = await viaSync(tar, rng(cut + 2));
    assert.deepEqual(s, a, `cut at ${cut}`);
    if (cut < base.length) assert.equal(a.ok, false, `cut at ${cut} must be refused`);
  }
  // A header that looks like a zero block's checksum without being one.
  const fake = rawHeader({ name: '', typeflag: '\0' });
  fake.fill(0);
  fake.write('000400\0 ', 148, 'latin1');
  for (const tar of [Buffer.concat([fake, Buffer.alloc(1024)]), Buffer.concat([Buffer.alloc(512), fake, Buffer.alloc(512)])]) {
    assert.deepEqual(await viaSync(tar, rng(3)), await viaAsync(tar, rng(4)));
  }
});

/** A .deb read by readDeb with the async handler (readTar) or the sync one (readTarSync), in random chunks. */
async function viaDeb(deb: Buffer, rand: () => number, sync: boolean): Promise<Outcome> {
  const entries: string[] = [];
  let control = '';
  try {
    const handlers = sync
      ? {
          control: (c: DebControl) => void (control = c.text),
          entrySync: (e: FsEntry) => {
            const h = createHash('sha256');
            if (e.type !== 'file') {
              entries.push(JSON.stringify([e.path, e.type, e.mode, e.size, e.linkTarget ?? null]));
              return undefined;
            }
            return { data: (c: Buffer) => void h.update(c), end: () => void entries.push(JSON.stringify([e.path, e.type, e.mode, e.size, h.digest('hex')])) };
          },
        }
      : {
          control: (c: DebControl) => void (control = c.text),
          entry: async (e: FsEntry, body: Readable | undefined) => {
            const h = createHash('sha256');
            if (body === undefined) {
              entries.push(JSON.stringify([e.path, e.type, e.mode, e.size, e.linkTarget ?? null]));
              return;
            }
            for await (const c of body) h.update(c as Buffer);
            entries.push(JSON.stringify([e.path, e.type, e.mode, e.size, h.digest('hex')]));
          },
        };
    await readDeb(randomChunks(deb, rand), 'fuzz.deb', handlers, LIMITS);
  } catch (e) {
    return outcomeOf(e);
  }
  return { ok: true, entries: [control, ...entries] };
}

test('fuzz: readDeb with the async and the sync entry handler accepts and refuses mutated .debs alike (ar container, members, gzip)', { timeout: 60_000 }, async () => {
  const data = await seedArchive();
  const base: Buffer[] = [];
  for (const dataCompression of ['none', 'gzip'] as const) {
    base.push(await craftDeb({ entries: [{ raw: data.subarray(0, data.length - 1024) }], dataCompression, controlFiles: { md5sums: 'd41d8cd98f00b204e9800998ecf8427e  usr/bin/x\n', postinst: '#!/bin/sh\n' } }));
  }
  for (const b of base) {
    const honest = await viaDeb(b, rng(1), false);
    assert.ok(honest.ok, JSON.stringify(honest));
    assert.deepEqual(await viaDeb(b, rng(2), true), honest);
  }
  const CASES = Number(process.env.FUZZ_CASES ?? 4000) / 4;
  let accepted = 0;
  for (let seed = 1; seed <= CASES; seed++) {
    const rand = rng(seed + 1_000_000);
    const pick = (n: number): number => Math.floor(rand() * n);
    let deb = Buffer.from(base[pick(base.length)]!);
    for (let r = 0, n = 1 + pick(3); r < n; r++) {
      const k = pick(6);
      if (k === 0) deb[pick(deb.length)] = pick(256); // anywhere: ar headers, member data, compressed bytes
      else if (k === 1) deb[8 + pick(Math.min(deb.length - 8, 200))] = [0x20, 0x30, 0x39, 0x2f, 0x0a, 0x60][pick(6)]!; // the first ar headers
      else if (k === 2) deb = deb.subarray(0, pick(deb.length));
      else if (k === 3) {
        const at = pick(deb.length);
        deb = Buffer.concat([deb.subarray(0, at), Buffer.from(rand() < 0.5 ? '_x/            0           0     0     100644  2         `\nab' : '\n'), deb.subarray(at)]);
      } else if (k === 4) {
        // An ar size field rewritten.
        const at = deb.indexOf('`\n', 8 + pick(deb.length - 8));
        if (at > 10) deb.write(String(pick(100_000)).padEnd(10, ' '), at - 10, 'latin1');
      } else {
        const at = pick(deb.length);
        deb = Buffer.concat([deb.subarray(0, at), deb.subarray(at + 1 + pick(600))]);
      }
      deb = Buffer.from(deb);
    }
    // Refusals are compared as refusals (each a DistillError, which viaDeb checks): in a .deb with two
    // faults — an unsafe entry or a bad header inside data.tar, and the member cut short in the ar
    // archive — which one is met first depends on how far the async driver read ahead.
    const codeOnly = (o: Outcome): Outcome | string => (o.ok ? o : 'refused');
    const a = await viaDeb(deb, rng(seed * 31), false);
    const s = await viaDeb(deb, rng(seed * 37), true);
    if (process.env.FUZZ_VERBOSE && JSON.stringify(codeOnly(s)) !== JSON.stringify(codeOnly(a))) console.log(seed, JSON.stringify(a), JSON.stringify(s));
    assert.deepEqual(codeOnly(s), codeOnly(a), `deb seed ${seed}: the handlers disagree`);
    if (a.ok) accepted++;
  }
  assert.ok(accepted > 10, `only ${accepted} mutated .debs were accepted`);
});
