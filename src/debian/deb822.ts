// deb822 control-file parsing (Debian Policy §5.1): paragraphs separated by blank lines (a line of
// only spaces/tabs counts as blank, as dpkg and apt treat it), `Field: value` lines, continuation lines
// starting with a space or tab. Hand-written because the measured alternative (debian-control) drops
// CRLF lines, trims continuation lines and merges paragraphs (see README, "Dependencies").
// Input here comes from the network (Release, Packages) and is attacker-controlled until a signature
// or hash check vouches for it; the parser never throws on odd text except where it must, and bounds
// nothing by recursion.
import { DistillError } from '../errors.js';

/** Field names are case-insensitive (Policy §5.1); keys are stored as first seen, looked up folded. */
// Field names repeat millions of times in an index: fold each distinct spelling once.
const folded = new Map<string, string>();
function fold(name: string): string {
  let k = folded.get(name);
  if (k === undefined) {
    k = name.toLowerCase();
    if (folded.size < 10_000) folded.set(name, k); // bounded: names are attacker-controlled text
  }
  return k;
}

export class Paragraph {
  private readonly fields = new Map<string, string>();
  readonly names: string[] = [];

  constructor(readonly line: number) {}

  set(name: string, value: string): void {
    const k = fold(name);
    if (!this.fields.has(k)) this.names.push(name);
    this.fields.set(k, value);
  }

  get(name: string): string | undefined {
    return this.fields.get(fold(name));
  }

  has(name: string): boolean {
    return this.fields.has(fold(name));
  }
}

/**
 * Parse text into paragraphs. Values keep their continuation lines joined by '\n' with the leading
 * space of each continuation removed; single-line values are trimmed. `what` names the input in errors.
 */
export function parseDeb822(text: string, what: string): Paragraph[] {
  const out: Paragraph[] = [];
  const parser = new Deb822Parser(what, (p) => out.push(p));
  parser.push(text);
  parser.end();
  return out;
}

/**
 * Incremental parser: feed text chunks (any boundaries), receive each paragraph as soon as it ends.
 * Used to parse a 56 MB Packages index while it decompresses.
 */
/**
 * The longest line accepted. Real Packages/Release lines are under 64 KiB (the longest are Description
 * and Provides); an attacker's 64 MiB line is refused at this length, so memory stays bounded.
 */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;

export class Deb822Parser {
  /** Pieces of the unfinished last line: kept apart and scanned once each, so parsing stays linear. */
  private carry: string[] = [];
  private carryLength = 0;
  private lineNo = 0;
  private current: Paragraph | undefined;
  private lastName: string | undefined;
  private lastValue = '';

  constructor(
    private readonly what: string,
    private readonly onParagraph: (p: Paragraph) => void,
  ) {}

  push(chunk: string): void {
    // Only the new chunk is searched for a newline: rescanning the carry on every chunk made one long
    // line quadratic (a 64 MiB line took minutes).
    const first = chunk.indexOf('\n');
    if (first < 0) {
      this.carry.push(chunk);
      this.carryLength += chunk.length;
      this.checkLineLength();
      return;
    }
    const text = chunk;
    let start = 0;
    if (this.carry.length > 0) {
      // The carried line ends in this chunk: join it once, then continue in the chunk.
      const line = this.carry.join('') + chunk.slice(0, first);
      this.carry = [];
      this.carryLength = 0;
      this.line(line, 0, line.length);
      start = first + 1;
    }
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      if (nl - start > MAX_LINE_BYTES) this.tooLong();
      this.line(text, start, nl);
      start = nl + 1;
    }
    if (start < text.length) {
      this.carry.push(text.slice(start));
      this.carryLength = text.length - start;
      this.checkLineLength();
    }
  }

  end(): void {
    if (this.carry.length > 0) {
      const t = this.carry.join('');
      this.carry = [];
      this.carryLength = 0;
      this.line(t, 0, t.length);
    }
    this.finishParagraph();
  }

  private checkLineLength(): void {
    if (this.carryLength > MAX_LINE_BYTES) this.tooLong();
  }

  private tooLong(): never {
    throw new DistillError('INDEX_MALFORMED', `${this.what}:${this.lineNo + 1}: a line longer than ${MAX_LINE_BYTES} bytes`, {
      hint: 'the index is corrupt or hostile; check the mirror',
    });
  }

  private line(text: string, start: number, endExclusive: number): void {
    this.lineNo++;
    let end = endExclusive;
    if (end > start && text.charCodeAt(end - 1) === 13) end--; // CRLF
    const first = text.charCodeAt(start);
    if (end === start || ((first === 32 || first === 9) && isBlank(text, start, end))) {
      this.finishParagraph();
      return;
    }
    if (first === 32 || first === 9) {
      // continuation line
      if (this.lastName === undefined) {
        throw new DistillError('INDEX_MALFORMED', `${this.what}:${this.lineNo}: continuation line outside a field`);
      }
      this.lastValue += '\n' + text.slice(start + 1, end);
      return;
    }
    if (first === 35 && this.current === undefined) return; // '#' comment between paragraphs (deb822(5))
    const colon = text.indexOf(':', start);
    if (colon < 0 || colon >= end || colon === start) {
      throw new DistillError('INDEX_MALFORMED', `${this.what}:${this.lineNo}: expected "Field: value", got ${JSON.stringify(text.slice(start, Math.min(end, start + 60)))}`);
    }
    this.flushField();
    if (this.current === undefined) this.current = new Paragraph(this.lineNo);
    this.lastName = text.slice(start, colon);
    this.lastValue = text.slice(colon + 1, end).trim();
  }

  private flushField(): void {
    if (this.current !== undefined && this.lastName !== undefined) {
      this.current.set(this.lastName, this.lastValue);
    }
    this.lastName = undefined;
    this.lastValue = '';
  }

  private finishParagraph(): void {
    this.flushField();
    if (this.current !== undefined) {
      const p = this.current;
      this.current = undefined;
      this.onParagraph(p);
    }
  }
}

function isBlank(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9) return false;
  }
  return true;
}
