// Declared licences of a Debian package, read from its machine-readable debian/copyright (DEP-5,
// https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/) and written as an SPDX license
// expression (SPDX 2.3 Annex D).
//
// Decisions:
//  - Only a file whose Format: names copyright-format is read; any other copyright file (free text, as
//    glibc's once was, gcc's or Python's still are) gives undefined: NOASSERTION, because guessing from
//    prose would declare licences nobody declared.
//  - The package's expression is the conjunction of every Files paragraph's licence (and the header's,
//    when it has one): each file of the source is under its own licence, so the package is under all of
//    them together — what syft and Trivy do with the same files. A Files paragraph without a licence
//    synopsis makes the whole package undetermined (undefined), never a partial answer.
//  - DEP-5 short names become SPDX identifiers through the table below (GPL-2+ → GPL-2.0-or-later,
//    Expat → MIT, …); a `~variant` suffix (BSD-3-clause~Google) is the base licence with other holders.
//    A name with no SPDX identifier becomes LicenseRef-<name>, with the text of its stand-alone License
//    paragraph (or of the Files paragraph) as the extracted text SPDX requires for every LicenseRef.
//  - DEP-5 precedence: `and` binds tighter than `or`, as in SPDX; a comma ends a group and binds
//    loosest ("A or B, and C" = (A OR B) AND C). `X with Y exception` becomes `X WITH <SPDX exception>`
//    when Y is a listed SPDX exception, else one LicenseRef for the whole phrase.
//  - The file is attacker-controlled layer content: size-capped by the caller, parsed without
//    recursion, and every name reduced to [A-Za-z0-9.-] before it becomes an identifier.
import { parseDeb822 } from '../debian/deb822.js';
import { sha256Hex } from '../digest.js';

/** A licence with no SPDX identifier, defined in the document's hasExtractedLicensingInfos. */
export interface ExtractedLicense {
  /** LicenseRef-… */
  licenseId: string;
  /** The DEP-5 name it stands for. */
  name: string;
  extractedText: string;
}

export interface DeclaredLicense {
  expression: string;
  /** LicenseRefs the expression uses (ids not yet made unique across a document). */
  extracted: ExtractedLicense[];
}

// SPDX License List identifiers that Debian copyright files name verbatim or nearly (case-insensitive).
export const SPDX_IDS = [
  '0BSD', 'AFL-2.0', 'AFL-2.1', 'AFL-3.0', 'AGPL-3.0-only', 'AGPL-3.0-or-later', 'APSL-2.0', 'Apache-1.0', 'Apache-1.1', 'Apache-2.0',
  'Artistic-1.0', 'Artistic-1.0-Perl', 'Artistic-2.0', 'Beerware', 'BSD-1-Clause', 'BSD-2-Clause', 'BSD-2-Clause-Patent', 'BSD-3-Clause',
  'BSD-3-Clause-Attribution', 'BSD-3-Clause-Clear', 'BSD-3-Clause-LBNL', 'BSD-4-Clause', 'BSD-4-Clause-UC', 'BSD-Source-Code', 'BSL-1.0',
  'bzip2-1.0.6', 'CC-BY-3.0', 'CC-BY-4.0', 'CC-BY-SA-3.0', 'CC-BY-SA-4.0', 'CC0-1.0', 'CDDL-1.0', 'CDDL-1.1', 'curl', 'ECL-2.0', 'EPL-1.0',
  'EPL-2.0', 'EUPL-1.2', 'FSFAP', 'FSFUL', 'FSFULLR', 'FTL', 'GFDL-1.2-only', 'GFDL-1.2-or-later', 'GFDL-1.3-only', 'GFDL-1.3-or-later',
  'AGPL-1.0-only', 'AGPL-1.0-or-later', 'GFDL-1.1-only', 'GFDL-1.1-or-later', 'GFDL-1.2-no-invariants-or-later', 'GFDL-1.3-no-invariants-only',
  'GFDL-1.3-no-invariants-or-later', 'GPL-1.0-only', 'GPL-1.0-or-later', 'GPL-2.0-only', 'GPL-2.0-or-later', 'GPL-3.0-only', 'GPL-3.0-or-later', 'HPND', 'ICU', 'IJG', 'Info-ZIP',
  'Inner-Net-2.0', 'ISC', 'LGPL-2.0-only', 'LGPL-2.0-or-later', 'LGPL-2.1-only', 'LGPL-2.1-or-later', 'LGPL-3.0-only', 'LGPL-3.0-or-later',
  'Libpng', 'libpng-2.0', 'libtiff', 'LPPL-1.3c', 'MIT', 'MIT-0', 'MIT-CMU', 'MIT-Modern-Variant', 'MPL-1.0', 'MPL-1.1', 'MPL-2.0', 'MS-PL',
  'NCSA', 'NTP', 'OFL-1.0', 'OFL-1.1', 'OLDAP-2.8', 'OpenSSL', 'PHP-3.01', 'PostgreSQL', 'PSF-2.0', 'Python-2.0', 'Ruby', 'Sleepycat',
  'SGI-B-2.0', 'SunPro', 'TCL', 'Unicode-3.0', 'Unicode-DFS-2015', 'Unicode-DFS-2016', 'Unlicense', 'UPL-1.0', 'Vim', 'W3C', 'W3C-20150513',
  'WTFPL', 'X11', 'X11-distribute-modifications-variant', 'Zlib', 'zlib-acknowledgement', 'ZPL-2.1',
];
const BY_LOWER = new Map(SPDX_IDS.map((id) => [id.toLowerCase(), id]));

/** Debian short names (copyright-format 1.0, "License specification") that differ from SPDX's. */
const DEBIAN_NAMES: Readonly<Record<string, string>> = {
  expat: 'MIT', 'mit/x11': 'MIT', 'bsd-2': 'BSD-2-Clause', 'bsd-3': 'BSD-3-Clause', 'bsd-4': 'BSD-4-Clause',
  artistic: 'Artistic-1.0-Perl', 'artistic-1.0': 'Artistic-1.0-Perl', 'perl': 'Artistic-1.0-Perl OR GPL-1.0-or-later',
  cc0: 'CC0-1.0', zlib: 'Zlib', python: 'Python-2.0', 'python-2.0': 'Python-2.0', 'psf-2': 'PSF-2.0', 'psf-2.0': 'PSF-2.0',
  libpng: 'Libpng', 'bsl-1.0': 'BSL-1.0', 'boost-1.0': 'BSL-1.0', unlicense: 'Unlicense', 'gfdl-niv-1.3+': 'GFDL-1.3-no-invariants-or-later',
  'gfdl-niv-1.3': 'GFDL-1.3-no-invariants-only', 'gfdl-niv-1.2+': 'GFDL-1.2-no-invariants-or-later', wtfpl: 'WTFPL',
};

/** GPL / LGPL / AGPL / GFDL / MPL with a version and an optional '+': the SPDX -only / -or-later forms. */
function versioned(name: string): string | undefined {
  const m = /^(a?gpl|lgpl|gfdl)(?:-?(\d+(?:\.\d+)?))?(\+)?$/i.exec(name);
  if (!m) return undefined;
  const family = m[1]!.toUpperCase();
  let version = m[2];
  let plus = m[3] === '+';
  // DEP-5: "GPL" without a version means any version; Debian's LGPL without one, the library GPL 2.0.
  if (version === undefined) {
    version = family === 'LGPL' ? '2' : family === 'AGPL' ? '3' : family === 'GFDL' ? '1.1' : '1';
    plus = true;
  }
  if (!version.includes('.')) version = `${version}.0`;
  return BY_LOWER.get(`${family}-${version}-${plus ? 'or-later' : 'only'}`.toLowerCase());
}

/** The SPDX identifier (or small expression) for one DEP-5 licence name, or undefined. */
export function spdxIdFor(name: string): string | undefined {
  const n = name.trim();
  const lower = n.toLowerCase();
  if (Object.hasOwn(DEBIAN_NAMES, lower)) return DEBIAN_NAMES[lower];
  const direct = BY_LOWER.get(lower) ?? versioned(n);
  if (direct !== undefined) return direct;
  // BSD-3-clause~Google: the same licence text with other copyright holders.
  const tilde = n.indexOf('~');
  if (tilde > 0) return spdxIdFor(n.slice(0, tilde));
  return undefined;
}

/** SPDX exceptions that Debian files name after `with`. */
function spdxException(phrase: string, licenseId: string): string | undefined {
  const p = phrase.toLowerCase().replace(/\s+exception$/, '').trim();
  if (/^autoconf$/.test(p)) return licenseId.startsWith('GPL-3') ? 'Autoconf-exception-3.0' : 'Autoconf-exception-2.0';
  const table: Record<string, string> = {
    bison: 'Bison-exception-2.2', libtool: 'Libtool-exception', font: 'Font-exception-2.0', classpath: 'Classpath-exception-2.0',
    'gcc-3.1': 'GCC-exception-3.1', gcc: 'GCC-exception-3.1', llvm: 'LLVM-exception', 'linux-syscall-note': 'Linux-syscall-note',
    'autoconf-2.0': 'Autoconf-exception-2.0', 'autoconf-3.0': 'Autoconf-exception-3.0',
  };
  return Object.hasOwn(table, p) ? table[p] : undefined;
}

const refSafe = (s: string): string => s.replace(/\+/g, '-or-later').replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80) || 'unnamed';

/** The first line of a License field (its synopsis) and the rest (the text, if given there). */
function splitLicense(value: string): { synopsis: string; text: string } {
  const nl = value.indexOf('\n');
  const synopsis = (nl < 0 ? value : value.slice(0, nl)).trim();
  const text = nl < 0 ? '' : value.slice(nl + 1).split('\n').map((l) => (l.trim() === '.' ? '' : l)).join('\n').trim();
  return { synopsis, text };
}

/**
 * The SPDX expression declared by a DEP-5 copyright file, or undefined when the file is not
 * machine-readable or some Files paragraph does not say its licence.
 */
export function declaredLicense(copyright: string): DeclaredLicense | undefined {
  let paragraphs;
  try {
    paragraphs = parseDeb822(copyright, 'debian/copyright');
  } catch {
    return undefined;
  }
  const header = paragraphs[0];
  if (!header || !/copyright-format|dep-?5/i.test(header.get('Format') ?? header.get('Format-Specification') ?? '')) return undefined;
  // Stand-alone License paragraphs (no Files field) give the text of a licence named elsewhere.
  const texts = new Map<string, string>();
  for (const p of paragraphs.slice(1)) {
    if (p.has('Files')) continue;
    const l = p.get('License');
    if (l === undefined) continue;
    const { synopsis, text } = splitLicense(l);
    if (synopsis && text) texts.set(synopsis.toLowerCase(), text);
  }
  const extracted = new Map<string, ExtractedLicense>();
  const ref = (name: string, fallbackText: string): string => {
    const licenseId = `LicenseRef-${refSafe(name)}`;
    if (!extracted.has(licenseId)) {
      const text = texts.get(name.toLowerCase()) || fallbackText || `The licence named "${name}" in the package's debian/copyright (no text given there).`;
      extracted.set(licenseId, { licenseId, name, extractedText: text });
    }
    return licenseId;
  };
  /** One licence name, possibly with an exception, as an SPDX simple expression. */
  const term = (raw: string, paragraphText: string): string | undefined => {
    const t = raw.trim();
    if (t === '') return undefined;
    const w = /^(\S+)\s+with\s+(.+?)\s*$/i.exec(t);
    if (w) {
      const base = spdxIdFor(w[1]!);
      const exc = base !== undefined && !base.includes(' ') ? spdxException(w[2]!, base) : undefined;
      return base !== undefined && exc !== undefined ? `${base} WITH ${exc}` : ref(t, texts.get(t.toLowerCase()) ?? paragraphText);
    }
    return spdxIdFor(t) ?? ref(t, paragraphText);
  };
  /** A DEP-5 synopsis as an SPDX expression (parenthesised when compound). */
  const synopsisExpression = (synopsis: string, paragraphText: string): string | undefined => {
    const groups = synopsis.split(',').map((g) => g.trim()).filter((g) => g !== '');
    const out: string[] = [];
    let joiner = ' AND ';
    for (const [i, g0] of groups.entries()) {
      let g = g0;
      if (i > 0) {
        const j = /^(and|or)\s+/i.exec(g);
        if (j) {
          joiner = j[1]!.toLowerCase() === 'or' ? ' OR ' : ' AND ';
          g = g.slice(j[0].length);
        }
      }
      const parts = g.split(/\s+(and|or)\s+/i);
      const expr: string[] = [];
      for (let k = 0; k < parts.length; k++) {
        if (k % 2 === 1) {
          expr.push(parts[k]!.toLowerCase() === 'or' ? 'OR' : 'AND');
          continue;
        }
        const s = term(parts[k]!, paragraphText);
        if (s === undefined) return undefined;
        expr.push(s.includes(' OR ') || s.includes(' AND ') ? `(${s})` : s);
      }
      out.push(expr.length > 1 ? `(${expr.join(' ')})` : expr[0]!);
    }
    if (out.length === 0) return undefined;
    return out.length === 1 ? out[0] : `(${out.join(joiner)})`;
  };

  const expressions = new Set<string>();
  const filesParagraphs = paragraphs.filter((p) => p.has('Files'));
  if (filesParagraphs.length === 0) return undefined;
  const headerLicense = header.get('License');
  const sources = [...(headerLicense !== undefined && splitLicense(headerLicense).synopsis !== '' ? [header] : []), ...filesParagraphs];
  for (const p of sources) {
    const value = p.get('License');
    if (value === undefined) return undefined;
    const { synopsis, text } = splitLicense(value);
    if (synopsis === '') return undefined;
    const e = synopsisExpression(synopsis, text);
    if (e === undefined) return undefined;
    expressions.add(e);
  }
  const list = [...expressions].sort();
  const strip = (e: string): string => (list.length === 1 && e.startsWith('(') && e.endsWith(')') && balanced(e.slice(1, -1)) ? e.slice(1, -1) : e);
  const expression = list.length === 1 ? strip(list[0]!) : list.join(' AND ');
  const used = [...extracted.values()].filter((x) => new RegExp(`(^|[ (])${x.licenseId.replace(/[.]/g, '\\.')}($|[ )])`).test(expression));
  return { expression, extracted: used.sort((a, b) => (a.licenseId < b.licenseId ? -1 : 1)) };
}

function balanced(s: string): boolean {
  let depth = 0;
  for (const c of s) {
    if (c === '(') depth++;
    else if (c === ')' && --depth < 0) return false;
  }
  return depth === 0;
}

/**
 * LicenseRefs made unique across a document: a name whose texts differ between packages gets one id per
 * text (the id suffixed with 8 hex of the text's sha256); the same text under the same name, one id.
 * Returns the renaming per package-local id and text, and the document's hasExtractedLicensingInfos.
 */
export function unifyExtracted(perPackage: readonly ExtractedLicense[][]): {
  rename: (x: ExtractedLicense) => string;
  infos: { licenseId: string; extractedText: string; name: string }[];
} {
  const textsById = new Map<string, Set<string>>();
  for (const list of perPackage) for (const x of list) textsById.set(x.licenseId, (textsById.get(x.licenseId) ?? new Set()).add(x.extractedText));
  const rename = (x: ExtractedLicense): string => ((textsById.get(x.licenseId)?.size ?? 1) > 1 ? `${x.licenseId}-${sha256Hex(x.extractedText).slice(0, 8)}` : x.licenseId);
  const infos = new Map<string, { licenseId: string; extractedText: string; name: string }>();
  for (const list of perPackage) for (const x of list) infos.set(rename(x), { licenseId: rename(x), extractedText: x.extractedText, name: x.name });
  return { rename, infos: [...infos.values()].sort((a, b) => (a.licenseId < b.licenseId ? -1 : a.licenseId > b.licenseId ? 1 : 0)) };
}
