// `distill pull`: the registry source into the OCI layout sink (image-spec image-layout.md), readable
// by skopeo (`oci:DIR:REF`), umoci and distill itself. The registry source (registry/source.ts)
// resolves the reference to the model — manifests and configs read whole, capped and checked against
// their digests; the layout sink (sinks/oci-layout.ts) writes it — every layer streamed from the
// registry into a temp file, verified while it flows, fsynced and renamed; blobs already present
// re-hashed and kept; index.json last, keeping other refs' entries. Nothing is written before every
// manifest and config has been read and checked, so a refused pull leaves no layout that looks complete.
//
// OCI and Docker schema 2 manifests and indexes are kept byte for byte. With `platforms`, an index is
// narrowed to the matching entries: the layout then holds a new index (same fields, fewer manifests)
// whose digest differs from the registry's — both are reported.
//
// Attachments come along (as `distill copy` brings them): cosign's `sha256-<hex>.sig/.att/.sbom`
// tags of the image and of each platform manifest become refs of the same names, and the OCI
// referrers of each (Sigstore bundles, SBOMs) a `sha256-<hex>` ref in the referrers tag schema's form
// — so `distill push` of the layout gives them back to a registry, and `oci:DIR:sha256-<hex>.sig`
// finds them.
import { DistillError } from '../errors.js';
import { noProgress } from '../events.js';
import { type Descriptor } from '../oci/descriptor.js';
import { imagesOf, isImageIndex, topDescriptor } from '../oci/model.js';
import { type Platform, debianArchToPlatform, platformString } from '../oci/platform.js';
import { checkRefName, writeLayoutArtifacts, type LayoutArtifactRef } from '../sinks/oci-layout.js';
import { isTransient } from '../http/retry.js';
import { RegistryClient, type RegistryOptions } from './client.js';
import { parseReference } from './reference.js';
import { readAttachments, readRegistryArtifact } from './source.js';

export interface PullOptions extends RegistryOptions {
  /** Only these platforms of an index: 'linux/amd64', 'linux/arm64/v8', a Debian architecture ('arm64'), or a Platform. */
  platforms?: (string | Platform)[];
  /** The ref name in index.json (default: the tag, else the digest). */
  refName?: string;
  /** Blobs downloaded at once (default 4). */
  concurrency?: number;
  /** Also pull cosign signatures, attestations, SBOMs and OCI referrers (default true). */
  attachments?: boolean;
}

export interface PullResult {
  /** registry/repository[:tag]@digest that was pulled. */
  reference: string;
  refName: string;
  /** The digest index.json names: the registry's, or the narrowed index's when `platforms` dropped entries. */
  digest: string;
  /** The digest of what the registry served for the reference. */
  sourceDigest: string;
  mediaType: string;
  /** The image manifests written. */
  manifests: { digest: string; platform?: Platform }[];
  /** cosign attachment tags pulled, each now a ref of the same name (sha256-<hex>.sig, …). */
  attachments: string[];
  /** OCI referrers pulled (their manifest digests), under the refs sha256-<hex> of their subjects. */
  referrers: string[];
  bytesDownloaded: number;
  blobsDownloaded: number;
  /** Blobs already in the layout (verified). */
  blobsCached: number;
}

export async function pullImage(ref: string, outDir: string, opts: PullOptions = {}): Promise<PullResult> {
  const parsed = parseReference(ref);
  const reference = parsed.digest ?? parsed.tag ?? 'latest';
  const refName = opts.refName ?? parsed.tag ?? parsed.digest ?? 'latest';
  checkRefName(refName);
  const wanted = opts.platforms?.map(toPlatform);
  const wantedWhat = wanted?.map(platformString).join(', ');
  const emit = opts.onProgress ?? noProgress;
  const repo = parsed.repository;
  const client = new RegistryClient(parsed.registry, { ...opts, access: 'pull' });
  try {
    // 1. Read: everything small, checked, before anything is written.
    const main = await readRegistryArtifact(client, repo, reference, {
      ...(wanted !== undefined ? { select: (e: Descriptor) => e.platform !== undefined && wanted.some((w) => matches(w, e.platform!)), selectWhat: wantedWhat! } : {}),
    });
    const artifact = main.artifact;
    if (!isImageIndex(artifact) && wanted !== undefined) {
      const p = artifact.platform;
      if (p === undefined || !wanted.some((w) => matches(w, p))) {
        throw new DistillError('REGISTRY_NOT_FOUND', `${parsed.toString()} is a single image for ${p ? platformString(p) : 'no platform'}, not ${wantedWhat}`);
      }
    }
    const images = imagesOf(artifact);
    const refs: LayoutArtifactRef[] = [{ name: refName, artifact }];
    const attachments: string[] = [];
    const referrers: string[] = [];
    if (opts.attachments !== false) {
      // Attachments name the digest they belong to: the image's, and each platform manifest's.
      const subjects = [...new Set([main.digest, topDescriptor(artifact).digest, ...images.map((i) => i.manifest.descriptor.digest)])];
      const found = await readAttachments(client, repo, subjects);
      for (const t of found.tags) {
        if (t.tag === refName) continue;
        refs.push({ name: t.tag, artifact: t.artifact });
        attachments.push(t.tag);
      }
      for (const r of found.referrers) {
        if (r.tag === refName) continue;
        refs.push({ name: r.tag, artifact: r.index });
        referrers.push(...r.index.images.map((i) => i.manifest.descriptor.digest));
      }
    }

    // 2. Write: the layout sink, layers streaming from the registry. A body cut mid-way is a fresh
    // GET (the temp file is discarded); a wrong byte is REGISTRY_DIGEST_MISMATCH and never retried.
    const documents = new Set<string>();
    for (const r of refs) {
      documents.add(topDescriptor(r.artifact).digest);
      for (const i of imagesOf(r.artifact)) documents.add(i.manifest.descriptor.digest);
    }
    const result: PullResult = {
      reference: `${parsed.registry}/${repo}${parsed.tag !== undefined ? `:${parsed.tag}` : ''}@${main.digest}`,
      refName,
      digest: topDescriptor(artifact).digest,
      sourceDigest: main.digest,
      mediaType: topDescriptor(artifact).mediaType,
      manifests: images.map((i) => ({ digest: i.manifest.descriptor.digest, ...(i.platform !== undefined ? { platform: i.platform } : {}) })),
      attachments,
      referrers,
      bytesDownloaded: 0,
      blobsDownloaded: 0,
      blobsCached: 0,
    };
    const last = new Map<string, number>();
    await writeLayoutArtifacts(outDir, refs, {
      concurrency: opts.concurrency ?? 4,
      retryable: isTransient,
      onBlob: (e) => {
        const d = e.descriptor;
        if (documents.has(d.digest)) return;
        if (e.type === 'start') {
          last.set(d.digest, 0);
          emit({ type: 'download-start', what: d.digest, bytes: d.size });
        } else if (e.type === 'bytes') {
          if (e.bytes - (last.get(d.digest) ?? 0) >= 1024 * 1024 || e.bytes === d.size) {
            last.set(d.digest, e.bytes);
            emit({ type: 'download-progress', what: d.digest, bytes: e.bytes, total: d.size });
          }
        } else {
          if (e.present) result.blobsCached++;
          else {
            result.blobsDownloaded++;
            result.bytesDownloaded += d.size;
          }
          emit({ type: 'download-done', what: d.digest, bytes: d.size, cached: e.present });
        }
      },
    });
    return result;
  } finally {
    await client.close();
  }
}

// ---- platforms ----

export function toPlatform(p: string | Platform): Platform {
  if (typeof p !== 'string') return p;
  const parts = p.split('/');
  if (parts.length === 1) {
    try {
      return debianArchToPlatform(p);
    } catch {
      return { os: 'linux', architecture: p };
    }
  }
  if (parts.length > 3 || parts.some((x) => x === '')) {
    throw new DistillError('USAGE', `${JSON.stringify(p)} is not a platform`, { hint: 'write platforms as os/arch[/variant], e.g. linux/arm64/v8' });
  }
  return parts[2] !== undefined ? { os: parts[0]!, architecture: parts[1]!, variant: parts[2] } : { os: parts[0]!, architecture: parts[1]! };
}

/** containerd's rule, simplified: os and architecture equal; a wanted variant must match (arm64's missing variant is v8). */
export function matches(wanted: Platform, have: Platform): boolean {
  if (wanted.os !== have.os || wanted.architecture !== have.architecture) return false;
  if (wanted.variant === undefined) return true;
  const v = have.variant ?? (have.architecture === 'arm64' ? 'v8' : undefined);
  return v === wanted.variant;
}
