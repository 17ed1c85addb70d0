// Files distill writes instead of maintainer scripts, and where they go: accounts and system files in
// the root image's layer (or in the layer of an image that changes its accounts), the CA bundle beside
// ca-certificates, Java's trust store beside the JRE, status.d beside every package. Each returns tree
// entries with in-memory bodies; mtime/owner are set here, the build timestamp by the caller.
import { createHash } from 'node:crypto';
import type { UserSpec } from '../definition/types.js';
import { DEFAULT_ACCOUNTS, DEFAULT_GROUPS, groupFile, homeDirectories, passwdFile, type Account, type Group } from '../rootfs/generate/accounts.js';
import { caBundle, type CaCertificateFile } from '../rootfs/generate/ca-bundle.js';
import { statusDFiles, type InstalledPackageRecord } from '../rootfs/generate/dpkg-status.js';
import { debianJavaTrustedCertificates, javaCacerts } from '../rootfs/generate/java-cacerts.js';
import { nsswitchConf } from '../rootfs/generate/nsswitch.js';
import type { TreeEntry } from '../rootfs/tree.js';

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

export interface AccountsInput {
  users?: UserSpec[];
  groups?: { name: string; gid: number }[];
}

/** /etc/passwd, /etc/group, home directories; distroless's defaults unless the definition says otherwise. */
export function accountFiles(spec: AccountsInput | undefined, mtime: number, exists: (path: string) => boolean): TreeEntry[] {
  const accounts: Account[] = spec?.users
    ? spec.users.map((u) => ({ name: u.name, uid: u.uid, gid: u.gid, home: u.home ?? (u.uid === 0 ? '/root' : `/home/${u.name}`), shell: u.shell ?? '/sbin/nologin' }))
    : DEFAULT_ACCOUNTS.map((a) => ({ ...a }));
  const groups: Group[] = spec?.groups ? spec.groups.map((g) => ({ ...g })) : DEFAULT_GROUPS.map((g) => ({ ...g }));
  const owner = 'distill:accounts';
  return [
    fileEntry('etc/passwd', passwdFile(accounts), owner, mtime),
    fileEntry('etc/group', groupFile(groups), owner, mtime),
    ...homeDirectories(accounts, { exists }).map((d) => dirEntry(d.path, owner, mtime, d.mode, d.uid, d.gid)),
  ];
}

/** What a root image needs that no package ships: nsswitch.conf and a world-writable /tmp. */
export function systemFiles(mtime: number): TreeEntry[] {
  return [fileEntry('etc/nsswitch.conf', nsswitchConf(), 'distill:system', mtime), dirEntry('tmp', 'distill:system', mtime, 0o1777)];
}

export function caBundleFile(certs: readonly CaCertificateFile[], mtime: number): TreeEntry {
  return fileEntry('etc/ssl/certs/ca-certificates.crt', caBundle(certs), 'distill:ca-certificates', mtime);
}

export function javaCacertsFile(certs: readonly CaCertificateFile[], mtime: number): TreeEntry {
  const store = javaCacerts(debianJavaTrustedCertificates(certs), { created: new Date(mtime * 1000) });
  return fileEntry('etc/ssl/certs/java/cacerts', store, 'distill:java-cacerts', mtime);
}

/** status.d for the packages of a layer; `shipped` says which md5sums paths the image really has. */
export function statusFiles(packages: readonly InstalledPackageRecord[], mtime: number, shipped?: (path: string) => boolean): TreeEntry[] {
  return statusDFiles(packages, shipped).map((f) => fileEntry(f.path, f.content, 'distill:dpkg-status', mtime));
}
