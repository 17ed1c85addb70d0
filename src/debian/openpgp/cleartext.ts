// The cleartext signature framework: splitting a clearsigned file (Debian's InRelease) into the
// signed text, the bytes its text-mode signatures hash, and the binary signature packets — strictly,
// the way apt has split InRelease files since the CVE-2019-3462-era hardening: nothing but
// whitespace before the BEGIN line or after the END line, one signed message only, only `Hash:`
// armor headers and then a blank line, every text line beginning with '-' dash-escaped.
//
// Follows RFC 4880 §7 (and §7.1 dash-escaping), RFC 9580 §7 and §5.2.1 (text signatures: trailing
// spaces and tabs are not signed, line endings are hashed as CR LF, the final line ending is not
// part of the signed text).
//
// Attacker-controlled input: the whole file comes from the network. The caller must use only
// `signedText` — never re-read the original file — so that nothing outside the signature reaches it.
import { armorLine, armorLines, readArmorBlock } from './armor.js';
import { isKnownHashName, OpenPgpFormatError } from './packets.js';

export interface ClearsignedParts {
  /**
   * The signed text as the caller gets it: dash-unescaped, trailing spaces and tabs removed from every
   * line (they are not covered by a text signature, so they are not handed on), lines joined with \n
   * and a final \n, as apt writes the Release file. Empty when the message has no lines.
   */
  signedText: string;
  /** What a text-mode (0x01) signature hashes: the same lines joined with CR LF, no final line ending. */
  hashInput: Uint8Array;
  /** The algorithm names of the `Hash:` armor headers, or undefined when there is none. */
  hashHeaders: string[] | undefined;
  /** The decoded signature block: one or more signature packets. */
  signature: Uint8Array;
}

const BEGIN_SIGNED = 'SIGNED MESSAGE';
const BEGIN_SIGNATURE = 'SIGNATURE';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Splits a clearsigned file; throws OpenPgpFormatError on anything apt would refuse. */
export function parseCleartext(input: Uint8Array | string): ClearsignedParts {
  const fail = (msg: string): never => {
    throw new OpenPgpFormatError(msg);
  };
  // Work on bytes seen one-to-one as characters (latin1), so the hashed bytes are exactly the file's
  // bytes whatever their encoding; the signed text is decoded as UTF-8 at the end.
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const lines = armorLines(bytes.toString('latin1'));
  const blank = (l: string): boolean => /^[ \t]*$/.test(l);

  let i = 0;
  while (i < lines.length && blank(lines[i]!)) i++;
  const begin = armorLine(lines[i] ?? '');
  if (!begin || begin.kind !== 'BEGIN' || begin.type !== BEGIN_SIGNED) {
    fail(i >= lines.length ? 'the file is empty' : `line ${i + 1}: expected -----BEGIN PGP SIGNED MESSAGE----- (the file is not clearsigned, or has text before the signed message)`);
  }
  i++;

  // Armor headers: RFC 4880 §7 allows only `Hash:`; then exactly one empty line.
  let hashHeaders: string[] | undefined;
  for (;;) {
    const line = lines[i];
    if (line === undefined) fail('the signed message ends inside its armor headers');
    i++;
    if (line === '') break;
    const m = /^Hash: (.+)$/.exec(line!);
    if (!m) fail(`line ${i}: expected a "Hash:" armor header or the blank line that ends the headers`);
    for (const name of m![1]!.split(',').map((s) => s.trim())) {
      if (!isKnownHashName(name)) fail(`line ${i}: unknown hash algorithm ${JSON.stringify(name)} in the Hash header`);
      (hashHeaders ??= []).push(name);
    }
  }

  // The dash-escaped text, up to the signature's BEGIN line.
  const text: string[] = [];
  for (;;) {
    const line = lines[i];
    if (line === undefined) fail('the signed message has no -----BEGIN PGP SIGNATURE----- block');
    if (line!.startsWith('-')) {
      const a = armorLine(line!);
      if (a && a.kind === 'BEGIN' && a.type === BEGIN_SIGNATURE) break;
      // Anything else beginning with '-' must be dash-escaped: this is also what refuses a nested or
      // second signed message and a stray armor line.
      if (!line!.startsWith('- ')) fail(`line ${i + 1} begins with '-' but is not dash-escaped`);
      text.push(line!.slice(2));
    } else text.push(line!);
    i++;
  }

  const { block, next } = readArmorBlock(lines, i);
  for (let j = next; j < lines.length; j++) {
    if (!blank(lines[j]!)) fail(`line ${j + 1}: text after the signature block`);
  }

  const stripped = text.map((l) => l.replace(/[ \t]+$/, ''));
  const hashInput = Buffer.from(stripped.join('\r\n'), 'latin1');
  let signedText: string;
  try {
    signedText = utf8.decode(Buffer.from(stripped.length === 0 ? '' : stripped.join('\n') + '\n', 'latin1'));
  } catch {
    fail('the signed text is not valid UTF-8');
  }
  return {
    signedText: signedText!,
    hashInput: new Uint8Array(hashInput.buffer, hashInput.byteOffset, hashInput.byteLength),
    hashHeaders,
    signature: block.data,
  };
}
