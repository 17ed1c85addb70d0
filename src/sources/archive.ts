// Image archives as an image source: `docker save` / `podman save` tars (docker-archive, manifest.json)
// and OCI image layouts in a tar (oci-archive, index.json) — among them what `distill build --tar`
// writes, which is both. The archive is a regular file, read in place: one pass over its tar headers
// (seeking past the data, never reading it) indexes the members, then small JSON documents are read
// whole (capped, checked) and layers stream straight out of the file at their offsets, verified as
// they flow. Nothing is extracted, no temporary directory is made.
//
// ATTACKER-CONTROLLED INPUT, all of it: the tar headers (checksums checked, sizes bounded by the
// file, member names normalised and refused when they climb out with `..`, are absolute or repeat),
// manifest.json and index.json (size-capped, shape-checked; the paths manifest.json names are looked
// up among the members — never on the file system — and must stay inside the archive), every config
// and manifest (checked against the digest that names it, or that it is named by), every layer
// (verified against its descriptor while it streams).
//
// Selection follows skopeo's transports: `oci-archive:PATH[:REF]` names a ref of index.json (default:
// the only one); `docker-archive:PATH[:NAME:TAG|:@N]` an image of manifest.json by repository tag or
// position (default: the only one). A docker archive that is also a layout (Docker ≥ 25, distill)
// gives the manifest index.json holds for that image — its exact bytes, so digests are the
// publisher's; an older one gets a Docker schema 2 manifest made from the config and the layers, as
// go-containerregistry's tarball package and skopeo make it.
import { constants, createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { HashingStream, sha256Hex, toDigest, type Digest } from '../digest.js';
import { DistillError, messageOf } from '../errors.js';
import { type Blob, type Descriptor, goJson } from '../oci/descriptor.js';
import { MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_LAYER_TAR, MEDIA_TYPE_LAYER_ZSTD, MEDIA_TYPE_MANIFEST } from '../oci/media-types.js';
import type { Artifact, Image, Layer } from '../oci/model.js';
import { imagesOf } from '../oci/model.js';
import { type LayoutFiles, layoutEntries, layoutRefs, openBlob, readLayoutArtifact, readLayoutDescriptor } from './oci-layout.js';

const BLOCK = 512;
/** More members than any image archive has (a layer, a config and a manifest per image, a few files). */
const MEMBER_CAP = 100_000;
/** A member name longer than this is not an archive of ours or Docker's. */
const NAME_CAP = 4096;
/** pax and GNU long-name records are small; a larger one is refused rather than read. */
const HEADER_RECORD_CAP = 1024 * 1024;
/** manifest.json lists a few images; configs are a few KiB. */
const MANIFEST_JSON_CAP = 16 * 1024 * 1024;
const CONFIG_CAP = 8 * 1024 * 1024;

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';
const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

interface Member {
  /** Offset of the member's data in the file. */
  offset: number;
  size: number;
}

export type ArchiveKind = 'docker-archive' | 'oci-archive';

export interface ArchiveArtifact {
  artifact: Artifact;
  /** The digest of the top document (the manifest or index the archive gives for the selection). */
  digest: Digest;
  /** What was selected: a ref name, a repository tag, or @N. */
  selected: string;
  /** How it was read: index.json (an OCI layout, exact bytes) or manifest.json (a manifest made from it). */
  via: 'index.json' | 'manifest.json';
}

/**
 * Read an image from an archive. `kind` says which half to read (undefined: index.json when the
 * archive has one, else manifest.json); `selection` picks the image as skopeo's transports do.
 */
export async function readArchiveArtifact(file: string, opts: { kind?: ArchiveKind; selection?: string; platforms?: readonly string[] } = {}): Promise<ArchiveArtifact> {
  const members = await indexArchive(file);
  const files = archiveFiles(file, members);
  const isLayout = members.has('index.json');
  const kind = opts.kind ?? (isLayout ? 'oci-archive' : 'docker-archive');
  if (kind === 'oci-archive') {
    if (!isLayout) throw invalid(`${file} has no index.json: it is not an OCI archive`, members.has('manifest.json') ? `read it as docker-archive:${file}` : undefined);
    const a = await readLayoutArtifact(files, opts.selection, opts.platforms !== undefined ? { platforms: opts.platforms } : {});
    return { artifact: a.artifact, digest: a.digest, selected: a.ref, via: 'index.json' };
  }
  if (!members.has('manifest.json')) {
    throw invalid(`${file} has no manifest.json: it is not a docker archive`, isLayout ? `read it as oci-archive:${file}` : undefined);
  }
  return readDockerArchive(file, files, members, opts.selection);
}

/** The ref names of an archive's index.json (an OCI archive), sorted. */
export async function archiveRefs(file: string): Promise<string[]> {
  const members = await indexArchive(file);
  if (!members.has('index.json')) return [];
  return layoutRefs(archiveFiles(file, members));
}

// ---- docker-archive (manifest.json) ----

interface ManifestItem {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

async function readDockerArchive(file: string, files: LayoutFiles, members: Map<string, Member>, selection: string | undefined): Promise<ArchiveArtifact> {
  const raw = parseJson(await files.read('manifest.json', MANIFEST_JSON_CAP), `${file}: manifest.json`);
  if (!Array.isArray(raw) || raw.length === 0) throw invalid(`${file}: manifest.json is not a non-empty list of images`);
  const items = raw.map((x: unknown, i): ManifestItem => {
    const o = x as Partial<ManifestItem> | null;
    const tags = o?.RepoTags ?? [];
    if (o === null || typeof o !== 'object' || typeof o.Config !== 'string' || !Array.isArray(o.Layers) || !o.Layers.every((l) => typeof l === 'string') ||
        !Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) {
      throw invalid(`${file}: manifest.json item ${i} is not {Config, RepoTags, Layers}`);
    }
    return { Config: o.Config, RepoTags: tags, Layers: o.Layers };
  });
  let chosen: number;
  if (selection === undefined) {
    if (items.length !== 1) {
      const names = items.map((it, i) => it.RepoTags[0] ?? `@${i}`);
      throw new DistillError('USAGE', `${file} holds ${items.length} images (${names.join(', ')}): say which`, { hint: `write docker-archive:${file}:${names[0]}` });
    }
    chosen = 0;
  } else if (/^@\d+$/.test(selection)) {
    chosen = Number(selection.slice(1));
    if (chosen >= items.length) throw invalid(`${file} has ${items.length} images; there is no ${selection}`);
  } else {
    const want = normaliseTag(selection);
    chosen = items.findIndex((it) => it.RepoTags.some((t) => normaliseTag(t) === want));
    if (chosen < 0) throw invalid(`${file} has no image tagged ${selection}`, `its tags are ${items.flatMap((it) => it.RepoTags).join(', ') || '(none)'}`);
  }
  const item = items[chosen]!;
  const configPath = memberPath(item.Config, file);
  const configBytes = await files.read(configPath, CONFIG_CAP);
  const configDigest = toDigest(sha256Hex(configBytes));
  // A blobs/sha256/<hex> path names its digest: check it rather than trust the name.
  const named = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(configPath);
  if (named !== null && named[1] !== configDigest.slice('sha256:'.length)) throw invalid(`${file}: the config ${configPath} does not hash to the digest its name gives`);
  const config = parseJson(configBytes, `${file}: config ${configPath}`) as { rootfs?: { diff_ids?: unknown } } | null;
  const diffIds = Array.isArray(config?.rootfs?.diff_ids) ? (config!.rootfs!.diff_ids as unknown[]) : [];
  if (diffIds.length !== item.Layers.length) {
    throw invalid(`${file}: the config ${configPath} lists ${diffIds.length} diff_ids for ${item.Layers.length} layers`);
  }
  const selected = selection ?? item.RepoTags[0] ?? '@0';

  // The same image in index.json (a docker archive that is also a layout): its exact manifest.
  if (members.has('index.json')) {
    const found = await findByConfig(files, configDigest);
    if (found !== undefined) return { artifact: found, digest: found.manifest.descriptor.digest, selected, via: 'index.json' };
  }

  const layers: Layer[] = [];
  for (const [i, l] of item.Layers.entries()) {
    const path = memberPath(l, file);
    const m = members.get(path);
    if (m === undefined) throw invalid(`${file}: manifest.json names the layer ${l}, which is not in the archive`);
    const diffId = diffIds[i];
    if (typeof diffId !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(diffId)) throw invalid(`${file}: diff_ids[${i}] of ${configPath} is not a sha256 digest`);
    const compression = await sniff(file, m);
    const byName = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(path);
    // The layer's digest: its blob name, or for an uncompressed tar its diff_id; both are checked as
    // the bytes stream. Only a compressed layer under another name is hashed here, once.
    const digest: Digest = byName !== null ? (`sha256:${byName[1]}` as Digest)
      : compression === 'none' ? (diffId as Digest)
      : await hashMember(file, m);
    const descriptor: Descriptor = { mediaType: compression === 'none' ? DOCKER_LAYER_TAR : compression === 'gzip' ? DOCKER_LAYER_GZIP : MEDIA_TYPE_LAYER_ZSTD, digest, size: m.size };
    layers.push({ descriptor, diffId: diffId as Digest, open: () => openBlobAt(files, path, descriptor) });
  }
  // Docker's media types, unless a layer is zstd (which only the OCI types name).
  const oci = layers.some((l) => l.descriptor.mediaType === MEDIA_TYPE_LAYER_ZSTD);
  const layerDescs = layers.map((l) => ({
    mediaType: !oci ? l.descriptor.mediaType : l.descriptor.mediaType === DOCKER_LAYER_TAR ? MEDIA_TYPE_LAYER_TAR : l.descriptor.mediaType === DOCKER_LAYER_GZIP ? MEDIA_TYPE_LAYER_GZIP : l.descriptor.mediaType,
    size: l.descriptor.size,
    digest: l.descriptor.digest,
  }));
  const configDesc: Descriptor = { mediaType: oci ? 'application/vnd.oci.image.config.v1+json' : DOCKER_CONFIG, digest: configDigest, size: configBytes.length };
  const manifestBytes = Buffer.from(goJson({
    schemaVersion: 2,
    mediaType: oci ? MEDIA_TYPE_MANIFEST : DOCKER_MANIFEST,
    config: { mediaType: configDesc.mediaType, size: configDesc.size, digest: configDesc.digest },
    layers: layerDescs,
  }), 'utf8');
  const manifest: Blob = { descriptor: { mediaType: oci ? MEDIA_TYPE_MANIFEST : DOCKER_MANIFEST, digest: toDigest(sha256Hex(manifestBytes)), size: manifestBytes.length }, bytes: manifestBytes };
  const platform = platformOf(config);
  const image: Image = {
    manifest,
    config: { descriptor: configDesc, bytes: configBytes },
    layers: layers.map((l, i) => ({ ...l, descriptor: { ...l.descriptor, mediaType: layerDescs[i]!.mediaType } })),
    ...(platform !== undefined ? { platform } : {}),
  };
  return { artifact: image, digest: manifest.descriptor.digest, selected, via: 'manifest.json' };
}

/** An image of index.json (a direct entry or an index's child) whose config is `digest`. */
async function findByConfig(files: LayoutFiles, digest: Digest): Promise<Image | undefined> {
  for (const e of await layoutEntries(files)) {
    let a: Artifact;
    try {
      a = await readLayoutDescriptor(files, e);
    } catch {
      continue; // an entry we cannot read (an artifact, a nested index) is not the image we want
    }
    const img = imagesOf(a).find((i) => i.config.descriptor.digest === digest);
    if (img !== undefined) return img;
  }
  return undefined;
}

function platformOf(config: unknown): Image['platform'] {
  const c = config as { os?: unknown; architecture?: unknown; variant?: unknown } | null;
  if (typeof c?.os !== 'string' || typeof c.architecture !== 'string') return undefined;
  return typeof c.variant === 'string' && c.variant !== '' ? { os: c.os, architecture: c.architecture, variant: c.variant } : { os: c.os, architecture: c.architecture };
}

/** docker's short names: "foo" is docker.io/library/foo:latest. */
function normaliseTag(t: string): string {
  let s = t.replace(/^docker\.io\//, '').replace(/^index\.docker\.io\//, '').replace(/^library\//, '');
  const slash = s.lastIndexOf('/');
  if (s.lastIndexOf(':') <= slash) s += ':latest';
  return s;
}

/** A path manifest.json gives, as a member name: inside the archive, or refused. */
function memberPath(p: string, file: string): string {
  const n = normaliseName(p);
  if (n === undefined) throw invalid(`${file}: manifest.json names ${JSON.stringify(p)}, a path outside the archive`, 'the archive is malformed or hostile');
  return n;
}

/** How a member's bytes are compressed, from their first bytes (gzip 1f 8b, zstd 28 b5 2f fd). */
async function sniff(file: string, m: Member): Promise<'none' | 'gzip' | 'zstd'> {
  const fh = await openFile(file);
  try {
    const b = Buffer.alloc(Math.min(4, m.size));
    await fh.read(b, 0, b.length, m.offset);
    if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
    if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    return 'none';
  } finally {
    await fh.close();
  }
}

async function hashMember(file: string, m: Member): Promise<Digest> {
  const h = new HashingStream();
  const src = m.size === 0 ? emptyStream() : createReadStream(file, { start: m.offset, end: m.offset + m.size - 1 });
  for await (const _ of src.pipe(h)) {
    // hashing is the point
  }
  return toDigest(h.sha256);
}

function openBlobAt(files: LayoutFiles, path: string, d: Descriptor): Readable {
  // openBlob reads blobs/sha256/<hex>; a docker archive's layer may be anywhere: alias it.
  const aliased: LayoutFiles = { name: files.name, read: files.read, open: () => files.open(path) };
  return openBlob(aliased, d);
}

// ---- the tar ----

/** The members of the archive at `file`: regular files by normalised name, with their data's offset and size. */
export async function indexArchive(file: string): Promise<Map<string, Member>> {
  const fh = await openFile(file);
  try {
    const { size: fileSize, isFile } = await fh.stat().then((s) => ({ size: s.size, isFile: s.isFile() }));
    if (!isFile) throw invalid(`${file} is not a regular file`, 'give the archive as a file (a pipe cannot be read in place)');
    const members = new Map<string, Member>();
    const header = Buffer.alloc(BLOCK);
    let pos = 0;
    let longName: string | undefined;
    let longLink: string | undefined;
    let paxPath: string | undefined;
    let paxLink: string | undefined;
    const links = new Map<string, string>();
    let paxSize: number | undefined;
    let count = 0;
    for (;;) {
      if (pos + BLOCK > fileSize) {
        if (pos === fileSize && count > 0) break; // no end-of-archive blocks: tolerated, as GNU tar does
        throw invalid(`${file}: the tar ends inside a header (${fileSize} bytes)`, 'the archive is truncated');
      }
      await readFully(fh, header, pos);
      if (pos === 0 && header[0] === 0x1f && header[1] === 0x8b) {
        throw invalid(`${file} is gzip-compressed`, `decompress it first (gunzip -k ${file}); archives are read in place`);
      }
      if (header.every((b) => b === 0)) break;
      checkChecksum(header, file, pos);
      if (++count > MEMBER_CAP) throw invalid(`${file}: more than ${MEMBER_CAP} tar members`, 'the archive is malformed or hostile');
      const type = String.fromCharCode(header[156]!);
      const meta = type === 'x' || type === 'L' || type === 'g' || type === 'K';
      const size = meta ? parseSize(header, file, pos) : paxSize ?? parseSize(header, file, pos);
      const dataAt = pos + BLOCK;
      const next = dataAt + Math.ceil(size / BLOCK) * BLOCK;
      if (dataAt + size > fileSize) throw invalid(`${file}: a member at byte ${pos} claims ${size} bytes, past the end of the file`, 'the archive is truncated or hostile');
      if (meta) {
        if (size > HEADER_RECORD_CAP) throw invalid(`${file}: a ${size}-byte tar header record at byte ${pos}`, 'the archive is malformed or hostile');
        const rec = Buffer.alloc(size);
        await readFully(fh, rec, dataAt);
        if (type === 'x') {
          const pax = parsePax(rec, file, pos);
          paxPath = pax.path ?? paxPath;
          paxLink = pax.linkpath ?? paxLink;
          if (pax.size !== undefined) paxSize = pax.size;
        } else if (type === 'L') {
          longName = rec.toString('utf8').replace(/\0.*$/s, '');
        } else if (type === 'K') {
          longLink = rec.toString('utf8').replace(/\0.*$/s, '');
        }
        pos = next;
        continue;
      }
      const raw = paxPath ?? longName ?? headerName(header);
      const rawLink = paxLink ?? longLink ?? cstr(header, 157, 100);
      longName = undefined;
      longLink = undefined;
      paxPath = undefined;
      paxLink = undefined;
      paxSize = undefined;
      const name = normaliseName(raw);
      if (name === undefined) throw invalid(`${file}: the member ${JSON.stringify(raw.slice(0, 200))} climbs out of the archive or is absolute`, 'the archive is malformed or hostile');
      if (type === '0' || type === '\0' || type === '7') {
        if (members.has(name)) throw invalid(`${file}: the member ${JSON.stringify(name)} appears twice`, 'the archive is malformed or hostile: which copy is meant cannot be told');
        members.set(name, { offset: dataAt, size });
      } else if (type === '2' || type === '1') {
        // `docker save` links a layer that two images share (`<id>/layer.tar -> ../<other>/layer.tar`):
        // a symlink's target is relative to its directory, a hard link's to the archive's root.
        const dir = type === '2' ? name.split('/').slice(0, -1).join('/') : '';
        const target = resolveLink(type === '2' && !rawLink.startsWith('/') && dir !== '' ? `${dir}/${rawLink}` : rawLink);
        if (target === undefined) throw invalid(`${file}: the link ${JSON.stringify(name)} points outside the archive`, 'the archive is malformed or hostile');
        if (members.has(name) || links.has(name)) throw invalid(`${file}: the member ${JSON.stringify(name)} appears twice`, 'the archive is malformed or hostile: which copy is meant cannot be told');
        links.set(name, target);
      }
      pos = next;
    }
    // Links resolve to the regular member they reach (a few hops at most); one that reaches none is left out.
    for (const [name, first] of links) {
      let t: string | undefined = first;
      for (let hop = 0; hop < 8 && t !== undefined && !members.has(t); hop++) t = links.get(t);
      const m = t === undefined ? undefined : members.get(t);
      if (m !== undefined && !members.has(name)) members.set(name, m);
    }
    return members;
  } finally {
    await fh.close();
  }
}

/** A member name as a relative path without ./ or trailing /; undefined when it is absolute or climbs with `..`. */
function normaliseName(raw: string): string | undefined {
  if (raw.length > NAME_CAP || raw.includes('\0') || raw.startsWith('/')) return undefined;
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0 || parts.some((p) => p === '..')) return undefined;
  return parts.join('/');
}

function cstr(h: Buffer, off: number, len: number): string {
  const b = h.subarray(off, off + len);
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? len : end).toString('utf8');
}

/** A link target inside the archive, `..` resolved; undefined when it is absolute or climbs out. */
function resolveLink(raw: string): string | undefined {
  if (raw.length > NAME_CAP || raw.includes('\0') || raw.startsWith('/')) return undefined;
  const out: string[] = [];
  for (const p of raw.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (out.pop() === undefined) return undefined;
    } else out.push(p);
  }
  return out.length === 0 ? undefined : out.join('/');
}

function headerName(h: Buffer): string {
  const name = cstr(h, 0, 100);
  const magic = h.subarray(257, 262).toString('latin1');
  const prefix = magic === 'ustar' ? cstr(h, 345, 155) : '';
  return prefix !== '' ? `${prefix}/${name}` : name;
}

function checkChecksum(h: Buffer, file: string, pos: number): void {
  const field = h.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]+$/.test(field)) throw invalid(`${file}: no tar header at byte ${pos}`, 'the file is not a tar archive, or it is damaged');
  const want = parseInt(field, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  if (want !== unsigned && want !== signed) throw invalid(`${file}: the tar header at byte ${pos} fails its checksum`, 'the file is not a tar archive, or it is damaged');
}

function parseSize(h: Buffer, file: string, pos: number): number {
  const f = h.subarray(124, 136);
  let n: number;
  if ((f[0]! & 0x80) !== 0) {
    // GNU base-256: big-endian, the top bit of the first byte set.
    n = f[0]! & 0x7f;
    for (let i = 1; i < 12; i++) n = n * 256 + f[i]!;
  } else {
    const s = f.toString('latin1').replace(/[\0 ]+$/, '').trim();
    n = s === '' ? 0 : /^[0-7]+$/.test(s) ? parseInt(s, 8) : NaN;
  }
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(`${file}: the tar header at byte ${pos} has no valid size`);
  return n;
}

/** pax records ("<len> key=value\n"): path, linkpath and size are the ones that matter here. */
function parsePax(rec: Buffer, file: string, pos: number): { path?: string; linkpath?: string; size?: number } {
  const out: { path?: string; linkpath?: string; size?: number } = {};
  let i = 0;
  while (i < rec.length) {
    const sp = rec.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number(rec.subarray(i, sp).toString('latin1'));
    if (!Number.isSafeInteger(len) || len <= sp - i || i + len > rec.length) throw invalid(`${file}: a malformed pax record at byte ${pos}`);
    const kv = rec.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = kv.indexOf('=');
    const k = kv.slice(0, eq);
    const v = kv.slice(eq + 1);
    if (k === 'path') out.path = v;
    if (k === 'linkpath') out.linkpath = v;
    if (k === 'size') {
      if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw invalid(`${file}: a pax size ${JSON.stringify(v.slice(0, 40))} at byte ${pos}`);
      out.size = Number(v);
    }
    i += len;
  }
  return out;
}

// ---- files ----

/** The archive's members as a layout's files (for index.json, blobs/…). */
function archiveFiles(file: string, members: Map<string, Member>): LayoutFiles {
  return {
    name: file,
    has: async (path) => members.has(path),
    read: async (path, cap) => {
      const m = members.get(path);
      if (m === undefined) throw invalid(`${file} has no member ${path}`, 'the archive is incomplete');
      if (m.size > cap) throw invalid(`${file}: ${path} is ${m.size} bytes, more than the ${cap} expected`, 'the archive is malformed or hostile');
      const fh = await openFile(file);
      try {
        const b = Buffer.alloc(m.size);
        await readFully(fh, b, m.offset);
        return b;
      } finally {
        await fh.close();
      }
    },
    open: (path) => {
      const m = members.get(path);
      if (m === undefined) {
        const s = new PassThrough();
        queueMicrotask(() => s.destroy(invalid(`${file} has no member ${path}`, 'the archive is incomplete')));
        return s;
      }
      return m.size === 0 ? emptyStream() : createReadStream(file, { start: m.offset, end: m.offset + m.size - 1 });
    },
  };
}

function emptyStream(): Readable {
  const s = new PassThrough();
  s.end();
  return s;
}

async function openFile(file: string): Promise<FileHandle> {
  try {
    // O_NONBLOCK: the archive is named by the user (oci-archive:FILE); a FIFO must open at once so the
    // regular-file check below refuses it, rather than block in open() until a writer comes — forever.
    return await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new DistillError('OCI_INVALID', `cannot read the archive ${file}: ${messageOf(e)}`, { cause: e, hint: 'give the path of an image archive (docker save, distill build --tar)' });
  }
}

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw invalid(`the archive ends early at byte ${position + done}`, 'the archive is truncated');
    done += bytesRead;
  }
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new DistillError('OCI_INVALID', `${what}: not JSON`, { cause: e, hint: 'the archive is malformed' });
  }
}

function invalid(message: string, hint?: string): DistillError {
  return new DistillError('OCI_INVALID', message, { hint: hint ?? 'give an image archive written by docker save, podman save, skopeo or distill build --tar' });
}

