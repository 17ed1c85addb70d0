// Runtime-file filtering: which files of a package land in the image. By default everything a
// program needs at run time stays and documentation, manuals, translations and bug-report hooks go —
// the paths Ubuntu's minimal images drop with dpkg path-exclude, keeping each package's copyright
// (licences must travel with the binaries) and the C.utf8 locale. Per-image rules add to these.
// Patterns are globs over normalised paths: `*` within one path component, `**` across components,
// `?` one character; a leading `/` is ignored.

export interface PathRules {
  /** Paths to keep even when a drop rule matches. */
  keep?: readonly string[];
  /** Paths to drop. */
  drop?: readonly string[];
}

export const DEFAULT_DROP: readonly string[] = [
  'usr/share/doc/**',
  'usr/share/man/**',
  'usr/share/info/**',
  'usr/share/lintian/**',
  'usr/share/linda/**',
  'usr/share/groff/**',
  'usr/share/bug/**',
  'usr/share/locale/**',
  'usr/lib/locale/**',
  'usr/share/doc-base/**',
  'usr/share/menu/**',
];

export const DEFAULT_KEEP: readonly string[] = [
  'usr/share/doc/*/copyright',
  'usr/lib/locale/C.utf8',
  'usr/lib/locale/C.utf8/**',
];

export function globToRegExp(glob: string): RegExp {
  const g = glob.replace(/^\/+/, '').replace(/\/+$/, '');
  let re = '';
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === '*') {
      if (g[i + 1] === '*') {
        // `**/` matches zero or more whole components; a trailing `**` anything below.
        if (g[i + 2] === '/') {
          re += '(?:.*/)?';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export interface PathFilter {
  /** Whether a non-directory entry at `path` is kept. */
  keepFile(path: string): boolean;
  /** Whether a directory is kept on its own (it is also kept when anything kept lies below it). */
  keepDir(path: string): boolean;
}

/**
 * Precedence, most specific first: the image's keep, the image's drop, the default keep, the default
 * drop; anything unmatched is kept.
 */
export function pathFilter(rules: PathRules = {}): PathFilter {
  const userKeep = (rules.keep ?? []).map(globToRegExp);
  const userDrop = (rules.drop ?? []).map(globToRegExp);
  const defKeep = DEFAULT_KEEP.map(globToRegExp);
  const defDrop = DEFAULT_DROP.map(globToRegExp);
  const any = (res: RegExp[], p: string): boolean => res.some((r) => r.test(p));
  const keep = (p: string): boolean => {
    if (any(userKeep, p)) return true;
    if (any(userDrop, p)) return false;
    if (any(defKeep, p)) return true;
    if (any(defDrop, p)) return false;
    return true;
  };
  return {
    keepFile: keep,
    // A directory is dropped when the rules would drop a file directly inside it: `usr/share/man/**`
    // drops usr/share/man/man1 but not usr/share (nor usr/share/man itself, which the rules do not
    // reach, unless written as a pattern matching it).
    keepDir: (p) => keep(p) && keep(`${p}/\0`),
  };
}
