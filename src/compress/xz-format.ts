// The parts of the .xz container format (https://tukaani.org/xz/xz-file-format.txt, 1.2.0) that the
// shared `xz -dc` processes (xz-pool.ts) need: the decoded size of a whole member, read from its
// Streams' Indexes (walking back from the end: Stream Padding, Stream Footer, Index, Blocks, Stream
// Header), and a Stream of our own whose decoded bytes we choose (a marker between two members).
//
// ATTACKER-CONTROLLED INPUT: every byte given to xzDecodedSize. It only reads what the container
// says about itself — it does not decode a Block — and it refuses (undefined) anything it cannot
// account for byte by byte, so the caller can take its usual path for that input. An Index that lies
// about its Blocks passes here: xz checks the Index against the Blocks it decoded (spec 4.3), and the
// pool checks that the output it cuts is exactly the size found here.

/** A Stream Header's or Footer's size (spec 2.1.1, 2.1.2). */
const STREAM_EDGE = 12;
const HEADER_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
/** Check IDs xz 5.x verifies (None, CRC32, CRC64, SHA-256); another one only makes xz warn. */
const KNOWN_CHECKS = new Set([0x00, 0x01, 0x04, 0x0a]);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32 (the one of gzip and .xz, spec 5.1) of b[from, to). */
export function crc32(b: Uint8Array, from = 0, to = b.length): number {
  let c = 0xffffffff;
  for (let i = from; i < to; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const u32 = (b: Uint8Array, at: number): number => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;

/**
 * The bytes a whole .xz member decodes to, as its Indexes state them: one or more Streams, each
 * optionally followed by Stream Padding, starting with a Stream Header at offset 0 — what `xz -dc`
 * reads as one input. Undefined when the bytes are not exactly that (garbage, truncation, a CRC that
 * does not match, an unknown check type, a size past 2^53), so that the caller can decode the member
 * the way that reports such input.
 */
export function xzDecodedSize(b: Uint8Array): number | undefined {
  return walkStreams(b, KNOWN_CHECKS);
}

const ANY_CHECK = new Set(Array.from({ length: 16 }, (_, i) => i));

/**
 * True when `b` is a whole .xz member but for a Stream whose Check ID is one xz 5.x does not know
 * (reserved IDs no encoder writes). liblzma in process decodes such a Stream without checking it,
 * `xz -dc` does too but exits 2 — so the in-process decoder asks this first, and refuses it as xz does.
 */
export function xzUnsupportedCheck(b: Uint8Array): boolean {
  return walkStreams(b, KNOWN_CHECKS) === undefined && walkStreams(b, ANY_CHECK) !== undefined;
}

function walkStreams(b: Uint8Array, checks: ReadonlySet<number>): number | undefined {
  let end = b.length;
  let total = 0;
  let streams = 0;
  while (end > 0) {
    // Stream Padding (spec 2.2): null bytes, a multiple of four. A Footer ends with "YZ", so every
    // trailing zero is padding.
    let p = end;
    while (p > 0 && b[p - 1] === 0) p--;
    if ((end - p) % 4 !== 0) return undefined;
    end = p;
    if (end < 2 * STREAM_EDGE) return undefined;
    // Stream Footer (spec 2.1.2): CRC32, Backward Size, Stream Flags, "YZ".
    const f = end - STREAM_EDGE;
    if (b[f + 10] !== 0x59 || b[f + 11] !== 0x5a) return undefined;
    if (crc32(b, f + 4, f + 10) !== u32(b, f)) return undefined;
    const flags0 = b[f + 8]!;
    const flags1 = b[f + 9]!;
    if (flags0 !== 0 || (flags1 & 0xf0) !== 0 || !checks.has(flags1)) return undefined;
    const indexSize = (u32(b, f + 4) + 1) * 4;
    const indexStart = f - indexSize;
    if (indexStart < STREAM_EDGE) return undefined;
    const index = parseIndex(b, indexStart, f);
    if (index === undefined) return undefined;
    // The Blocks sit between the Stream Header and the Index: their padded sizes (spec 3.3) say where
    // the Header is.
    const start = indexStart - index.blocks - STREAM_EDGE;
    if (start < 0) return undefined;
    for (let i = 0; i < HEADER_MAGIC.length; i++) if (b[start + i] !== HEADER_MAGIC[i]) return undefined;
    if (b[start + 6] !== flags0 || b[start + 7] !== flags1) return undefined;
    if (crc32(b, start + 6, start + 8) !== u32(b, start + 8)) return undefined;
    total += index.uncompressed;
    if (!Number.isSafeInteger(total)) return undefined;
    streams++;
    end = start;
  }
  return streams > 0 ? total : undefined;
}

/**
 * An Index (spec 4) occupying exactly b[from, to): the sum of its Records' Uncompressed Sizes and of
 * their Blocks' padded sizes. Undefined when malformed.
 */
function parseIndex(b: Uint8Array, from: number, to: number): { uncompressed: number; blocks: number } | undefined {
  if (b[from] !== 0x00) return undefined; // Index Indicator
  let at = from + 1;
  /** A Multibyte Integer (spec 1.2): at most 9 bytes, minimally encoded; undefined past 2^53. */
  const vli = (): number | undefined => {
    let v = 0;
    for (let i = 0; i < 9; i++) {
      if (at >= to - 4) return undefined;
      const byte = b[at++]!;
      v += (byte & 0x7f) * 2 ** (7 * i);
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) return undefined;
        return Number.isSafeInteger(v) ? v : undefined;
      }
    }
    return undefined;
  };
  const count = vli();
  if (count === undefined) return undefined;
  let uncompressed = 0;
  let blocks = 0;
  for (let r = 0; r < count; r++) {
    const unpadded = vli();
    const size = vli();
    // Unpadded Size: a Block Header (at least 8 bytes), data, and its Check (spec 4.3.1: minimum 5).
    if (unpadded === undefined || size === undefined || unpadded < 5) return undefined;
    blocks += Math.ceil(unpadded / 4) * 4;
    uncompressed += size;
    if (!Number.isSafeInteger(blocks) || !Number.isSafeInteger(uncompressed)) return undefined;
  }
  // Index Padding (spec 4.4) to a multiple of four, then the CRC32 of all of it.
  while ((at - from) % 4 !== 0) if (at >= to - 4 || b[at++] !== 0) return undefined;
  if (at !== to - 4) return undefined;
  if (crc32(b, from, at) !== u32(b, at)) return undefined;
  return { uncompressed, blocks };
}

/** Bytes of the random marker that opens a separator's decoded bytes. */
export const MARKER_BYTES = 32;
/** Zeros after the marker: a full xz output buffer (IO_BUFFER_SIZE, 8 KiB), so all that came before is written out. */
export const SEPARATOR_ZEROS = 8192;
export const SEPARATOR_DECODED = MARKER_BYTES + SEPARATOR_ZEROS;

/**
 * A complete .xz Stream (check None, one Block of one uncompressed LZMA2 chunk) decoding to `marker`
 * followed by SEPARATOR_ZEROS zeros. Its structure is fixed; only the marker's bytes vary.
 */
export function separatorStream(marker: Uint8Array): Buffer {
  if (marker.length !== MARKER_BYTES) throw new Error('separatorStream: marker must be 32 bytes');
  const parts = separatorParts();
  return Buffer.concat([parts.head, marker, parts.tail]);
}

let parts: { head: Buffer; tail: Buffer } | undefined;

function separatorParts(): { head: Buffer; tail: Buffer } {
  if (parts !== undefined) return parts;
  const le32 = (n: number): Buffer => {
    const x = Buffer.alloc(4);
    x.writeUInt32LE(n >>> 0);
    return x;
  };
  const withCrc = (b: Buffer): Buffer => Buffer.concat([b, le32(crc32(b))]);
  const flags = Buffer.from([0x00, 0x00]); // check None
  const streamHeader = Buffer.concat([Buffer.from(HEADER_MAGIC), withCrc(flags)]);
  // Block Header (spec 3.1): size byte (12 / 4 - 1), flags (one filter, no sizes), Filter Flags for
  // LZMA2 (ID 0x21, 1 property byte: a 4 KiB dictionary), Header Padding, CRC32.
  const blockHeader = withCrc(Buffer.from([0x02, 0x00, 0x21, 0x01, 0x00, 0x00, 0x00, 0x00]));
  const n = SEPARATOR_DECODED;
  // LZMA2: one uncompressed chunk resetting the dictionary (0x01, size - 1 big-endian), then the end (0x00).
  const chunkHead = Buffer.from([0x01, ((n - 1) >> 8) & 0xff, (n - 1) & 0xff]);
  const unpadded = blockHeader.length + chunkHead.length + n + 1; // no Check
  const vliOf = (v: number): number[] => {
    const out: number[] = [];
    while (v >= 0x80) {
      out.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(v);
    return out;
  };
  const blockPadding = Buffer.alloc((4 - (unpadded % 4)) % 4);
  const indexBody = [0x00, 0x01, ...vliOf(unpadded), ...vliOf(n)];
  while (indexBody.length % 4 !== 0) indexBody.push(0);
  const index = withCrc(Buffer.from(indexBody));
  const footerBody = Buffer.concat([le32(index.length / 4 - 1), flags]);
  const footer = Buffer.concat([le32(crc32(footerBody)), footerBody, Buffer.from('YZ', 'latin1')]);
  parts = {
    head: Buffer.concat([streamHeader, blockHeader, chunkHead]),
    tail: Buffer.concat([Buffer.alloc(SEPARATOR_ZEROS), Buffer.from([0x00]), blockPadding, index, footer]),
  };
  return parts;
}
