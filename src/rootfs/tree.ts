// One layer's file tree: the union of its packages' (filtered) entries and distill's generated files,
// with dpkg's rules for two packages shipping one path: directories merge; a file or link shipped
// twice must be identical, or the later package must declare Replaces on the earlier one — anything
// else is an error naming both. Merged /usr (Debian 12+, whose base-files ships bin → usr/bin, …): a
// path under bin/, sbin/ or lib*/ is rewritten under usr/ so every binary finds its loader and
// libraries where it asks. Paths already present in a lower layer are checked the same way.
import type { FsEntry } from './entry.js';
import { DistillError } from '../errors.js';

/** Where a file's bytes are: staged on disk (from a .deb) or generated in memory. */
export type Body = { kind: 'staged'; path: string; sha256: string } | { kind: 'bytes'; data: Buffer; sha256: string };

export interface TreeEntry extends FsEntry {
  /** The package that shipped it, or `distill:<what>` for generated files. */
  owner: string;
  body?: Body;
}

const MERGED_TOP = new Set(['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32', 'libo32']);

export function mergedUsrPath(path: string): string {
  const slash = path.indexOf('/');
  if (slash < 0) return path; // the top-level link itself (bin -> usr/bin) stays
  return MERGED_TOP.has(path.slice(0, slash)) ? `usr/${path}` : path;
}

export interface TreeOptions {
  mergedUsr: boolean;
  /** Does package `a` declare Replaces on package `b`? */
  replaces: (a: string, b: string) => boolean;
  /** Entries of the layers below (base images), by path. */
  lower?: ReadonlyMap<string, TreeEntry>;
  onWarning?: (message: string) => void;
}

export class LayerTree {
  private readonly entries = new Map<string, TreeEntry>();

  constructor(private readonly opts: TreeOptions) {}

  get(path: string): TreeEntry | undefined {
    return this.entries.get(path);
  }

  has(path: string): boolean {
    return this.entries.has(path);
  }

  /**
   * Add an entry; returns false when it merged into an existing directory or was an exact duplicate.
   * `replace`: distill's own files (accounts, bundles, the definition's files) win over whatever a
   * package — or a base image's layer — has at that path; an upper layer's file hides the lower one.
   */
  add(input: TreeEntry, opts: { replace?: boolean } = {}): boolean {
    // With merged /usr, bin/, lib/, … are base-files' links to usr/: a package's plain directory entry
    // for one of them is the same directory, already there.
    if (this.opts.mergedUsr && input.type === 'dir' && MERGED_TOP.has(input.path)) return false;
    const e: TreeEntry = this.opts.mergedUsr
      ? { ...input, path: mergedUsrPath(input.path), ...(input.type === 'hardlink' && input.linkTarget ? { linkTarget: mergedUsrPath(input.linkTarget) } : {}) }
      : input;
    if (opts.replace) {
      // A definition's own directory sets its mode and owner even over a package's or a base's.
      this.entries.set(e.path, e);
      return true;
    }
    const existing = this.entries.get(e.path) ?? this.opts.lower?.get(e.path);
    const inLower = !this.entries.has(e.path) && existing !== undefined;
    if (existing === undefined) {
      this.entries.set(e.path, e);
      return true;
    }
    if (existing.type === 'dir' && e.type === 'dir') {
      if (inLower) return false; // already in a base layer
      if (existing.mode !== e.mode || existing.uid !== e.uid || existing.gid !== e.gid) {
        this.opts.onWarning?.(`${e.path}/: ${e.owner} wants mode ${e.mode.toString(8)} ${e.uid}:${e.gid}, ${existing.owner} has ${existing.mode.toString(8)} ${existing.uid}:${existing.gid}; keeping the first`);
      }
      return false;
    }
    if (identical(existing, e)) return false;
    if (existing.type !== 'dir' && e.type !== 'dir') {
      // dpkg's Replaces, in either direction: the replacing package's copy stays.
      if (this.opts.replaces(e.owner, existing.owner)) {
        this.entries.set(e.path, e);
        return true;
      }
      if (this.opts.replaces(existing.owner, e.owner)) return false;
    }
    throw new DistillError(
      'PATH_CONFLICT',
      `${e.path} is shipped by both ${existing.owner}${inLower ? ' (in a base image)' : ''} and ${e.owner}, differently (${describe(existing)} vs ${describe(e)})`,
      { hint: `exclude one of the packages, or drop the path with a \`paths: {drop: [${e.path}]}\` rule` },
    );
  }

  /** Entries sorted by path (byte order of the UTF-8 path, as the tar writer requires). */
  sorted(): TreeEntry[] {
    return [...this.entries.values()].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  }

  /**
   * Make sure every entry's parent directories exist here or below, adding root-owned 0755 ones.
   * Every parent must be a directory: an entry beneath a symlink (ATTACKER-CONTROLLED: one package's
   * `usr/share/x -> /etc` and another's — or its own — `usr/share/x/passwd`) would be written through
   * the link when a runtime unpacks the layer, wherever it points; it is refused, as is an entry
   * beneath a file. Merged-/usr links (bin -> usr/bin) never count: paths below them were rewritten.
   */
  addMissingParents(owner: string, mtime: number): void {
    // Directories whose own parents have been walked (or are being walked): a walk stops at one, so an
    // entry costs its new components, not its depth — an ATTACKER-CONTROLLED path may have 2,048.
    const walked = new Set<string>();
    for (const [p, e] of [...this.entries]) {
      for (let i = p.lastIndexOf('/'); i > 0; i = p.lastIndexOf('/', i - 1)) {
        const dir = p.slice(0, i);
        if (walked.has(dir)) break;
        walked.add(dir);
        const parent = this.entries.get(dir) ?? this.opts.lower?.get(dir);
        if (parent !== undefined) {
          if (parent.type === 'dir') continue;
          throw new DistillError('UNSAFE_ENTRY', `${p} (${e.owner}) lies beneath ${dir}, which ${parent.owner} ships as a ${parent.type === 'symlink' ? `symlink to ${parent.linkTarget}` : parent.type}`, {
            hint: `a path beneath a link would be written wherever the link points; drop one of them with a \`paths: {drop: [...]}\` rule or exclude a package`,
          });
        }
        this.entries.set(dir, { path: dir, type: 'dir', mode: 0o755, uid: 0, gid: 0, uname: 'root', gname: 'root', size: 0, mtime, owner });
      }
    }
  }

  /** Drop entries (after filtering), and directories left with nothing below them are the caller's choice. */
  delete(path: string): void {
    this.entries.delete(path);
  }

  values(): IterableIterator<TreeEntry> {
    return this.entries.values();
  }
}

function identical(a: TreeEntry, b: TreeEntry): boolean {
  if (a.type !== b.type || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid) return false;
  if (a.type === 'symlink' || a.type === 'hardlink') return a.linkTarget === b.linkTarget;
  if (a.type === 'file') return a.size === b.size && a.body?.sha256 === b.body?.sha256;
  return true;
}

function describe(e: TreeEntry): string {
  if (e.type === 'symlink') return `symlink to ${e.linkTarget}`;
  if (e.type === 'hardlink') return `hardlink to ${e.linkTarget}`;
  if (e.type === 'dir') return `directory ${e.mode.toString(8)}`;
  return `file ${e.mode.toString(8)} ${e.size} bytes${e.body ? ` sha256 ${e.body.sha256.slice(0, 12)}…` : ''}`;
}
