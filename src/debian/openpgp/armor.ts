// ASCII armor: decoding one `-----BEGIN PGP <TYPE>-----` … `-----END PGP <TYPE>-----` block into its
// bytes, strictly — armor header lines, the mandatory blank line, canonical base64 and, when present,
// the CRC24 checksum line, which must match.
//
// Follows RFC 4880 §6 (radix-64, CRC24, armor headers) and RFC 9580 §6.2 (the checksum is optional;
// an armor header line may be followed by whitespace only).
//
// Attacker-controlled input: the signature block of an InRelease file comes from the network.
// Lines are given already split and with any trailing CR removed.
import { OpenPgpFormatError } from './packets.js';

export interface ArmorBlock {
  /** What follows `BEGIN PGP `: SIGNATURE, PUBLIC KEY BLOCK, SIGNED MESSAGE… */
  type: string;
  headers: { key: string; value: string }[];
  data: Uint8Array;
}

const CRC24_INIT = 0xb704ce;
const CRC24_POLY = 0x1864cfb;

/** RFC 4880 §6.1. */
export function crc24(data: Uint8Array): number {
  let crc = CRC24_INIT;
  for (const b of data) {
    crc ^= b << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= CRC24_POLY;
    }
  }
  return crc & 0xffffff;
}

const ARMOR_LINE = /^-----(BEGIN|END) PGP ([A-Z][A-Z0-9 ,/]*[A-Z0-9])-----[ \t]*$/;

/** If `line` is an armor header or tail line (`-----BEGIN PGP X-----`), its kind and type. */
export function armorLine(line: string): { kind: 'BEGIN' | 'END'; type: string } | undefined {
  const m = ARMOR_LINE.exec(line);
  if (!m) return undefined;
  return { kind: m[1] as 'BEGIN' | 'END', type: m[2]! };
}

const HEADER = /^([\x21-\x39\x3b-\x7e]+): (.*)$/;
const BASE64_LINE = /^[A-Za-z0-9+/]+={0,2}$/;
const CHECKSUM_LINE = /^=([A-Za-z0-9+/]{4})$/;

/**
 * Decodes the armored block that starts at `lines[start]` (its BEGIN line). Returns the block and the
 * index of the line after its END line.
 */
export function readArmorBlock(lines: readonly string[], start: number): { block: ArmorBlock; next: number } {
  const fail = (msg: string): never => {
    throw new OpenPgpFormatError(`armor: ${msg}`);
  };
  const begin = armorLine(lines[start] ?? '');
  if (!begin || begin.kind !== 'BEGIN') fail(`line ${start + 1} is not an armor BEGIN line`);
  const type = begin!.type;
  let i = start + 1;

  // Armor headers, then exactly one empty line (RFC 4880 §6.2).
  const headers: { key: string; value: string }[] = [];
  for (;;) {
    const line = lines[i];
    if (line === undefined) fail(`the ${type} block ends inside its headers`);
    i++;
    if (line === '') break;
    const m = HEADER.exec(line!);
    if (!m) fail(`line ${i} of the ${type} block is neither an armor header nor the blank line that must end the headers`);
    headers.push({ key: m![1]!, value: m![2]! });
  }

  // Base64 lines, an optional checksum line, the END line.
  const body: string[] = [];
  let checksum: string | undefined;
  for (;;) {
    const raw = lines[i];
    if (raw === undefined) fail(`the ${type} block has no END line`);
    i++;
    const line = raw!.replace(/[ \t]+$/, '');
    const tail = armorLine(line);
    if (tail) {
      if (tail.kind !== 'END' || tail.type !== type) fail(`line ${i}: expected -----END PGP ${type}-----`);
      break;
    }
    if (checksum !== undefined) fail(`line ${i}: expected -----END PGP ${type}----- after the checksum line`);
    const c = CHECKSUM_LINE.exec(line);
    if (c) {
      checksum = c[1]!;
      continue;
    }
    if (!BASE64_LINE.test(line)) fail(`line ${i} is not base64`);
    body.push(line);
  }

  const b64 = body.join('');
  // Canonical padded base64: '=' only at the very end, length a multiple of 4, and no stray bits
  // (re-encoding must give back the same text — Buffer.from alone would silently skip garbage).
  if (b64.length % 4 !== 0 || /=[^=]/.test(b64)) fail(`the ${type} block's base64 is malformed`);
  const data = Buffer.from(b64, 'base64');
  if (data.toString('base64') !== b64) fail(`the ${type} block's base64 is not canonical`);
  if (data.length === 0) fail(`the ${type} block is empty`);
  if (checksum !== undefined) {
    const want = Buffer.from(checksum, 'base64');
    const got = crc24(data);
    if (want.length !== 3 || ((want[0]! << 16) | (want[1]! << 8) | want[2]!) !== got) fail(`the ${type} block's CRC24 checksum does not match its content`);
  }
  return { block: { type, headers, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) }, next: i };
}

/** Splits text into lines the way armor is read: on LF, with one trailing CR per line removed. */
export function armorLines(text: string): string[] {
  return text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/**
 * Every armored block of `type` in `text`, for keyring files (local, trusted input): text outside the
 * blocks is ignored, as gpg --import ignores it; each block is decoded strictly.
 */
export function readAllArmorBlocks(text: string, type: string): ArmorBlock[] {
  const lines = armorLines(text);
  const out: ArmorBlock[] = [];
  for (let i = 0; i < lines.length; ) {
    const a = armorLine(lines[i]!);
    if (a && a.kind === 'BEGIN' && a.type === type) {
      const { block, next } = readArmorBlock(lines, i);
      out.push(block);
      i = next;
    } else i++;
  }
  return out;
}
