// `distill push`: an OCI layout to a registry = the layout source (sources/oci-layout.ts) feeding the
// registry sink (registry/sink.ts). For every ref name of the layout's index.json (or the ones asked
// for), the image or index it names; the sink sends every blob once (HEAD → cross-repository mount
// from the repositories the caller names → upload), then manifests by digest, children first, then
// the tags, last: a push that fails or is killed part-way never leaves a tag naming something missing.
//
// The layout is read, never trusted: the source checks index.json, manifests and configs against
// their descriptors before parsing them, and layer bytes are verified while they upload.
import { DistillError } from '../errors.js';
import type { Artifact } from '../oci/model.js';
import { topDescriptor } from '../oci/model.js';
import { layoutRefs, readLayoutArtifact } from '../sources/oci-layout.js';
import { RegistryClient, type RegistryOptions } from './client.js';
import { isValidTag, parseReference } from './reference.js';
import { emptyStats, pushArtifacts, type PushStats } from './sink.js';

export interface PushOptions extends RegistryOptions {
  /** Only these ref names of the layout (default: every named entry of index.json). */
  refs?: string[];
  /** The tag for each ref name (default: the ref name itself, or the tag in `repository` when one ref is pushed). */
  tags?: Record<string, string> | ((refName: string) => string);
  /** Blobs in flight at once (default 4). */
  concurrency?: number;
  /** Repositories on the same registry to try mounting blobs from before uploading them. */
  mountFrom?: string[];
  /** A client for the target's registry to use (and leave open), so one command pings and authenticates once. */
  client?: RegistryClient;
}

export interface PushedRef {
  ref: string;
  tag: string;
  digest: string;
  /** registry/repository:tag@digest */
  reference: string;
}

export interface PushResult extends PushStats {
  pushed: PushedRef[];
}

/** An artifact to push under a ref name (a layout's ref, a build's variant or platform image). */
export interface NamedArtifact {
  ref: string;
  artifact: Artifact;
}

export async function pushLayout(layoutDir: string, repository: string, opts: PushOptions = {}): Promise<PushResult> {
  pushTarget(repository);
  const refs = opts.refs ?? (await layoutRefs(layoutDir));
  if (refs.length === 0) {
    throw new DistillError('OCI_INVALID', `${layoutDir}/index.json names no refs (no org.opencontainers.image.ref.name annotations): nothing to push`, {
      hint: 'push a complete OCI layout, e.g. one written by distill build --out',
    });
  }
  const named: NamedArtifact[] = [];
  for (const ref of refs) named.push({ ref, artifact: (await readLayoutArtifact(layoutDir, ref)).artifact });
  return pushNamed(named, repository, opts);
}

/**
 * Push named artifacts to `repository` as one push (registry/sink.ts pushArtifacts): each under its
 * ref name as the tag unless `tags` says otherwise. Every tag is checked before anything is sent.
 */
export async function pushNamed(named: readonly NamedArtifact[], repository: string, opts: Omit<PushOptions, 'refs'> = {}): Promise<PushResult> {
  const target = pushTarget(repository);
  const tagOf = (ref: string): string => {
    const t = typeof opts.tags === 'function' ? opts.tags(ref) : opts.tags?.[ref] ?? (named.length === 1 && target.tag !== undefined ? target.tag : ref);
    if (typeof t !== 'string' || !isValidTag(t)) {
      throw new DistillError('REFERENCE_INVALID', `the ref ${JSON.stringify(ref)} would be pushed as the tag ${JSON.stringify(t)}, which is not a valid tag`, {
        hint: 'pass a tag for it (tags are up to 128 letters, digits, _ . and -)',
      });
    }
    return t;
  };
  // Every tag is known before anything is sent: a bad one must not fail the push half-way.
  const items = named.map((n) => ({ ...n, tag: tagOf(n.ref) }));
  const client = opts.client ?? new RegistryClient(target.registry, { ...opts, access: 'push' });
  const stats = emptyStats();
  try {
    await pushArtifacts(client, target.repository, items, {
      stats,
      ...(opts.onProgress !== undefined ? { onProgress: opts.onProgress } : {}),
      ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
      ...(opts.mountFrom !== undefined ? { mountFrom: opts.mountFrom } : {}),
    });
  } finally {
    if (opts.client === undefined) await client.close();
  }
  const pushed = items.map((i) => {
    const digest = topDescriptor(i.artifact).digest;
    return { ref: i.ref, tag: i.tag, digest, reference: `${target.registry}/${target.repository}:${i.tag}@${digest}` };
  });
  return { pushed, ...stats };
}

/** A push target: a repository, maybe with a tag, never a digest (REFERENCE_INVALID). */
export function pushTarget(repository: string): ReturnType<typeof parseReference> {
  const target = parseReference(repository);
  if (target.digest !== undefined) {
    throw new DistillError('REFERENCE_INVALID', `push to ${target.toString()}: a push target cannot name a digest`, {
      hint: 'name a repository (and optionally a tag), e.g. 127.0.0.1:5000/distill/static',
    });
  }
  return target;
}
