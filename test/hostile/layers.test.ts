// Hostile image layers, read the way inspect, rebuild's compare and the SBOM read them (oci/read-layer.ts
// over the one tar reader, tar/reader.ts): traversal names are reported, never acted on; absurd sizes,
// truncated tars and entries hidden after the end marker are refused; the compressed bytes must be the
// descriptor's and the tar must be the one the config's diffId names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { sha256Hex, toDigest, type Digest } from '../../src/digest.js';
import type { Layer } from '../../src/oci/model.js';
import { readLayer } from '../../src/oci/read-layer.js';
import type { TarEntry } from '../../src/tar/reader.js';
import { END_OF_ARCHIVE, craftTar, file, rawEntry, rawHeader } from '../helpers/craft-deb.js';

const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

function layerOf(tarBytes: Buffer, opts: { diffId?: Digest; blob?: Buffer; chunk?: number } = {}): Layer {
  const blob = opts.blob ?? gzipSync(tarBytes);
  const digest = toDigest(sha256Hex(gzipSync(tarBytes)));
  return {
    descriptor: { mediaType: GZIP, digest, size: gzipSync(tarBytes).length },
    diffId: opts.diffId ?? toDigest(sha256Hex(tarBytes)),
    // Small chunks: headers and bodies arrive split, as they do from a socket.
    open: () => Readable.from(chunks(blob, opts.chunk ?? 97)),
  };
}

function* chunks(b: Buffer, n: number): Generator<Buffer> {
  for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n);
}

async function entries(layer: Layer): Promise<TarEntry[]> {
  const seen: TarEntry[] = [];
  await readLayer(layer, async (e, body) => {
    seen.push(e);
    if (e.type === 'file') for await (const _ of body()) void _;
  });
  return seen;
}

test('an intact layer reads, and its measured diffId is returned', async () => {
  const tarBytes = await craftTar([file('etc/hostname', 'box\n'), file('usr/bin/app', Buffer.alloc(70_000, 1))]);
  const r = await readLayer(layerOf(tarBytes), async () => {});
  assert.deepEqual(r, { diffId: toDigest(sha256Hex(tarBytes)), uncompressedSize: tarBytes.length });
  assert.deepEqual((await entries(layerOf(tarBytes))).map((e) => e.name), ['etc/hostname', 'usr/bin/app']);
});

test('traversal and absolute names are reported as stored; reading a layer never touches the file system', async () => {
  const tarBytes = Buffer.concat([rawEntry({ name: '../../etc/passwd', typeflag: '0' }, 'x'), rawEntry({ name: '/etc/shadow', typeflag: '0' }, 'y'), END_OF_ARCHIVE]);
  const names = (await entries(layerOf(tarBytes))).map((e) => e.name);
  assert.deepEqual(names, ['../../etc/passwd', '/etc/shadow']);
});

test('a layer whose tar is not the config diffId is OCI_INVALID; a reader that reports it gets the measured one', async () => {
  const tarBytes = await craftTar([file('a', 'a')]);
  const other = toDigest(sha256Hex('another tar'));
  await assert.rejects(readLayer(layerOf(tarBytes, { diffId: other }), async () => {}), (e: any) => e.code === 'OCI_INVALID' && /diff_ids/.test(e.message) && e.message.includes(other));
  const r = await readLayer(layerOf(tarBytes, { diffId: other }), async () => {}, { verifyDiffId: false });
  assert.equal(r.diffId, toDigest(sha256Hex(tarBytes)));
});

test('compressed bytes that are not the descriptor\'s are BLOB_DIGEST_MISMATCH, also when they fail to decompress first', async () => {
  const tarBytes = await craftTar([file('a', Buffer.alloc(10_000, 7))]);
  const good = gzipSync(tarBytes);
  const flipped = Buffer.from(good);
  flipped[20] = flipped[20]! ^ 0xff; // inside the deflate stream: gunzip fails before the digest is known
  await assert.rejects(entries(layerOf(tarBytes, { blob: flipped })), (e: any) => e.code === 'BLOB_DIGEST_MISMATCH');
  const other = gzipSync(await craftTar([file('b', 'b')])); // a valid gzip tar, just not this one
  await assert.rejects(entries(layerOf(tarBytes, { blob: other })), (e: any) => e.code === 'BLOB_SIZE_MISMATCH' || e.code === 'BLOB_DIGEST_MISMATCH');
});

test('absurd sizes: an entry claiming 8 GiB, a 64 MiB pax header', async () => {
  const huge = Buffer.concat([rawHeader({ name: 'big', typeflag: '0', size: 0o77777777777 }), Buffer.alloc(1024)]);
  await assert.rejects(entries(layerOf(huge)), (e: any) => e.code === 'OCI_INVALID');
  const pax = Buffer.concat([rawHeader({ name: 'PaxHeader/x', typeflag: 'x', size: 64 * 1024 * 1024 }), Buffer.alloc(512)]);
  await assert.rejects(entries(layerOf(pax)), (e: any) => e.code === 'OCI_INVALID' && /extended header/.test(e.message));
});

test('a truncated tar, and an entry hidden after the end-of-archive marker, are OCI_INVALID', async () => {
  const tarBytes = await craftTar([file('a', Buffer.alloc(5000, 1)), file('b', 'b')]);
  for (const cut of [100, 512, 3000, tarBytes.length - 1024]) {
    await assert.rejects(entries(layerOf(tarBytes.subarray(0, cut))), (e: any) => e.code === 'OCI_INVALID', `cut at ${cut}`);
  }
  const hidden = Buffer.concat([await craftTar([file('a', 'a')]), rawEntry({ name: 'evil', typeflag: '0' }, 'x'), END_OF_ARCHIVE]);
  await assert.rejects(entries(layerOf(hidden)), (e: any) => e.code === 'OCI_INVALID' && /end-of-archive/.test(e.message));
});

test('pax global headers and GNU sparse files are refused in layers as in .debs', async () => {
  const global = Buffer.concat([rawEntry({ name: 'pax_global_header', typeflag: 'g' }, '20 comment=hello!!\n'), END_OF_ARCHIVE]);
  await assert.rejects(entries(layerOf(global)), (e: any) => e.code === 'OCI_INVALID' && /global/.test(e.message));
});

test('a handler\'s own error propagates unchanged and stops the read', async () => {
  const tarBytes = await craftTar([file('a', 'a'), file('b', 'b')]);
  const mine = new Error('stop here');
  let calls = 0;
  await assert.rejects(readLayer(layerOf(tarBytes), async () => {
    calls++;
    throw mine;
  }), (e) => e === mine);
  assert.equal(calls, 1);
});

test('inspect refuses a layer whose tar is not the config\'s diffId, and reads it when it is', async () => {
  const { inspectArtifact } = await import('../../src/inspect.js');
  const { jsonBlob } = await import('../../src/oci/descriptor.js');
  const status = 'Package: hello\nVersion: 1.0\nArchitecture: amd64\nInstalled-Size: 42\n';
  const tarBytes = await craftTar([file('var/lib/dpkg/status.d/hello', status)]);
  const image = (diffId?: Digest) => ({
    manifest: jsonBlob('application/vnd.oci.image.manifest.v1+json', { schemaVersion: 2 }),
    config: jsonBlob('application/vnd.oci.image.config.v1+json', {}),
    layers: [layerOf(tarBytes, diffId !== undefined ? { diffId } : {})],
  });
  const ok = await inspectArtifact('good', image());
  assert.deepEqual(ok.images[0]!.packages.map((p) => p.name), ['hello']);
  await assert.rejects(inspectArtifact('lying', image(toDigest(sha256Hex('another tar')))), (e: any) => e.code === 'OCI_INVALID' && /diff_ids/.test(e.message));
});
