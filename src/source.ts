// Any image source by name, as skopeo names transports: `docker://REFERENCE` (a registry),
// `oci:DIR[:REF]` (an OCI layout), `oci-archive:FILE[:REF]` and `docker-archive:FILE[:NAME:TAG|:@N]`
// (image archives, read in place) — and without a prefix, what the name is on disk: a directory is
// a layout (`DIR` or `DIR:REF`), a regular file an archive, anything else a registry reference.
// Each resolves to the image model (oci/model.ts); inspect, rebuild, diff and copy read images
// through here, so every one of them takes an image from wherever it is, with no temporary layout.
import { statSync } from 'node:fs';
import type { Digest } from './digest.js';
import { DistillError } from './errors.js';
import type { Artifact } from './oci/model.js';
import { RegistryClient, type RegistryOptions } from './registry/client.js';
import { parseReference } from './registry/reference.js';
import { type ReadRegistryOptions, readRegistryArtifact } from './registry/source.js';
import { type ArchiveKind, readArchiveArtifact } from './sources/archive.js';
import { readLayoutArtifact } from './sources/oci-layout.js';

export type SourceSpec =
  | { transport: 'docker'; reference: string }
  | { transport: 'oci'; dir: string; ref?: string }
  | { transport: ArchiveKind; file: string; selection?: string }
  /** A file given without a transport: an OCI archive when it has index.json, else a docker archive. */
  | { transport: 'archive'; file: string; selection?: string };

const PREFIXES = ['docker://', 'oci:', 'oci-archive:', 'docker-archive:'] as const;

/** Whether `spec` names its transport explicitly. */
export function hasTransport(spec: string): boolean {
  return PREFIXES.some((p) => spec.startsWith(p));
}

/** What `spec` names. Without a transport prefix, the file system is asked what the path is. */
export function parseSourceSpec(spec: string): SourceSpec {
  if (spec.startsWith('docker://')) return { transport: 'docker', reference: spec.slice('docker://'.length) };
  for (const t of ['oci', 'oci-archive', 'docker-archive'] as const) {
    if (!spec.startsWith(`${t}:`)) continue;
    const rest = spec.slice(t.length + 1);
    // skopeo splits at the first colon: the path may not hold one, the ref (NAME:TAG) may.
    const i = rest.indexOf(':');
    const path = i < 0 ? rest : rest.slice(0, i);
    const sel = i < 0 ? undefined : rest.slice(i + 1);
    if (path === '') throw new DistillError('USAGE', `${spec}: no path`, { hint: `write ${t}:PATH[:REF]` });
    if (t === 'oci') return { transport: 'oci', dir: path, ...(sel ? { ref: sel } : {}) };
    return { transport: t, file: path, ...(sel ? { selection: sel } : {}) };
  }
  const kind = pathKind(spec);
  if (kind === 'dir') return { transport: 'oci', dir: spec };
  if (kind === 'file') return { transport: 'archive', file: spec };
  // DIR:REF or FILE:REF of an existing path (a ref never holds a slash).
  const i = spec.lastIndexOf(':');
  if (i > 0 && !spec.slice(i + 1).includes('/') && spec.slice(i + 1) !== '') {
    const path = spec.slice(0, i);
    const ref = spec.slice(i + 1);
    const k = pathKind(path);
    if (k === 'dir') return { transport: 'oci', dir: path, ref };
    if (k === 'file') return { transport: 'archive', file: path, selection: ref };
  }
  return { transport: 'docker', reference: spec };
}

function pathKind(p: string): 'dir' | 'file' | undefined {
  try {
    const st = statSync(p);
    return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : undefined;
  } catch {
    return undefined;
  }
}

export interface OpenedSource {
  artifact: Artifact;
  /** The digest the source gives for what was named (the registry's, index.json's, or the archive's). */
  digest: Digest;
  /** A name for reports: the reference, `oci:DIR:REF`, `oci-archive:FILE:REF`, … */
  name: string;
  spec: SourceSpec;
  /** For a layout or archive: the ref, tag or @N that was chosen. */
  ref?: string;
  /** Release what the layers stream through (the registry client); call when done reading. */
  close(): Promise<void>;
}

export interface OpenSourceOptions extends RegistryOptions, ReadRegistryOptions {
  /** Of a layout or archive, read only these platforms (os/arch[/variant]); see ReadLayoutOptions. */
  platforms?: readonly string[];
  /** A registry client to use (kept open); default: one made here, closed by close(). */
  client?: RegistryClient;
}

/** Resolve `spec` to the model. Layers are not read: they stream when a consumer opens them. */
export async function openSource(spec: string | SourceSpec, opts: OpenSourceOptions = {}): Promise<OpenedSource> {
  const s = typeof spec === 'string' ? parseSourceSpec(spec) : spec;
  const none = async (): Promise<void> => {};
  if (s.transport === 'oci') {
    const a = await readLayoutArtifact(s.dir, s.ref, opts.platforms !== undefined ? { platforms: opts.platforms } : {});
    return { artifact: a.artifact, digest: a.digest, name: `oci:${s.dir}:${a.ref}`, spec: s, ref: a.ref, close: none };
  }
  if (s.transport !== 'docker') {
    // A bare file is read by what it holds (index.json first); a prefix says which half to read.
    const a = await readArchiveArtifact(s.file, { ...(s.transport !== 'archive' ? { kind: s.transport } : {}), ...(s.selection !== undefined ? { selection: s.selection } : {}), ...(opts.platforms !== undefined ? { platforms: opts.platforms } : {}) });
    const kind = s.transport !== 'archive' ? s.transport : a.via === 'index.json' ? 'oci-archive' : 'docker-archive';
    return { artifact: a.artifact, digest: a.digest, name: `${kind}:${s.file}:${a.selected}`, spec: s, ref: a.selected, close: none };
  }
  const r = parseReference(s.reference);
  const own = opts.client === undefined;
  const client = opts.client ?? new RegistryClient(r.registry, { ...opts, access: 'pull' });
  try {
    const got = await readRegistryArtifact(client, r.repository, r.digest ?? r.tag ?? 'latest', opts);
    return {
      artifact: got.artifact,
      digest: got.digest,
      name: `${r.registry}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`,
      spec: s,
      close: own ? () => client.close() : none,
    };
  } catch (e) {
    if (own) await client.close();
    throw e;
  }
}
