// The one filesystem-entry type every stage after .deb reading uses (sanitised tar members, root
// filesystem assembly, layer writing), and the path normalisation that defines what a valid entry path
// is. Paths follow POSIX pathname rules ('/'-separated components); a normalised path is relative to
// the image root and has no '.', '..' or empty components, so it can never name anything outside the
// root however it is joined.
//
// Paths reaching normalisePath usually come from tar headers inside a .deb and are attacker-controlled:
// the function never throws and answers `undefined` for anything unsafe; callers decide how to refuse.

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink';

export interface FsEntry {
  /**
   * Normalised: relative, no leading './' or '/', no trailing '/', no '.', '..' or empty components,
   * e.g. 'usr/bin/python3'. '' is never valid (the root itself is not an entry).
   */
  path: string;
  type: EntryType;
  /** Permission bits only (0o7777 range), no file-type bits. */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Bytes of content for 'file', 0 otherwise. */
  size: number;
  /** symlink: the target exactly as stored; hardlink: the normalised path of the target entry. */
  linkTarget?: string;
  /** Integer seconds since the epoch, as stored (later stages overwrite it with the build timestamp). */
  mtime: number;
}

/** The permission bits a mode may carry: rwx for user/group/other, setuid, setgid, sticky. */
export const PERMISSION_BITS = 0o7777;
export const SETUID = 0o4000;
export const SETGID = 0o2000;
export const STICKY = 0o1000;

/**
 * Normalise a path: drop leading '/' and './', '.' and empty components and a trailing '/'.
 * `undefined` when the path is unsafe: it contains NUL, has a '..' component (anywhere: '..' is never
 * resolved lexically, since what it climbs out of may be a symlink), or names the root itself.
 */
export function normalisePath(raw: string): string | undefined {
  if (raw.includes('\0')) return undefined;
  const out: string[] = [];
  for (const c of raw.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') return undefined;
    out.push(c);
  }
  return out.length === 0 ? undefined : out.join('/');
}

/** The normalised parent of a normalised path; '' for a top-level entry. */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}
