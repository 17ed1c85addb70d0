// The definition's own files (`files:`): inline text, files beside the definition, URLs pinned by
// sha256 (fetched into the cache like a .deb), symlinks, directories — and tarballs (from source or url)
// unpacked under their path through the same sanitiser as a .deb's data. They win over everything
// else in their layer (see assemble.ts).
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fetchBlob } from '../cas/fetch.js';
import type { ContentStore } from '../cas/store.js';
import { compressionOf } from '../compress/decompress.js';
import { substituteArch } from '../definition/types.js';
import { HashingStream, sha256Hex } from '../digest.js';
import { DistillError } from '../errors.js';
import type { OnProgress } from '../events.js';
import type { LockedImage } from '../lock/load.js';
import { readTarball } from '../rootfs/deb.js';
import { dirEntry, fileEntry, symlinkEntry } from '../rootfs/generate/entries.js';
import type { TreeEntry } from '../rootfs/tree.js';
import { SMALL_FILE } from './stage.js';

export interface OwnFilesContext {
  store: ContentStore;
  /** Where large files of an unpacked tarball are staged. */
  stageDir: string;
  onProgress?: OnProgress;
}

/** The tree entries of an image's own files for one architecture (`${arch}` substituted), in the definition's order. */
export async function ownFiles(li: LockedImage, arch: string, mtime: number, ctx: OwnFilesContext): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const owner = `distill:files of ${li.definition.name}`;
  const sub = (s: string): string => substituteArch(s, arch);
  for (const f of li.definition.files) {
    const path = sub(f.path);
    const uid = f.uid ?? 0;
    const gid = f.gid ?? 0;
    if (f.symlink !== undefined) out.push({ ...symlinkEntry(path, sub(f.symlink), owner, mtime), uid, gid });
    else if (f.directory) out.push(dirEntry(path, owner, mtime, f.mode ?? 0o755, uid, gid));
    else if (f.content !== undefined) out.push(fileEntry(path, sub(f.content), owner, mtime, f.mode ?? 0o644, uid, gid));
    else {
      const [file, what] = f.url !== undefined ? [await fetchPinned(f.url, f.sha256!, f.size, ctx), f.url] : [f.source!, f.source!];
      if (f.extract) {
        const prefix = path.replace(/^\/+|\/+$/g, '');
        // ATTACKER-CONTROLLED: a tarball's entries pass the same sanitiser as a .deb's data.
        await readTarball(createReadStream(file), compressionOf(new URL(what, 'file:///').pathname.replace(/\.(tgz)$/, '.tar.gz')) ?? 'none', what, async (e, body) => {
          const entry: TreeEntry = { ...e, path: prefix === '' ? e.path : `${prefix}/${e.path}`, owner, ...(f.uid !== undefined ? { uid } : {}), ...(f.gid !== undefined ? { gid } : {}) };
          if (e.type === 'hardlink') entry.linkTarget = prefix === '' ? e.linkTarget! : `${prefix}/${e.linkTarget}`;
          if (body && e.size <= SMALL_FILE) {
            const chunks: Buffer[] = [];
            for await (const c of body) chunks.push(c as Buffer);
            const data = Buffer.concat(chunks);
            entry.body = { kind: 'bytes', data, sha256: sha256Hex(data) };
          } else if (body) {
            // Large files stream to the staging directory, hashed on the way, never held whole.
            const staged = join(ctx.stageDir, `own-${randomBytes(8).toString('hex')}`);
            const hash = new HashingStream();
            await pipeline(body, hash, createWriteStream(staged, { mode: 0o600 }));
            entry.body = { kind: 'staged', path: staged, sha256: hash.sha256 };
          }
          out.push(entry);
        });
      } else {
        const size = (await stat(file).catch((e: unknown) => {
          throw new DistillError('DEFINITION_INVALID', `${li.definition.file}: file ${what} for ${path} cannot be read`, { cause: e, hint: 'source paths are relative to the definition' });
        })).size;
        if (size <= SMALL_FILE) out.push(fileEntry(path, await readFile(file), owner, mtime, f.mode ?? 0o644, uid, gid));
        else {
          // Streamed, never held whole: the layer writer reads it from disk, its hash computed on the way.
          const hash = new HashingStream();
          await pipeline(createReadStream(file), hash, async (src: AsyncIterable<unknown>) => {
            for await (const _ of src) {
              // hashing only
            }
          });
          out.push({ ...fileEntry(path, Buffer.alloc(0), owner, mtime, f.mode ?? 0o644, uid, gid), size, body: { kind: 'staged', path: file, sha256: hash.sha256 } });
        }
      }
    }
  }
  return out;
}

/** A definition's URL file, fetched into the store (or found there), verified against its pinned sha256. */
async function fetchPinned(url: string, sha256: string, size: number | undefined, ctx: OwnFilesContext): Promise<string> {
  const { path } = await fetchBlob(ctx.store, { sha256, size: size ?? -1, what: url }, url, ctx.onProgress ? { onProgress: ctx.onProgress } : {});
  return path;
}
