// The docker-archive sink: one tar that `docker load`, `podman load` and skopeo's `docker-archive:`
// read, written the way Docker ≥ 25's `docker save` writes it — the tar is at the same time an OCI
// image layout:
//
//   blobs/sha256/<hex>   every layer (gzip, exactly the bytes the manifest describes), config, manifest
//   index.json           one entry per tag: io.containerd.image.name = docker.io/library/foo:tag and
//                        org.opencontainers.image.ref.name = tag, as Docker 25 writes them (but no
//                        `platform` on a single image's entry, as containerd writes them) — for
//                        single images and (options.indexes) for multi-platform indexes, so that
//                        `oci-archive:FILE:latest` finds the multi-arch image
//   manifest.json        [{Config, RepoTags, Layers}], paths into blobs/ — what docker-archive readers use
//                        (single images only: they know nothing of indexes)
//   oci-layout           {"imageLayoutVersion":"1.0.0"}
//
// So the archive is a valid `oci-archive:` too. Readers take whichever half they know: containerd's
// importer (Docker with the containerd image store) and current podman (which tries oci-archive
// before docker-archive, naming each image from io.containerd.image.name — hence that annotation,
// without which podman would name it after the bare tag) read index.json; the graph-driver Docker,
// older podman and skopeo's docker-archive: read manifest.json. Layers stay gzip-compressed: every
// manifest.json reader decompresses them — containers/image auto-detects the compression and then
// verifies the result against the config's diff_ids, Docker's loader does the same — and the paths
// may be any file in the tar (neither reader requires `<id>/layer.tar`). No `repositories` file: it
// serves only pre-1.10 loaders of the legacy per-layer directories we do not write.
//
// The tar is deterministic: entries sorted by path, uid/gid 0, no user names, modes 0644/0755, one
// mtime (an argument, default 0). It is a small ustar writer of its own, every header field explicit;
// layers are streamed from disk, checked against their descriptor as they pass, and the archive is
// written to a temp file renamed into place only when complete.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DistillError, isDistillError, messageOf } from '../errors.js';
import { writeAtomic } from '../util/atomic-write.js';
import { type Descriptor, descriptorJson, goJson, hexOf, invalid } from '../oci/descriptor.js';
import { type BuiltImage, checkBuiltImage } from '../oci/image.js';
import { type BuiltIndex, checkBuiltIndex } from '../oci/index.js';
import {
  ANNOTATION_CONTAINERD_IMAGE_NAME,
  ANNOTATION_REF_NAME,
  MEDIA_TYPE_INDEX,
} from '../oci/media-types.js';
import { cmp } from '../oci/platform.js';

export interface DockerArchiveImage {
  image: BuiltImage;
  /** e.g. "distill/static:latest", "localhost/foo:1"; a name without a tag gets ":latest", as docker does. */
  repoTags: string[];
}

export interface DockerArchiveIndex {
  /** A multi-platform index whose images are all in the archive (given in `images`). */
  index: BuiltIndex;
  /** e.g. "distill/python3:latest": named in index.json only (manifest.json lists single images). */
  repoTags: string[];
}

export interface DockerArchiveOptions {
  /** The mtime of every tar entry, in seconds since the epoch; default 0. */
  mtime?: number;
  /**
   * Multi-platform indexes to name in index.json as well, so that `oci-archive:FILE:latest` (skopeo,
   * buildah, podman) and containerd's importer find the multi-arch image; manifest.json readers never
   * see them.
   */
  indexes?: DockerArchiveIndex[];
}

export async function writeDockerArchive(
  file: string,
  images: DockerArchiveImage[],
  options: DockerArchiveOptions = {},
): Promise<void> {
  const mtime = options.mtime ?? 0;
  if (!Number.isSafeInteger(mtime) || mtime < 0 || mtime >= 8 ** 11) {
    throw invalid(`docker archive: mtime ${mtime} is not a tar timestamp`);
  }
  if (images.length === 0) throw invalid('docker archive: no images to write');

  // One manifest.json item per distinct image; the same image under several tags is one item.
  const items = new Map<string, { image: BuiltImage; tags: ParsedTag[] }>();
  const tagOwner = new Map<string, string>();
  for (const [i, { image, repoTags }] of images.entries()) {
    checkBuiltImage(image, `docker archive image ${i}`);
    const key = image.manifest.descriptor.digest;
    const item = items.get(key) ?? { image, tags: [] };
    items.set(key, item);
    for (const t of repoTags) {
      const parsed = parseRepoTag(t);
      const owner = tagOwner.get(parsed.full);
      if (owner !== undefined && owner !== key) throw invalid(`docker archive: ${t} is given for two different images`);
      if (owner === undefined) item.tags.push(parsed);
      tagOwner.set(parsed.full, key);
    }
  }

  const files = new Map<string, TarFile>();
  const addBytes = (path: string, bytes: Buffer): void => void files.set(path, { size: bytes.length, chunks: () => [bytes] });
  const manifestJson: unknown[] = [];
  const indexEntries: Record<string, unknown>[] = [];
  for (const { image, tags } of items.values()) {
    for (const l of image.layers) {
      const d = l.descriptor;
      files.set(blobPath(d), { size: d.size, chunks: () => verified(l.open(), d) });
    }
    addBytes(blobPath(image.config.descriptor), image.config.bytes);
    addBytes(blobPath(image.manifest.descriptor), image.manifest.bytes);
    // Docker's manifestItem field order; no reader cares, but then it reads like docker save output.
    manifestJson.push({
      Config: blobPath(image.config.descriptor),
      RepoTags: tags.map((t) => t.familiar),
      Layers: image.layers.map((l) => blobPath(l.descriptor)),
    });
    // No `platform` on these entries, as containerd's own `ctr images export` writes them (Docker 25's
    // save adds one): containerd's importer (ctr, nerdctl, kind) imports only the content whose
    // descriptor names the host's platform, yet still creates and unpacks every named image — so an
    // archive naming `latest-arm64` with its platform fails `ctr images import` on an amd64 host
    // ("content digest …: not found"). Without it each named image comes in whole, as the user named
    // it; the platform is in its config, where every reader of a single image looks.
    const base: Descriptor = { ...image.manifest.descriptor };
    if (tags.length === 0) indexEntries.push(descriptorJson(base));
    for (const t of tags) {
      indexEntries.push(
        descriptorJson({ ...base, annotations: { [ANNOTATION_CONTAINERD_IMAGE_NAME]: t.full, [ANNOTATION_REF_NAME]: t.tag } }),
      );
    }
  }
  for (const [i, { index, repoTags }] of (options.indexes ?? []).entries()) {
    checkBuiltIndex(index, `docker archive index ${i}`);
    for (const child of index.images) {
      if (!items.has(child.manifest.descriptor.digest)) throw invalid(`docker archive: index ${i} names ${child.manifest.descriptor.digest}, which is not among the archive's images`);
    }
    addBytes(blobPath(index.index.descriptor), index.index.bytes);
    for (const t of repoTags.map(parseRepoTag)) {
      const owner = tagOwner.get(t.full);
      if (owner !== undefined && owner !== index.index.descriptor.digest) throw invalid(`docker archive: ${t.familiar} is given for two different images`);
      tagOwner.set(t.full, index.index.descriptor.digest);
      indexEntries.push(descriptorJson({ ...index.index.descriptor, annotations: { [ANNOTATION_CONTAINERD_IMAGE_NAME]: t.full, [ANNOTATION_REF_NAME]: t.tag } }));
    }
  }
  indexEntries.sort((a, b) => cmp(containerdName(a), containerdName(b)) || cmp(String(a['digest']), String(b['digest'])));
  addBytes('index.json', Buffer.from(goJson({ schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX, manifests: indexEntries })));
  addBytes('manifest.json', Buffer.from(goJson(manifestJson)));
  addBytes('oci-layout', Buffer.from(goJson({ imageLayoutVersion: '1.0.0' })));

  try {
    await writeAtomic(file, (tmp: string) => pipeline(tarStream(files, mtime), createWriteStream(tmp, { mode: 0o644, flags: 'wx' })));
  } catch (e) {
    if (e instanceof DistillError && !isDistillError(e, 'LAYER_IO')) throw e;
    const cause = e instanceof DistillError ? (e.cause ?? e) : e;
    throw new DistillError('LAYER_IO', `cannot write the docker archive ${file}: ${messageOf(cause)}`, { cause });
  }
}

function blobPath(d: Descriptor): string {
  return `blobs/sha256/${hexOf(d.digest, 'blob')}`;
}

function containerdName(m: Record<string, unknown>): string {
  const a = m['annotations'] as Record<string, string> | undefined;
  return a?.[ANNOTATION_CONTAINERD_IMAGE_NAME] ?? '';
}

/** A layer's bytes as they stream, failing before one byte more than the descriptor's size is passed on. */
async function* verified(source: Readable, d: Descriptor): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  let seen = 0;
  for await (const chunk of source as AsyncIterable<Buffer>) {
    seen += chunk.length;
    if (seen > d.size) throw mismatch(d, `more than ${d.size} bytes`);
    hash.update(chunk);
    yield chunk;
  }
  if (seen !== d.size) throw mismatch(d, `${seen} bytes, expected ${d.size}`);
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== d.digest) throw mismatch(d, `the bytes hash to ${got}`);
}

function mismatch(d: Descriptor, what: string): DistillError {
  return invalid(`layer ${d.digest}: ${what}`, 'the layer file changed after it was built, or its descriptor is wrong; rebuild');
}

// ---- repository tags (the docker reference grammar, as far as a tag needs it) ----

interface ParsedTag {
  /** As docker prints it: "foo:1", "ghcr.io/x/y:1". Goes into manifest.json's RepoTags. */
  familiar: string;
  /** Fully qualified: "docker.io/library/foo:1". Goes into io.containerd.image.name. */
  full: string;
  tag: string;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;

export function parseRepoTag(ref: string): ParsedTag {
  const bad = (why: string): DistillError =>
    invalid(`docker archive: ${JSON.stringify(ref)} is not a repository tag: ${why}`, 'write tags as name:tag, e.g. distill/static:latest');
  if (typeof ref !== 'string' || ref.includes('@')) throw bad('digests are not tags');
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  const [name, tag] = colon > slash ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
  if (!TAG.test(tag)) throw bad('bad tag');
  const parts = name.split('/');
  let domain = 'docker.io';
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!DOMAIN.test(first)) throw bad('bad registry host');
    domain = first === 'index.docker.io' ? 'docker.io' : first;
    parts.shift();
  }
  if (parts.length === 0 || !parts.every((p) => PATH_COMPONENT.test(p))) throw bad('path components are lowercase letters, digits and . _ -');
  if (domain === 'docker.io' && parts.length === 1) parts.unshift('library');
  const path = parts.join('/');
  if (domain.length + 1 + path.length > 255) throw bad('longer than 255 characters');
  const familiarName = domain !== 'docker.io' ? `${domain}/${path}` : path.startsWith('library/') && parts.length === 2 ? parts[1]! : path;
  return { familiar: `${familiarName}:${tag}`, full: `${domain}/${path}:${tag}`, tag };
}

// ---- a minimal deterministic ustar writer ----

interface TarFile {
  size: number;
  chunks: () => Iterable<Buffer> | AsyncIterable<Buffer>;
}

const BLOCK = 512;

async function* tarStream(files: Map<string, TarFile>, mtime: number): AsyncGenerator<Buffer> {
  // Parent directories first (tar -x and OCI layout readers do not need them, but an extracted
  // archive then looks like a layout made by hand), then everything in code-unit order.
  const paths = [...files.keys()].sort(cmp);
  const dirs = new Set<string>();
  for (const p of paths) {
    const segs = p.split('/');
    for (let i = 1; i < segs.length; i++) dirs.add(`${segs.slice(0, i).join('/')}/`);
  }
  const all = [...dirs, ...paths].sort(cmp);
  for (const p of all) {
    const f = files.get(p);
    if (f === undefined) {
      yield tarHeader({ name: p, mode: 0o755, size: 0, mtime, type: '5' });
      continue;
    }
    yield tarHeader({ name: p, mode: 0o644, size: f.size, mtime, type: '0' });
    yield* f.chunks();
    const pad = (BLOCK - (f.size % BLOCK)) % BLOCK;
    if (pad > 0) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(2 * BLOCK); // end of archive
}

interface TarHeader {
  name: string;
  mode: number;
  size: number;
  mtime: number;
  type: '0' | '5';
}

/** A POSIX ustar header: uid/gid 0, empty user/group names, no link, no device numbers. */
export function tarHeader(h: TarHeader): Buffer {
  const b = Buffer.alloc(BLOCK);
  const name = Buffer.from(h.name, 'utf8');
  if (name.length > 100) throw invalid(`docker archive: the path ${h.name} is too long for a ustar header`);
  name.copy(b, 0);
  octal(b, 100, 8, h.mode);
  octal(b, 108, 8, 0); // uid
  octal(b, 116, 8, 0); // gid
  sizeField(b, 124, h.size);
  octal(b, 136, 12, h.mtime);
  b.write(h.type, 156, 'ascii');
  b.write('ustar\u000000', 257, 'ascii'); // magic "ustar\0", version "00"
  // uname, gname, devmajor, devminor, prefix: left empty (NULs).
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'ascii');
  return b;
}

function octal(b: Buffer, off: number, len: number, v: number): void {
  b.write(`${v.toString(8).padStart(len - 1, '0')}\u0000`, off, 'ascii');
}

/** Octal up to 8 GiB - 1; above that the GNU base-256 form, which Go's archive/tar and GNU tar read. */
function sizeField(b: Buffer, off: number, v: number): void {
  if (v < 8 ** 11) return octal(b, off, 12, v);
  b[off] = 0x80;
  for (let i = 11; i >= 1; i--) {
    b[off + i] = v % 256;
    v = Math.floor(v / 256);
  }
}
