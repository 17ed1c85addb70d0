// `distill append`: FROM + COPY without a daemon or a Dockerfile. A base image or index (an OCI layout
// or a registry reference) gets one new layer per input (a directory, a file, or a tar/tar.gz) on
// every platform; its own layers are untouched (same blobs, same digests). Deterministic: entries
// sorted, owner 0:0 (or --chown), every mtime the one timestamp (SOURCE_DATE_EPOCH, else the base's
// `created`), the tar and gzip of layer/; same inputs ⇒ same digests. The result names its base
// (image-spec annotations.md: org.opencontainers.image.base.name / .base.digest), adds a history
// entry per layer, and comes with SLSA v1 provenance recording the base digest and every input's digest.
//
// Inputs are the user's files, but a tar given as input is hostile: its paths are normalised and
// refused when they climb out of the root, its entry types limited to files, dirs and symlinks.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { toDigest, type Digest } from './digest.js';
import { DistillError, messageOf } from './errors.js';
import { parseJsonObject } from './json.js';
import { checkSourceDateEpoch } from './lock/time.js';
import { goJson, jsonBlob, type Blob, type Descriptor } from './oci/descriptor.js';
import { goTime } from './oci/image.js';
import { ANNOTATION_BASE_DIGEST, ANNOTATION_BASE_NAME, MEDIA_TYPE_LAYER_GZIP } from './oci/media-types.js';
import { type Artifact, type Image, type ImageIndex, type Layer, imagesOf, isImageIndex, topDescriptor } from './oci/model.js';
import { type Platform, platformMatches, platformString } from './oci/platform.js';
import { normalisePath, type FsEntry } from './rootfs/entry.js';
import { writeLayer } from './layer/write-layer.js';
import { writeOciLayout, checkRefName } from './sinks/oci-layout.js';
import { readLayoutArtifact } from './sources/oci-layout.js';
import { openSource as openImageSource, parseSourceSpec } from './source.js';
import { RegistryClient, type RegistryOptions } from './registry/client.js';
import { parseReference } from './registry/reference.js';
import { emptyStats, pushArtifact, type PushStats } from './registry/sink.js';
import { readRegistryArtifact } from './registry/source.js';
import { writeFileAtomic } from './util/atomic-write.js';
import { readTar as readHardenedTar } from './tar/reader.js';
import { signImage } from './sign/sign.js';
import { attestImage } from './attest/attest.js';
import type { KeyObject } from 'node:crypto';
import { mkdir } from 'node:fs/promises';

export const APPEND_BUILD_TYPE = 'https://distill.dev/buildtypes/append/v1';
const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

export interface AppendOptions extends RegistryOptions {
  /** `PATH[:DEST]`: a directory (its contents go under DEST, default /), a file (at DEST, default /<name>), or a .tar/.tar.gz/.tgz (its entries under DEST). */
  layers: string[];
  entrypoint?: string[];
  cmd?: string[];
  /** `NAME=value`; replaces a base variable of the same name. */
  env?: string[];
  user?: string;
  workdir?: string;
  labels?: Record<string, string>;
  /** Only these platforms of an index (os/arch[/variant]); default all. */
  platforms?: string[];
  /** Owner of every appended entry (default 0:0). */
  chown?: { uid: number; gid: number };
  /** Seconds since the epoch for every mtime and `created` (SOURCE_DATE_EPOCH); default: the base's newest `created`. */
  sourceDateEpoch?: number;
  /** Write an OCI layout: `DIR` or `DIR:REF` (default ref latest). */
  out?: string;
  /** Push to `registry/repo[:tag]` (default tag latest). */
  push?: string;
  /** With `push`: sign the result (and each platform manifest) and attest its provenance with this cosign key. */
  signKey?: KeyObject;
}

export interface AppendedInput {
  /** The PATH as given. */
  path: string;
  dest: string;
  /** sha256 of the file or tar given; for a directory, the diffId of the layer made from it. */
  digest: Digest;
  layer: Descriptor;
  diffId: Digest;
}

export interface AppendResult {
  base: { name: string; digest: Digest };
  digest: Digest;
  mediaType: string;
  /** Each output manifest, with its platform. */
  manifests: { digest: Digest; platform?: Platform }[];
  inputs: AppendedInput[];
  /** The SLSA v1 provenance predicate (written beside the layout, or returned for attesting). */
  provenance: Record<string, unknown>;
  /** Where it went: DIR:REF or registry/repo:tag@digest. */
  destination: string;
  stats?: PushStats;
  /** With `signKey`: the signature and attestation tags written. */
  signatures?: string[];
  attestation?: string;
}

/** Append `opts.layers` to the image at `source` and write the result to `opts.out` or `opts.push`. */
export async function appendImage(source: string, opts: AppendOptions): Promise<AppendResult> {
  if ((opts.out === undefined) === (opts.push === undefined)) {
    throw new DistillError('USAGE', 'append needs exactly one destination', { hint: 'give --out DIR or --push REPO' });
  }
  if (opts.signKey !== undefined && opts.push === undefined) throw new DistillError('USAGE', '--sign-key signs what --push pushed', { hint: 'add --push REPO' });
  if (opts.layers.length === 0) throw new DistillError('USAGE', 'append needs at least one --layer', { hint: 'e.g. --layer ./app:/app' });
  // A uid/gid is a Linux uid_t (0..2^32-2; 2^32-1 is "no id"): a larger one is the caller's mistake,
  // refused here rather than deep in the tar writer as a LAYER_IO.
  for (const id of opts.chown === undefined ? [] : [opts.chown.uid, opts.chown.gid]) {
    if (!Number.isSafeInteger(id) || id < 0 || id > 0xfffffffe) throw new DistillError('USAGE', `--chown: ${id} is not a uid or gid (0 to 4294967294)`, { hint: 'e.g. --chown 65532:65532' });
  }
  const work = await mkdtemp(join(tmpdir(), 'distill-append-'));
  const clients = new Map<string, RegistryClient>();
  const client = (registry: string, access: 'pull' | 'push'): RegistryClient => {
    const key = `${registry} ${access}`;
    let c = clients.get(key);
    if (c === undefined) clients.set(key, (c = new RegistryClient(registry, { ...opts, access })));
    return c;
  };
  try {
    // 1. The base, from a layout or a registry; layers stay where they are until a sink reads them.
    const base = await openSource(source, client, opts.platforms);
    let artifact = base.artifact;
    if (opts.platforms !== undefined && opts.platforms.length > 0) artifact = narrow(artifact, opts.platforms, source);
    const created = opts.sourceDateEpoch !== undefined ? epochTime(opts.sourceDateEpoch) : newestCreated(artifact);
    const mtime = Math.floor(Date.parse(created) / 1000);

    // 2. One layer per input, the same blob on every platform.
    const inputs: AppendedInput[] = [];
    const layers: Layer[] = [];
    for (const [i, spec] of opts.layers.entries()) {
      const made = await makeLayer(spec, join(work, `layer-${i}.tar.gz`), join(work, `in-${i}`), mtime, opts.chown ?? { uid: 0, gid: 0 });
      inputs.push(made.input);
      layers.push(made.layer);
    }

    // 3. New configs, manifests and index; the base's layer descriptors kept as they are.
    const annotations = { [ANNOTATION_BASE_NAME]: base.name };
    const images = imagesOf(artifact).map((img) =>
      appendToImage(img, layers, inputs, opts, created, { ...annotations, [ANNOTATION_BASE_DIGEST]: img.manifest.descriptor.digest }),
    );
    const result: Artifact = isImageIndex(artifact)
      ? { index: rewriteIndex(artifact, images, { ...annotations, [ANNOTATION_BASE_DIGEST]: base.digest }), images }
      : images[0]!;
    const top = topDescriptor(result);
    const provenance = provenanceOf(source, base.digest, inputs, opts);
    const out: AppendResult = {
      base: { name: base.name, digest: base.digest },
      digest: top.digest,
      mediaType: top.mediaType,
      manifests: images.map((i) => ({ digest: i.manifest.descriptor.digest, ...(i.platform !== undefined ? { platform: i.platform } : {}) })),
      inputs,
      provenance,
      destination: '',
    };

    // 4. The sink.
    if (opts.out !== undefined) {
      const { dir, ref: named } = splitLayoutRef(opts.out, 'latest');
      const ref = named ?? 'latest';
      checkRefName(ref);
      await writeOciLayout(dir, [{ name: ref, target: result as never }]);
      await mkdir(join(dir, 'attestations'), { recursive: true });
      await writeFileAtomic(join(dir, 'attestations', `${ref}.append.provenance.json`), goJson(provenance) + '\n');
      out.destination = `${dir}:${ref}`;
    } else {
      const to = parseReference(opts.push!);
      if (to.digest !== undefined) throw new DistillError('USAGE', `--push ${opts.push}: a push target cannot name a digest`, { hint: 'give a repository and optionally a tag' });
      const tag = to.tag ?? 'latest';
      const stats = emptyStats();
      const sameRegistry = base.registry !== undefined && base.registry.registry === to.registry;
      await pushArtifact(client(to.registry, 'push'), to.repository, result, {
        tag,
        stats,
        ...(sameRegistry ? { mountFrom: [base.registry!.repository] } : {}),
        ...(opts.onProgress !== undefined ? { onProgress: opts.onProgress } : {}),
      });
      out.destination = `${to.registry}/${to.repository}:${tag}@${top.digest}`;
      out.stats = stats;
      if (opts.signKey !== undefined) {
        const ref = `${to.registry}/${to.repository}@${top.digest}`;
        const signed = await signImage(ref, { ...opts, client: client(to.registry, 'push'), privateKey: opts.signKey, recursive: true });
        out.signatures = signed.map((x) => x.tag);
        const subjects = out.manifests.map((m) => ({ name: `${to.registry}/${to.repository}`, digest: m.digest }));
        out.attestation = (await attestImage(ref, { ...opts, client: client(to.registry, 'push'), privateKey: opts.signKey, predicateType: 'slsaprovenance1', predicate: provenance, replace: true, extraSubjects: subjects })).tag;
      }
    }
    return out;
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()));
    await rm(work, { recursive: true, force: true }).catch(() => {});
  }
}

// ---- the base ----

interface Base {
  artifact: Artifact;
  name: string;
  digest: Digest;
  registry?: { registry: string; repository: string };
}

async function openSource(source: string, client: (registry: string, access: 'pull' | 'push') => RegistryClient, platforms: string[] | undefined): Promise<Base> {
  // Only the platforms asked for are read from a layout or archive: a single-platform export (ctr
  // export, docker save) lists platforms it does not hold, and they are not needed.
  const only = platforms !== undefined && platforms.length > 0 ? { platforms } : {};
  // An image archive (docker save, distill build --tar, oci-archive) through the archive source.
  const spec = parseSourceSpec(source);
  if (spec.transport === 'archive' || spec.transport === 'oci-archive' || spec.transport === 'docker-archive') {
    const a = await openImageSource(spec, only);
    // Named by the file's base name, as a layout is: the base.name annotation must not depend on where the file is.
    return { artifact: a.artifact, name: `${a.name.slice(0, a.name.indexOf(':'))}:${basename(spec.file)}:${a.ref}`, digest: a.digest };
  }
  const { dir, ref } = splitLayoutRef(source.startsWith('oci:') ? source.slice('oci:'.length) : source, undefined);
  if (await isDirectory(dir)) {
    const a = await readLayoutArtifact(dir, ref, only);
    return { artifact: a.artifact, name: `oci:${basename(dir)}:${a.ref}`, digest: a.digest };
  }
  const r = parseReference(source);
  const got = await readRegistryArtifact(client(r.registry, 'pull'), r.repository, r.digest ?? r.tag ?? 'latest');
  return { artifact: got.artifact, name: `${r.registry}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ''}`, digest: got.digest, registry: { registry: r.registry, repository: r.repository } };
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await lstat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** `DIR:REF` → {DIR, REF}; a colon followed by a valid ref name after an existing-looking path. */
function splitLayoutRef(s: string, dflt: string | undefined): { dir: string; ref: string } | { dir: string; ref: undefined } {
  const i = s.lastIndexOf(':');
  if (i > 0 && !s.slice(i + 1).includes('/') && s.slice(i + 1) !== '') return { dir: s.slice(0, i), ref: s.slice(i + 1) };
  return dflt === undefined ? { dir: s, ref: undefined } : { dir: s, ref: dflt };
}

function narrow(a: Artifact, wanted: string[], source: string): Artifact {
  const images = imagesOf(a).filter((img) => img.platform !== undefined && wanted.some((w) => platformMatches(w, img.platform!)));
  if (images.length === 0) {
    throw new DistillError('REGISTRY_NOT_FOUND', `${source} has no image for ${wanted.join(', ')}`, { hint: `it has: ${imagesOf(a).map((i) => (i.platform ? platformString(i.platform) : '?')).join(', ')}` });
  }
  if (!isImageIndex(a)) return a;
  return { index: a.index, images };
}

function newestCreated(a: Artifact): string {
  let best = '';
  for (const img of imagesOf(a)) {
    const c = baseConfig(img)['created'];
    if (typeof c === 'string' && !Number.isNaN(Date.parse(c)) && (best === '' || Date.parse(c) > Date.parse(best))) best = c;
  }
  return best === '' ? epochTime(0) : goTime(best, 'base config created');
}

/**
 * The base image's config, parsed and checked where append edits it. ATTACKER-CONTROLLED: a base from
 * a layout, archive or registry may carry any bytes under a correct digest (the image source reads a
 * config that is not JSON as an artifact's); what append would spread, iterate or call string methods
 * on must be what image-spec config.md says it is, else the base is refused, not crashed on.
 */
function baseConfig(img: Image): Record<string, unknown> {
  const what = `the base config ${img.config.descriptor.digest}`;
  const bad = (m: string): DistillError => new DistillError('OCI_INVALID', `${what}: ${m}`, { hint: 'append onto an image whose config is an OCI/Docker image config' });
  const config = parseJsonObject(img.config.bytes, (m) => bad(m));
  const c = config['config'];
  if (c !== undefined && c !== null && (typeof c !== 'object' || Array.isArray(c))) throw bad('config is not an object');
  const env = (c as Record<string, unknown> | null | undefined)?.['Env'];
  if (env !== undefined && env !== null && !(Array.isArray(env) && env.every((e) => typeof e === 'string'))) throw bad('config.Env is not a list of strings');
  const labels = (c as Record<string, unknown> | null | undefined)?.['Labels'];
  if (labels !== undefined && labels !== null && (typeof labels !== 'object' || Array.isArray(labels))) throw bad('config.Labels is not an object');
  const rootfs = config['rootfs'];
  if (rootfs !== undefined && (rootfs === null || typeof rootfs !== 'object' || Array.isArray(rootfs))) throw bad('rootfs is not an object');
  const ids = (rootfs as Record<string, unknown> | undefined)?.['diff_ids'];
  if (ids !== undefined && ids !== null && !(Array.isArray(ids) && ids.every((x) => typeof x === 'string'))) throw bad('rootfs.diff_ids is not a list of strings');
  return config;
}

function epochTime(seconds: number): string {
  checkSourceDateEpoch(seconds);
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

// ---- the new layers ----

interface Pending {
  entry: FsEntry;
  /** A file's bytes. */
  file?: string;
}

async function makeLayer(spec: string, outFile: string, scratch: string, mtime: number, owner: { uid: number; gid: number }): Promise<{ layer: Layer; input: AppendedInput }> {
  const { path, dest } = splitLayerSpec(spec);
  let st;
  try {
    st = await lstat(path);
  } catch (e) {
    throw new DistillError('USAGE', `--layer ${spec}: cannot read ${path}: ${messageOf(e)}`, { hint: 'give an existing directory, file or tar' });
  }
  const entries = new Map<string, Pending>();
  const add = (rel: string, p: Omit<Pending['entry'], 'path' | 'uid' | 'gid' | 'uname' | 'gname' | 'mtime'>, file?: string): void => {
    const full = normalisePath(`${dest}/${rel}`);
    if (full === undefined) throw new DistillError('USAGE', `--layer ${spec}: the path ${JSON.stringify(rel)} leaves the image root`, { hint: 'paths may not contain ..' });
    entries.set(full, { entry: { ...p, path: full, uid: owner.uid, gid: owner.gid, uname: '', gname: '', mtime }, ...(file !== undefined ? { file } : {}) });
  };
  let inputDigest: Digest | undefined;
  const isTar = /\.(tar|tar\.gz|tgz)$/.test(path) && st.isFile();
  if (st.isDirectory()) {
    await walk(path, '', add, spec);
  } else if (isTar) {
    inputDigest = await fileDigest(path);
    await mkdir(scratch, { recursive: true });
    await readTar(path, scratch, add, spec);
  } else if (st.isFile()) {
    inputDigest = await fileDigest(path);
    const target = dest.endsWith('/') || dest === '' ? basename(path) : '';
    add(target, { type: 'file', mode: st.mode & 0o7777, size: st.size }, path);
  } else {
    throw new DistillError('USAGE', `--layer ${spec}: ${path} is neither a directory, a file nor a tar`);
  }
  // Parents the entries need but the input does not give: 0755 directories.
  for (const p of [...entries.keys()]) {
    for (let i = p.indexOf('/'); i > 0; i = p.indexOf('/', i + 1)) {
      const parent = p.slice(0, i);
      if (!entries.has(parent)) entries.set(parent, { entry: { path: parent, type: 'dir', mode: 0o755, size: 0, uid: owner.uid, gid: owner.gid, uname: '', gname: '', mtime } });
    }
  }
  const sorted = [...entries.values()].sort((a, b) => Buffer.compare(Buffer.from(a.entry.path), Buffer.from(b.entry.path)));
  const written = await writeLayer(outFile, async (t) => {
    for (const e of sorted) await t.add(e.entry, e.file !== undefined ? createReadStream(e.file) : undefined);
  });
  const descriptor: Descriptor = { mediaType: MEDIA_TYPE_LAYER_GZIP, digest: written.digest, size: written.size };
  const layer: Layer = { descriptor, diffId: written.diffId, open: () => createReadStream(written.path) };
  return { layer, input: { path, dest: `/${normalisePath(dest) ?? ''}`, digest: inputDigest ?? written.diffId, layer: descriptor, diffId: written.diffId } };
}

function splitLayerSpec(spec: string): { path: string; dest: string } {
  const i = spec.lastIndexOf(':/');
  if (i > 0) return { path: spec.slice(0, i), dest: spec.slice(i + 1) };
  return { path: spec, dest: '/' };
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

async function walk(root: string, rel: string, add: (rel: string, p: Omit<FsEntry, 'path' | 'uid' | 'gid' | 'uname' | 'gname' | 'mtime'>, file?: string) => void, spec: string): Promise<void> {
  // A name that is not UTF-8 comes back from readdir with U+FFFD in it and names no file (an lstat of
  // it fails); tar paths are UTF-8 (POSIX pax), so such a name is refused up front, by its bytes.
  const names = (await readdir(join(root, rel), { encoding: 'buffer' })).map((b) => {
    try {
      return UTF8.decode(b);
    } catch {
      throw new DistillError('USAGE', `--layer ${spec}: the name ${JSON.stringify(b.toString('latin1'))} in ${join(root, rel)} is not UTF-8`, { hint: 'rename the file: image paths are UTF-8' });
    }
  }).sort();
  for (const n of names) {
    const r = rel === '' ? n : `${rel}/${n}`;
    const full = join(root, r);
    const st = await lstat(full);
    if (st.isDirectory()) {
      add(r, { type: 'dir', mode: st.mode & 0o7777, size: 0 });
      await walk(root, r, add, spec);
    } else if (st.isFile()) {
      add(r, { type: 'file', mode: st.mode & 0o7777, size: st.size }, full);
    } else if (st.isSymbolicLink()) {
      add(r, { type: 'symlink', mode: 0o777, size: 0, linkTarget: await readlink(full) });
    } else {
      throw new DistillError('USAGE', `--layer ${spec}: ${full} is a device, socket or fifo; images hold files, directories and symlinks`);
    }
  }
}

/**
 * A tar's entries, bodies spooled to `scratch`. The input is hostile: it is read by the one hardened
 * tar reader (tar/reader.ts: structure, sizes, pax records checked), paths are normalised and may not
 * leave the root, and only files, directories and symlinks are taken.
 */
async function readTar(path: string, scratch: string, add: (rel: string, p: Omit<FsEntry, 'path' | 'uid' | 'gid' | 'uname' | 'gname' | 'mtime'>, file?: string) => void, spec: string): Promise<void> {
  let n = 0;
  const malformed = (message: string, cause?: unknown) => new DistillError('USAGE', `--layer ${spec}: ${message}`, { cause, hint: 'give a well-formed tar or tar.gz' });
  const compression = /\.(tar\.gz|tgz)$/.test(path) ? 'gzip' : 'none';
  await readHardenedTar(createReadStream(path), { what: path, compression, malformed }, async (e, body) => {
    const rel = normalisePath(e.name);
    if (rel === undefined) {
      if (e.name.replace(/\/+$/, '') === '.' || e.name === './') return;
      throw new DistillError('USAGE', `--layer ${spec}: the tar entry ${JSON.stringify(e.name.slice(0, 200))} leaves the image root`);
    }
    const mode = e.mode & 0o7777;
    if (e.type === 'file' || e.type === 'contiguous') {
      const f = join(scratch, String(n++));
      await pipeline(body(), createWriteStream(f));
      add(rel, { type: 'file', mode, size: e.size }, f);
    } else if (e.type === 'dir') {
      add(rel, { type: 'dir', mode, size: 0 });
    } else if (e.type === 'symlink' && typeof e.linkname === 'string' && e.linkname !== '') {
      add(rel, { type: 'symlink', mode: 0o777, size: 0, linkTarget: e.linkname });
    } else {
      throw new DistillError('USAGE', `--layer ${spec}: the tar entry ${JSON.stringify(rel)} is a ${e.type}; only files, directories and symlinks are appended`);
    }
  });
}

async function fileDigest(path: string): Promise<Digest> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return toDigest(h.digest('hex'));
}

// ---- the new documents ----

function appendToImage(img: Image, layers: Layer[], inputs: AppendedInput[], opts: AppendOptions, created: string, annotations: Record<string, string>): Image {
  const config = baseConfig(img);
  const docker = img.manifest.descriptor.mediaType === DOCKER_MANIFEST;
  const c = { ...((config['config'] as Record<string, unknown> | undefined) ?? {}) };
  if (opts.env !== undefined && opts.env.length > 0) {
    const env = Array.isArray(c['Env']) ? [...(c['Env'] as string[])] : [];
    for (const e of opts.env) {
      const eq = e.indexOf('=');
      if (eq <= 0) throw new DistillError('USAGE', `--env ${JSON.stringify(e)} is not NAME=value`);
      const at = env.findIndex((x) => x.startsWith(e.slice(0, eq + 1)));
      if (at >= 0) env[at] = e;
      else env.push(e);
    }
    c['Env'] = env;
  }
  // A new entrypoint resets the base's Cmd, as a Dockerfile's ENTRYPOINT does.
  if (opts.entrypoint !== undefined) {
    c['Entrypoint'] = opts.entrypoint;
    if (opts.cmd === undefined) delete c['Cmd'];
  }
  if (opts.cmd !== undefined) c['Cmd'] = opts.cmd;
  if (opts.user !== undefined) c['User'] = opts.user;
  if (opts.workdir !== undefined) c['WorkingDir'] = opts.workdir;
  if (opts.labels !== undefined && Object.keys(opts.labels).length > 0) {
    const merged = { ...((c['Labels'] as Record<string, string> | undefined) ?? {}), ...opts.labels };
    c['Labels'] = Object.fromEntries(Object.keys(merged).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))).map((k) => [k, merged[k]!]));
  }
  config['created'] = created;
  config['config'] = c;
  const rootfs = (config['rootfs'] as { type?: string; diff_ids?: string[] } | undefined) ?? { type: 'layers', diff_ids: [] };
  config['rootfs'] = { ...rootfs, diff_ids: [...(rootfs.diff_ids ?? []), ...layers.map((l) => l.diffId!)] };
  // History pairs with layers by position (docker history, buildkit): a base without history gets one
  // entry per base layer first, so ours describe our layers.
  const history = Array.isArray(config['history']) ? [...(config['history'] as unknown[])] : [];
  if (history.length === 0) {
    for (let i = 0; i < img.layers.length; i++) history.push({ created, created_by: 'base layer', comment: 'distill append: the base recorded no history' });
  }
  for (const inp of inputs) history.push({ created, created_by: `distill append ${inp.dest} ${inp.digest}`, comment: 'distill append' });
  config['history'] = history;
  const configBlob = jsonBlob(img.config.descriptor.mediaType, config);

  const manifest = JSON.parse(img.manifest.bytes.toString('utf8')) as Record<string, unknown>;
  const newLayers = layers.map((l) => ({ ...l.descriptor, mediaType: docker ? DOCKER_LAYER_GZIP : l.descriptor.mediaType }));
  manifest['config'] = { ...(manifest['config'] as object), mediaType: configBlob.descriptor.mediaType, digest: configBlob.descriptor.digest, size: configBlob.descriptor.size };
  manifest['layers'] = [...(manifest['layers'] as unknown[]), ...newLayers];
  manifest['annotations'] = sortedMap({ ...((manifest['annotations'] as Record<string, string> | undefined) ?? {}), ...annotations });
  const manifestBlob = jsonBlob(img.manifest.descriptor.mediaType, manifest);
  return {
    manifest: manifestBlob,
    config: configBlob,
    layers: [...img.layers, ...layers.map((l, i) => ({ ...l, descriptor: newLayers[i]! }))],
    ...(img.platform !== undefined ? { platform: img.platform } : {}),
  };
}

function rewriteIndex(idx: ImageIndex, images: Image[], annotations: Record<string, string>): Blob {
  const parsed = JSON.parse(idx.index.bytes.toString('utf8')) as Record<string, unknown>;
  const old = parsed['manifests'] as Record<string, unknown>[];
  const byOld = new Map(idx.images.map((img, i) => [img.manifest.descriptor.digest as string, images[i]!]));
  // Entries for images we did not append to (other platforms, attestation manifests) are dropped:
  // they describe the base, not the result.
  parsed['manifests'] = old.flatMap((e) => {
    const img = byOld.get(String(e['digest']));
    return img === undefined ? [] : [{ ...e, digest: img.manifest.descriptor.digest, size: img.manifest.descriptor.size }];
  });
  parsed['annotations'] = sortedMap({ ...((parsed['annotations'] as Record<string, string> | undefined) ?? {}), ...annotations });
  return jsonBlob(idx.index.descriptor.mediaType, parsed);
}

function sortedMap(m: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.keys(m).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))).map((k) => [k, m[k]!]));
}

function provenanceOf(source: string, baseDigest: Digest, inputs: AppendedInput[], opts: AppendOptions): Record<string, unknown> {
  return {
    buildDefinition: {
      buildType: APPEND_BUILD_TYPE,
      externalParameters: {
        source,
        layers: inputs.map((i) => ({ path: basename(i.path), dest: i.dest })),
        ...(opts.entrypoint !== undefined ? { entrypoint: opts.entrypoint } : {}),
        ...(opts.cmd !== undefined ? { cmd: opts.cmd } : {}),
        ...(opts.env !== undefined ? { env: opts.env } : {}),
        ...(opts.user !== undefined ? { user: opts.user } : {}),
        ...(opts.workdir !== undefined ? { workdir: opts.workdir } : {}),
        ...(opts.labels !== undefined ? { labels: opts.labels } : {}),
        ...(opts.platforms !== undefined ? { platforms: opts.platforms } : {}),
      },
      resolvedDependencies: [
        { uri: source, digest: { sha256: baseDigest.slice('sha256:'.length) } },
        ...inputs.map((i) => ({ uri: `file:${basename(i.path)}`, digest: { sha256: i.digest.slice('sha256:'.length) } })),
      ],
    },
    runDetails: { builder: { id: 'https://distill.dev/builders/cli' } },
  };
}
