// A Packages index (https://wiki.debian.org/DebianRepository/Format#A.22Packages.22_Indices): chosen
// from the verified Release (xz preferred, then gz, then plain), fetched into the store where its size
// and SHA256 are checked *before* any byte is parsed, then decompressed and parsed as it streams. The
// uncompressed text is checked against the Release's own hash for it too, when listed.
import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import { fetchBlob } from '../cas/fetch.js';
import type { ContentStore } from '../cas/store.js';
import { decompress, type Compression } from '../compress/decompress.js';
import { DistillError } from '../errors.js';
import type { OnProgress } from '../events.js';
import { Deb822Parser, type Paragraph } from './deb822.js';
import type { Release } from './release.js';

export type MultiArch = 'no' | 'same' | 'foreign' | 'allowed';

/** One binary package as an index lists it. Relationship fields stay raw until needed. */
export interface PackageRecord {
  name: string;
  version: string;
  architecture: string;
  /** Source package name and version (version defaults to the binary's). */
  source: string;
  sourceVersion: string;
  multiArch: MultiArch;
  essential: boolean;
  priority: string;
  depends: string;
  preDepends: string;
  provides: string;
  conflicts: string;
  breaks: string;
  filename: string;
  size: number;
  sha256: string;
  /** The named archive (definition source) this record came from. */
  archive: string;
}

export interface IndexRef {
  archive: string;
  mirror: string;
  release: Release;
  suite: string;
  component: string;
  arch: string;
}

const PREFERRED: [string, Compression][] = [['.xz', 'xz'], ['.gz', 'gzip'], ['', 'none']];

export function chooseIndexFile(ref: IndexRef): { path: string; compression: Compression; size: number; sha256: string } {
  const base = `${ref.component}/binary-${ref.arch}/Packages`;
  for (const [ext, compression] of PREFERRED) {
    const entry = ref.release.files.get(base + ext);
    if (entry) return { path: base + ext, compression, size: entry.size, sha256: entry.sha256 };
  }
  throw new DistillError('RELEASE_MISSING_INDEX', `${ref.archive} ${ref.suite}: the Release lists no ${base} index`, {
    hint: `check that the suite has component ${ref.component} and architecture ${ref.arch}`,
  });
}

export async function readPackagesIndex(
  store: ContentStore,
  ref: IndexRef,
  onRecord: (r: PackageRecord) => void,
  onProgress?: OnProgress,
): Promise<void> {
  const file = chooseIndexFile(ref);
  const what = `${ref.archive} ${ref.suite} ${file.path}`;
  const url = `${ref.mirror}/dists/${ref.suite}/${file.path}`;
  try {
    await fetchBlob(store, { size: file.size, sha256: file.sha256, what }, url, onProgress ? { onProgress } : {});
  } catch (e) {
    if (e instanceof DistillError && e.code === 'BLOB_DIGEST_MISMATCH') {
      throw new DistillError('INDEX_HASH_MISMATCH', `${what}: SHA256 differs from the signed Release — refusing to parse it`, {
        cause: e,
        hint: 'the mirror is inconsistent or tampered with; retry later or use another mirror',
      });
    }
    if (e instanceof DistillError && e.code === 'BLOB_SIZE_MISMATCH') {
      throw new DistillError('INDEX_SIZE_MISMATCH', `${what}: size differs from the signed Release — refusing to parse it`, {
        cause: e,
        hint: 'the mirror is inconsistent or tampered with; retry later or use another mirror',
      });
    }
    throw e;
  }
  onProgress?.({ type: 'index-fetched', source: ref.archive, path: file.path, bytes: file.size });
  const plain = ref.release.files.get(`${ref.component}/binary-${ref.arch}/Packages`);
  const text = decompress(store.open({ size: file.size, sha256: file.sha256, what }), file.compression, what);
  const hash = createHash('sha256');
  let plainSize = 0;
  const decoder = new StringDecoder('utf8');
  const parser = new Deb822Parser(what, (p) => {
    const r = toRecord(p, ref.archive, what);
    if (r) onRecord(r);
  });
  for await (const chunk of text) {
    const b = chunk as Buffer;
    hash.update(b);
    plainSize += b.length;
    // A compressed index that inflates past the size the signed Release gives is refused at once
    // (a decompression bomb), not parsed to its end.
    if (plain && file.compression !== 'none' && plainSize > plain.size) {
      throw new DistillError('INDEX_SIZE_MISMATCH', `${what}: decompresses to more than the ${plain.size} bytes the signed Release gives for ${plain.path}`, {
        hint: 'the mirror is inconsistent or tampered with; retry later or use another mirror',
      });
    }
    parser.push(decoder.write(b));
  }
  parser.push(decoder.end());
  parser.end();
  if (plain && file.compression !== 'none' && (plain.size !== plainSize || plain.sha256 !== hash.digest('hex'))) {
    throw new DistillError('INDEX_HASH_MISMATCH', `${what}: decompressed content does not match the Release's hash of ${plain.path}`, {
      hint: 'the mirror is inconsistent or tampered with; retry later or use another mirror',
    });
  }
}

/** Pool paths as the archive writes them; anything else (%, \\, spaces, …) could mean another URL. */
export const SAFE_POOL_PATH = /^[A-Za-z0-9._+~-][A-Za-z0-9._+~/-]*$/;

function toRecord(p: Paragraph, archive: string, what: string): PackageRecord | undefined {
  const name = p.get('Package');
  const version = p.get('Version');
  const architecture = p.get('Architecture');
  const filename = p.get('Filename');
  const size = p.get('Size');
  const sha256 = p.get('SHA256');
  if (name === undefined || version === undefined || architecture === undefined) {
    throw new DistillError('INDEX_MALFORMED', `${what}:${p.line}: paragraph without Package/Version/Architecture`);
  }
  if (filename === undefined || size === undefined || sha256 === undefined || !/^\d+$/.test(size) || !/^[0-9a-f]{64}$/.test(sha256)) {
    throw new DistillError('INDEX_MALFORMED', `${what}:${p.line}: ${name} lacks a valid Filename, Size or SHA256`);
  }
  // The pool path is attacker-controlled text that becomes part of a URL and a lockfile.
  if (!SAFE_POOL_PATH.test(filename) || filename.split('/').some((c) => c === '' || c === '.' || c === '..')) {
    throw new DistillError('INDEX_MALFORMED', `${what}:${p.line}: ${name} has an unsafe Filename ${JSON.stringify(filename)}`);
  }
  const src = p.get('Source') ?? name;
  const m = /^(\S+)(?:\s+\((\S+)\))?$/.exec(src);
  const ma = (p.get('Multi-Arch') ?? 'no').toLowerCase();
  return {
    name,
    version,
    architecture,
    source: m?.[1] ?? name,
    sourceVersion: m?.[2] ?? version,
    multiArch: ma === 'same' || ma === 'foreign' || ma === 'allowed' ? ma : 'no',
    essential: (p.get('Essential') ?? '').toLowerCase() === 'yes',
    priority: p.get('Priority') ?? 'optional',
    depends: p.get('Depends') ?? '',
    preDepends: p.get('Pre-Depends') ?? '',
    provides: p.get('Provides') ?? '',
    conflicts: p.get('Conflicts') ?? '',
    breaks: p.get('Breaks') ?? '',
    filename,
    size: Number(size),
    sha256,
    archive,
  };
}
