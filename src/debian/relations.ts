// Debian relationship fields (Depends, Pre-Depends, Recommends, Provides, Breaks, Conflicts, Replaces):
// parse them into alternatives of relations, format them back, and evaluate [arch] restrictions.
// Follows Debian Policy §7.1 "Syntax of relationship fields" and dpkg's lib/dpkg/fields.c
// (f_dependency) scanner; the [arch] and <profile> restrictions, which only source packages use, follow
// dpkg's Dpkg::Deps and Dpkg::Arch (debarch_is, debarch_is_concerned).
//
// Fields come from package indexes, which are attacker-controlled: every failure is a DistillError
// (RELATION_INVALID, naming the field and the offending text), and the scanner only moves forward, so
// time is linear in the field's length.
//
// Where this is stricter than dpkg (which accepts with a warning, or at all):
//  - package names follow Policy §5.6.1: [a-z0-9][a-z0-9+.-]+ (dpkg also takes upper case, '_' and
//    one-character names); architecture qualifiers are [a-z0-9][a-z0-9-]* (dpkg also takes upper case);
//  - versions inside parentheses go through dpkg's strict version parser (see version.ts);
//  - Provides refuses operators other than '=' and arch qualifiers (dpkg only warns about the former).
//  - an [arch] list mixing plain and negated names is refused (Policy §7.1; Dpkg::Deps tolerates it).
// Like dpkg: '<' and '>' are the obsolete spellings of '<=' and '>=', "(1.0)" means "(= 1.0)", "=>" is
// '=' followed by a version starting with '>' (so invalid), empty entries ("a, , b", a trailing comma)
// are errors, and whitespace (including continuation-line newlines) may appear between any tokens.

import { DistillError } from '../errors.js';
import { parseVersion, quoteForMessage, type VersionOp } from './version.js';

export type RelationOp = VersionOp;

export interface Relation {
  name: string;
  /** From "pkg:any": 'any', 'native' or an architecture name. */
  archQualifier?: string;
  op?: RelationOp;
  /** Present exactly when `op` is; a valid Debian version. */
  version?: string;
  /**
   * "[amd64 arm64]" or "[!i386 !armel]" restrictions (source packages only, tolerated here). Policy §7.1
   * forbids mixing plain and negated names ("[amd64 !i386]"): that is refused.
   */
  arches?: { negated: boolean; list: string[] };
}

/** "a | b": any one of them satisfies. */
export type Alternatives = Relation[];

export interface ParseRelationsOptions {
  /**
   * Whether "a | b" is allowed. dpkg refuses it in Conflicts, Breaks, Replaces and Provides: pass false
   * when parsing those. Default true.
   */
  alternatives?: boolean;
}

const NAME_RE = /^[a-z0-9][a-z0-9+.-]+$/;
const ARCH_RE = /^[a-z0-9][a-z0-9-]*$/;
const PROFILE_RE = /^!?[a-z0-9][a-z0-9.+-]*$/;

/** dpkg's c_isspace(): space, \t, \n, \v, \f, \r. */
function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
}

class Scanner {
  pos = 0;
  constructor(
    readonly text: string,
    readonly what: string,
  ) {}

  peek(): string | undefined {
    return this.text[this.pos];
  }

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  skipSpace(): void {
    while (isSpace(this.text[this.pos])) this.pos++;
  }

  fail(reason: string, from = this.pos, cause?: unknown): DistillError {
    // Some context before the offending position and the text from it on, cut short.
    const lo = Math.max(0, from - 40);
    const shown = (lo > 0 ? '…' : '') + this.text.slice(lo, from + 80);
    return new DistillError(
      'RELATION_INVALID',
      `${this.what}: ${reason} (at offset ${from}, near ${quoteForMessage(shown)})`,
      {
        hint: 'relationship fields are "name[:arch] [(op version)]" entries separated by "," and "|" (Debian Policy §7.1); if this came from a package index, the index is malformed',
        ...(cause === undefined ? {} : { cause }),
      },
    );
  }
}

function parseOne(sc: Scanner): Relation {
  const start = sc.pos;
  // dpkg ends a name at space, ':', '(', ',' or '|'; '[' and '<' start source-only restrictions.
  while (!sc.atEnd()) {
    const c = sc.peek();
    if (isSpace(c) || c === ':' || c === '(' || c === ',' || c === '|' || c === '[' || c === '<') break;
    sc.pos++;
  }
  const name = sc.text.slice(start, sc.pos);
  if (name === '') throw sc.fail('missing package name, or garbage where package name expected', start);
  if (!NAME_RE.test(name)) {
    throw sc.fail(
      `invalid package name ${quoteForMessage(name)} (lower-case letters, digits, '+', '-' and '.'; at least two characters, starting alphanumeric)`,
      start,
    );
  }
  const rel: Relation = { name };

  if (sc.peek() === ':') {
    sc.pos++;
    const qStart = sc.pos;
    while (!sc.atEnd()) {
      const c = sc.peek();
      if (isSpace(c) || c === '(' || c === ',' || c === '|' || c === '[' || c === '<') break;
      sc.pos++;
    }
    const qual = sc.text.slice(qStart, sc.pos);
    if (qual === '') throw sc.fail('missing architecture name, or garbage where architecture name expected', qStart);
    if (!ARCH_RE.test(qual)) throw sc.fail(`invalid architecture qualifier ${quoteForMessage(qual)} of ${name}`, qStart);
    rel.archQualifier = qual;
  }
  sc.skipSpace();

  if (sc.peek() === '(') {
    const open = sc.pos;
    sc.pos++;
    sc.skipSpace();
    const c1 = sc.peek();
    let op: RelationOp;
    if (c1 === '<' || c1 === '>') {
      sc.pos++;
      const c2 = sc.peek();
      if (c2 === '=') {
        op = c1 === '<' ? '<=' : '>=';
        sc.pos++;
      } else if (c2 === c1) {
        op = c1 === '<' ? '<<' : '>>';
        sc.pos++;
      } else if (c2 === '<' || c2 === '>') {
        throw sc.fail(`bad version relationship ${c1}${c2} for ${name}`, open);
      } else {
        // Obsolete: dpkg warns "'<' is obsolete, use '<=' or '<<' instead" and reads it as '<='.
        op = c1 === '<' ? '<=' : '>=';
      }
    } else if (c1 === '=') {
      op = '=';
      sc.pos++;
    } else {
      // dpkg warns "implicit exact match on version number, suggest using '=' instead".
      op = '=';
    }
    sc.skipSpace();
    const vStart = sc.pos;
    while (!sc.atEnd() && sc.peek() !== ')' && sc.peek() !== '(' && !isSpace(sc.peek())) sc.pos++;
    const version = sc.text.slice(vStart, sc.pos);
    sc.skipSpace();
    if (sc.atEnd()) throw sc.fail(`version of ${name} unterminated (missing ')')`, open);
    if (sc.peek() !== ')') throw sc.fail(`version of ${name} contains ${quoteForMessage(sc.peek() ?? '')} instead of ')'`, open);
    try {
      parseVersion(version, `${sc.what}, version of ${name}`);
    } catch (e) {
      throw sc.fail(`invalid version ${quoteForMessage(version)} for ${name}`, open, e);
    }
    sc.pos++;
    sc.skipSpace();
    rel.op = op;
    rel.version = version;
  }

  if (sc.peek() === '[') {
    const open = sc.pos;
    const close = sc.text.indexOf(']', open);
    if (close < 0) throw sc.fail(`unterminated architecture restriction for ${name} (missing ']')`, open);
    const terms = sc.text.slice(open + 1, close).split(/[ \t\n\v\f\r]+/).filter((t) => t !== '');
    if (terms.length === 0) throw sc.fail(`empty architecture restriction for ${name}`, open);
    const negated = terms[0]!.startsWith('!');
    const list: string[] = [];
    for (const t of terms) {
      if (t.startsWith('!') !== negated) {
        throw sc.fail(`architecture restriction for ${name} mixes negated and plain architectures`, open);
      }
      const arch = negated ? t.slice(1) : t;
      if (!ARCH_RE.test(arch)) throw sc.fail(`invalid architecture ${quoteForMessage(t)} in restriction for ${name}`, open);
      list.push(arch);
    }
    rel.arches = { negated, list };
    sc.pos = close + 1;
    sc.skipSpace();
  }

  // Build profiles "<!nocheck> <stage1 cross>": validated, then dropped.
  while (sc.peek() === '<') {
    const open = sc.pos;
    const close = sc.text.indexOf('>', open);
    if (close < 0) throw sc.fail(`unterminated build profile restriction for ${name} (missing '>')`, open);
    const terms = sc.text.slice(open + 1, close).split(/[ \t\n\v\f\r]+/).filter((t) => t !== '');
    if (terms.length === 0) throw sc.fail(`empty build profile restriction for ${name}`, open);
    for (const t of terms) {
      if (!PROFILE_RE.test(t)) throw sc.fail(`invalid build profile ${quoteForMessage(t)} for ${name}`, open);
    }
    sc.pos = close + 1;
    sc.skipSpace();
  }
  return rel;
}

function parseField(field: string, what: string, alternatives: boolean): Alternatives[] {
  if (typeof field !== 'string') {
    throw new DistillError('RELATION_INVALID', `${what}: expected a string, got ${typeof field}`);
  }
  const sc = new Scanner(field, what);
  sc.skipSpace();
  if (sc.atEnd()) return []; // dpkg: "Empty fields are ignored."
  const out: Alternatives[] = [];
  for (;;) {
    const alts: Alternatives = [];
    for (;;) {
      const before = sc.pos;
      alts.push(parseOne(sc));
      if (sc.atEnd() || sc.peek() === ',') break;
      if (sc.peek() !== '|') {
        throw sc.fail(`syntax error after reference to package ${alts[alts.length - 1]!.name}`, before);
      }
      if (!alternatives) throw sc.fail("alternatives ('|') not allowed in this field", sc.pos);
      sc.pos++;
      sc.skipSpace();
    }
    out.push(alts);
    if (sc.atEnd()) break;
    sc.pos++; // the ','
    sc.skipSpace();
  }
  return out;
}

/**
 * Parses a relationship field: "a (>= 1), b | c:any, d [amd64]" → [[a], [b, c], [d]].
 * An empty (or all-whitespace) field is []. Throws RELATION_INVALID naming `what` and the offending text.
 */
export function parseRelations(field: string, what: string, options: ParseRelationsOptions = {}): Alternatives[] {
  return parseField(field, what, options.alternatives ?? true);
}

/** Parses a Provides field: names with optional "(= version)"; no alternatives, qualifiers or restrictions. */
export function parseProvides(field: string, what: string): { name: string; version?: string }[] {
  const groups = parseField(field, what, false);
  return groups.map((alts) => {
    const r = alts[0]!;
    const fail = (reason: string): DistillError =>
      new DistillError('RELATION_INVALID', `${what}: ${reason} in Provides entry ${quoteForMessage(formatRelation(r))}`, {
        hint: 'Provides entries are "name" or "name (= version)" (Debian Policy §7.5)',
      });
    if (r.op !== undefined && r.op !== '=') throw fail(`only exact versions ('=') may be provided, not '${r.op}'`);
    if (r.archQualifier !== undefined) throw fail('an architecture qualifier is not allowed');
    if (r.arches !== undefined) throw fail('an architecture restriction is not allowed');
    return r.version === undefined ? { name: r.name } : { name: r.name, version: r.version };
  });
}

/** Canonical text: "name:qual (op version) [arch !arch]" (build profiles were dropped at parse time). */
export function formatRelation(r: Relation): string {
  let s = r.name;
  if (r.archQualifier !== undefined) s += `:${r.archQualifier}`;
  if (r.op !== undefined && r.version !== undefined) s += ` (${r.op} ${r.version})`;
  if (r.arches !== undefined && r.arches.list.length > 0) {
    const bang = r.arches.negated ? '!' : '';
    s += ` [${r.arches.list.map((a) => bang + a).join(' ')}]`;
  }
  return s;
}

/** A whole field back to text: "a (>= 1), b | c". */
export function formatRelations(groups: readonly Alternatives[]): string {
  return groups.map((alts) => alts.map(formatRelation).join(' | ')).join(', ');
}

// Debian architecture → (abi, libc, os, cpu), after dpkg's tupletable/cputable, for the architectures a
// wildcard restriction ("linux-any", "any-amd64", "any-arm") can be resolved against. An architecture
// absent from this table matches only itself and "any".
const TUPLES: Record<string, readonly [string, string, string, string]> = {
  amd64: ['base', 'gnu', 'linux', 'amd64'],
  arm64: ['base', 'gnu', 'linux', 'arm64'],
  armel: ['eabi', 'gnu', 'linux', 'arm'],
  armhf: ['eabihf', 'gnu', 'linux', 'arm'],
  i386: ['base', 'gnu', 'linux', 'i386'],
  mips64el: ['abi64', 'gnu', 'linux', 'mips64el'],
  mipsel: ['base', 'gnu', 'linux', 'mipsel'],
  ppc64el: ['base', 'gnu', 'linux', 'ppc64el'],
  ppc64: ['base', 'gnu', 'linux', 'ppc64'],
  powerpc: ['base', 'gnu', 'linux', 'powerpc'],
  riscv64: ['base', 'gnu', 'linux', 'riscv64'],
  s390x: ['base', 'gnu', 'linux', 's390x'],
  loong64: ['base', 'gnu', 'linux', 'loong64'],
  alpha: ['base', 'gnu', 'linux', 'alpha'],
  hppa: ['base', 'gnu', 'linux', 'hppa'],
  ia64: ['base', 'gnu', 'linux', 'ia64'],
  m68k: ['base', 'gnu', 'linux', 'm68k'],
  sh4: ['base', 'gnu', 'linux', 'sh4'],
  sparc64: ['base', 'gnu', 'linux', 'sparc64'],
  x32: ['x32', 'gnu', 'linux', 'amd64'],
  'hurd-i386': ['base', 'gnu', 'hurd', 'i386'],
  'hurd-amd64': ['base', 'gnu', 'hurd', 'amd64'],
  'kfreebsd-amd64': ['base', 'gnu', 'kfreebsd', 'amd64'],
  'kfreebsd-i386': ['base', 'gnu', 'kfreebsd', 'i386'],
  'musl-linux-amd64': ['base', 'musl', 'linux', 'amd64'],
  'musl-linux-arm64': ['base', 'musl', 'linux', 'arm64'],
};

/** Dpkg::Arch debwildcard_to_debtuple: "linux-any" → any-any-linux-any, "any-arm" → any-any-any-arm. */
function wildcardTuple(pattern: string): readonly string[] | undefined {
  const parts = pattern.split('-');
  if (!parts.includes('any')) return TUPLES[pattern];
  if (parts.length > 4) return undefined;
  return [...Array<string>(4 - parts.length).fill('any'), ...parts];
}

/** Dpkg::Arch debarch_is: whether `arch` is `pattern` (an architecture or a wildcard). */
export function archMatches(arch: string, pattern: string): boolean {
  if (arch === pattern || pattern === 'any') return true;
  const real = TUPLES[arch];
  const wild = wildcardTuple(pattern);
  if (real === undefined || wild === undefined) return false;
  return wild.every((part, k) => part === 'any' || part === real[k]);
}

/**
 * Whether the relation's "[...]" restriction includes `arch` (true when it has none): "[amd64 arm64]"
 * includes only those, "[!i386 !armel]" all but those; entries may be wildcards such as "linux-any".
 */
export function relationAppliesToArch(r: Relation, arch: string): boolean {
  if (r.arches === undefined || r.arches.list.length === 0) return true;
  const hit = r.arches.list.some((p) => archMatches(arch, p));
  return r.arches.negated ? !hit : hit;
}
