// Tree entries for files distill writes itself (generated files, the definition's own files): every
// field explicit, the body in memory, the owner a `distill:<what>` name that conflict messages and
// status.d's "is this a package's file" check read. mtime is the layer's timestamp, set by the caller.
import { createHash } from 'node:crypto';
import type { TreeEntry } from '../tree.js';

export function fileEntry(path: string, data: Buffer | string, owner: string, mtime: number, mode = 0o644, uid = 0, gid = 0): TreeEntry {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return {
    path: path.replace(/^\/+/, ''),
    type: 'file',
    mode,
    uid,
    gid,
    uname: uid === 0 ? 'root' : '',
    gname: gid === 0 ? 'root' : '',
    size: bytes.length,
    mtime,
    owner,
    body: { kind: 'bytes', data: bytes, sha256: createHash('sha256').update(bytes).digest('hex') },
  };
}

export function dirEntry(path: string, owner: string, mtime: number, mode = 0o755, uid = 0, gid = 0): TreeEntry {
  return { path: path.replace(/^\/+/, ''), type: 'dir', mode, uid, gid, uname: uid === 0 ? 'root' : '', gname: gid === 0 ? 'root' : '', size: 0, mtime, owner };
}

export function symlinkEntry(path: string, target: string, owner: string, mtime: number): TreeEntry {
  return { path: path.replace(/^\/+/, ''), type: 'symlink', mode: 0o777, uid: 0, gid: 0, uname: 'root', gname: 'root', size: 0, linkTarget: target, mtime, owner };
}
