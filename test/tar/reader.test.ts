// The one tar reader (src/tar/reader.ts): its two drivers — readTar (async handler, Readable bodies)
// and readTarSync (synchronous sinks, the staging hot path) — read the same entries from the same
// bytes however the input is cut into chunks, and refuse the same hostile archives with the same code.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { DistillError } from '../../src/errors.js';
import { readTar, readTarSync, type ReadTarOptions } from '../../src/tar/reader.js';
import { END_OF_ARCHIVE, craftTar, gnuLong, rawEntry, rawHeader } from '../helpers/craft-deb.js';

const malformed = (message: string, cause?: unknown): DistillError => new DistillError('DEB_MALFORMED', message, { cause });
const OPTS: ReadTarOptions = { what: 'test.tar', malformed };

/** `buf` as a stream of chunks of `size` bytes (1 splits every header across 512 chunks). */
function chunked(buf: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts);
}

type Seen = { name: string; type: string; size: number; linkname?: string | undefined; sha256: string }[];

async function viaAsync(buf: Buffer, size: number, opts: Partial<ReadTarOptions> = {}): Promise<Seen> {
  const seen: Seen = [];
  await readTar(chunked(buf, size), { ...OPTS, ...opts }, async (e, body) => {
    const h = createHash('sha256');
    for await (const c of body()) h.update(c as Buffer);
    seen.push({ name: e.name, type: e.type, size: e.size, linkname: e.linkname, sha256: h.digest('hex') });
  });
  return seen;
}

async function viaSync(buf: Buffer, size: number, opts: Partial<ReadTarOptions> = {}): Promise<Seen> {
  const seen: Seen = [];
  await readTarSync(chunked(buf, size), { ...OPTS, ...opts }, (e) => {
    const h = createHash('sha256');
    return {
      data: (c) => void h.update(c),
      end: () => void seen.push({ name: e.name, type: e.type, size: e.size, linkname: e.linkname, sha256: h.digest('hex') }),
    };
  });
  return seen;
}

const LONG = 'usr/share/' + 'deep/'.repeat(40) + 'file.txt';

async function sample(): Promise<Buffer> {
  return craftTar([
    { header: { name: './', type: 'directory', mode: 0o755 } },
    { header: { name: './usr/bin/x', mode: 0o755 }, body: 'hello' },
    { header: { name: './' + LONG, mode: 0o644 }, body: Buffer.alloc(5000, 3) }, // pax path
    { header: { name: './usr/lib/l', type: 'symlink', linkname: 'x/' + 'y'.repeat(150) } }, // pax linkpath
    { header: { name: './usr/bin/h', type: 'link', linkname: './usr/bin/x' } },
    { raw: Buffer.concat([gnuLong('L', './usr/' + 'g'.repeat(200)), rawEntry({ name: './usr/short', typeflag: '0' }, 'gnu long name')]) },
    { header: { name: './empty', mode: 0o644 }, body: '' },
  ]);
}

test('readTar and readTarSync read the same entries and bytes, however the input is chunked', async () => {
  const tar = await sample();
  const want = await viaAsync(tar, tar.length);
  assert.deepEqual(
    want.map((e) => e.name),
    ['./', './usr/bin/x', './' + LONG, './usr/lib/l', './usr/bin/h', './usr/' + 'g'.repeat(200), './empty'],
  );
  assert.equal(want[3]!.linkname, 'x/' + 'y'.repeat(150));
  for (const size of [1, 7, 511, 512, 513, 4096, 100_000]) {
    assert.deepEqual(await viaAsync(tar, size), want, `readTar, chunks of ${size}`);
    assert.deepEqual(await viaSync(tar, size), want, `readTarSync, chunks of ${size}`);
  }
});

test('both drivers refuse the same hostile or broken archives as DEB_MALFORMED (the caller’s code), and never hang', async () => {
  const tar = await sample();
  const body = tar.subarray(0, tar.length - END_OF_ARCHIVE.length);
  const withSize = (field: Buffer): Buffer => {
    const h = rawHeader({ name: './f', typeflag: '0' });
    field.copy(h, 124);
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const x of h) sum += x;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    return h;
  };
  const badChecksum = Buffer.from(rawEntry({ name: './f', typeflag: '0' }, 'x'));
  badChecksum[0] = 0x41;
  const hostile: [string, Buffer, RegExp][] = [
    ['no end-of-archive marker', body, /truncated/],
    ['cut inside an entry', tar.subarray(0, 1500), /truncated/],
    ['cut inside a header', tar.subarray(0, 700), /truncated/],
    ['an entry after the end marker', Buffer.concat([body, Buffer.alloc(512), rawEntry({ name: './hidden', typeflag: '0' }, 'x'), END_OF_ARCHIVE]), /end-of-archive/],
    ['a pax global header', Buffer.concat([rawEntry({ name: 'g', typeflag: 'g' }, '11 a=bcde\n'), END_OF_ARCHIVE]), /global/],
    ['an empty extended header', Buffer.concat([rawEntry({ name: 'x', typeflag: 'x' }), rawEntry({ name: './f', typeflag: '0' }, 'x'), END_OF_ARCHIVE]), /extended header of 0 bytes/],
    ['an oversized extended header', Buffer.concat([rawHeader({ name: 'x', typeflag: 'x', size: 5 * 1024 * 1024 }), END_OF_ARCHIVE]), /extended header/],
    ['a bad checksum', Buffer.concat([badChecksum, END_OF_ARCHIVE]), /Invalid tar header/],
    ['a base-256 size with a bad lead byte', Buffer.concat([withSize(Buffer.from([0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])), END_OF_ARCHIVE]), /Invalid header/],
    ['trailing bytes after the end marker', Buffer.concat([tar, Buffer.alloc(100)]), /truncated/],
  ];
  for (const [label, bytes, message] of hostile) {
    for (const size of [1, 512, 1 << 20]) {
      for (const [driver, read] of [['readTar', viaAsync], ['readTarSync', viaSync]] as const) {
        await assert.rejects(read(bytes, size), (e: any) => e instanceof DistillError && e.code === 'DEB_MALFORMED' && message.test(e.message), `${driver}: ${label} (chunks of ${size})`);
      }
    }
  }
  // Record padding (zeros) after the end marker is normal.
  assert.equal((await viaSync(Buffer.concat([tar, Buffer.alloc(8192)]), 1000)).length, 7);
  // v7 headers (no ustar magic) only when the caller allows them.
  const v7 = Buffer.from(rawEntry({ name: './old', typeflag: '0' }, 'v7'));
  v7.fill(0, 257, 265);
  v7.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += v7[i]!;
  v7.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  const v7tar = Buffer.concat([v7, END_OF_ARCHIVE]);
  await assert.rejects(viaSync(v7tar, 512), /unknown format/);
  assert.deepEqual((await viaSync(v7tar, 512, { allowUnknownFormat: true })).map((e) => e.name), ['./old']);
  assert.deepEqual((await viaAsync(v7tar, 512, { allowUnknownFormat: true })).map((e) => e.name), ['./old']);
});

test('readTarSync: a handler’s or a sink’s own error propagates unchanged and the source is destroyed', async () => {
  const tar = await sample();
  class Mine extends Error {}
  for (const where of ['entry', 'data', 'end'] as const) {
    const source = chunked(tar, 700);
    const mine = new Mine(where);
    await assert.rejects(
      readTarSync(source, OPTS, (e) => {
        if (where === 'entry' && e.name === './usr/bin/x') throw mine;
        return {
          data: () => {
            if (where === 'data') throw mine;
          },
          end: () => {
            if (where === 'end' && e.name === './usr/bin/x') throw mine;
          },
        };
      }),
      (e) => e === mine,
    );
    assert.ok(source.destroyed, `${where}: the source is destroyed`);
  }
  // The source's own error too.
  class Broken extends Error {}
  const broken = new Readable({
    read() {
      this.push(tar.subarray(0, 1000));
      this.destroy(new Broken('disk on fire'));
    },
  });
  await assert.rejects(readTarSync(broken, OPTS, () => undefined), (e) => e instanceof Broken);
});

test('readTarSync: entries without a sink are skipped, and data after the compressed stream is refused', async () => {
  const tar = await sample();
  const names: string[] = [];
  await readTarSync(chunked(tar, 333), OPTS, (e) => void names.push(e.name));
  assert.equal(names.length, 7);
  const { gzipSync } = await import('node:zlib');
  const trailing = Buffer.concat([gzipSync(tar), Buffer.from('garbage')]);
  await assert.rejects(readTarSync(chunked(trailing, 4096), { ...OPTS, compression: 'gzip' }, () => undefined), (e: any) => e.code === 'DEB_MALFORMED');
});
