// `distill copy`: an image or index from one repository (or registry) to another with every digest
// kept, together with its cosign attachments — the `sha256-<hex>.sig`, `.att` and `.sbom` tags and the
// Sigstore bundle referrers (cosign v3) of the image and, for an index, of each platform manifest — so
// a promotion dev → test → prod carries its signatures and attestations along (the imgpkg flow).
// Registry source → registry sink, blob by blob: a blob the destination has is skipped (HEAD), and on
// the same registry every blob is mounted across repositories rather than sent again. Bytes are never
// re-serialised: what is pushed is exactly what was read, so digests (and signatures over them) hold.
import { DistillError } from './errors.js';
import { RegistryClient, type RegistryOptions } from './registry/client.js';
import { parseReference } from './registry/reference.js';
import { copyReferrers, listReferrers } from './registry/referrers.js';
import { MEDIA_TYPE_SIGSTORE_BUNDLE_V03 } from './oci/media-types.js';
import { emptyStats, pushArtifact, type PushStats } from './registry/sink.js';
import { forEachLimit } from './util/limit.js';
import { ATTACHMENT_TAG, readRegistryArtifact } from './registry/source.js';
import { imagesOf } from './oci/model.js';
import { openSource, parseSourceSpec } from './source.js';

export interface CopyOptions extends RegistryOptions {
  /** Also copy cosign signatures, attestations and SBOMs (default true). */
  attachments?: boolean;
  /** Blobs in flight at once (default 8: every platform's blobs share one pool, largest first). */
  concurrency?: number;
}

export interface CopyResult {
  source: string;
  destination: string;
  digest: string;
  /** The attachment tags copied, e.g. sha256-<hex>.sig. */
  attachments: string[];
  /** The Sigstore bundle referrers copied (their manifest digests). */
  referrers: string[];
  /** What went over the wire to the destination (blobs uploaded, mounted, already there). */
  stats: PushStats;
}

export async function copyImage(src: string, dst: string, opts: CopyOptions = {}): Promise<CopyResult> {
  if (parseSourceSpec(src).transport !== 'docker') return copyFromLocal(src, dst, opts);
  const from = parseReference(src);
  const to = parseReference(dst);
  if (to.digest !== undefined) {
    throw new DistillError('USAGE', `copy ${src} → ${dst}: the destination is a digest; copies keep digests, so give the destination a tag`, { hint: 'e.g. registry/prod/app:1.2' });
  }
  const tag = to.tag ?? from.tag;
  if (tag === undefined) {
    throw new DistillError('USAGE', `copy ${src} → ${dst}: no tag to write`, { hint: 'give the destination a tag (repo:tag), or copy from a tagged source' });
  }
  // One client per registry for the whole command: one ping, one token per scope, reused by every blob.
  const source = new RegistryClient(from.registry, { ...opts, access: 'pull' });
  // A blob streamed from a registry goes up in one PUT of known length rather than 8 MiB PATCHes:
  // each PATCH is a round trip the source stream waits on (go-containerregistry streams one body too).
  const sink = new RegistryClient(to.registry, { monolithicMax: Number.MAX_SAFE_INTEGER, ...opts, access: 'push' });
  const sameRegistry = source.base.href === sink.base.href;
  // The destination's /v2/ ping goes out while the source is read, not after.
  if (!sameRegistry) sink.connect();
  const stats = emptyStats();
  const push = {
    stats,
    ...(opts.onProgress !== undefined ? { onProgress: opts.onProgress } : {}),
    concurrency: opts.concurrency ?? 8,
    ...(sameRegistry ? { mountFrom: [from.repository] } : {}),
  };
  try {
    const main = await readRegistryArtifact(source, from.repository, from.digest ?? from.tag ?? 'latest');
    // Attachments name the digest they belong to: the image's, and each platform manifest's.
    const subjects = [main.digest, ...imagesOf(main.artifact).map((i) => i.manifest.descriptor.digest)];
    const hexes = new Set(subjects.map((d) => d.slice('sha256:'.length)));
    // Which attachment tags exist (and their small documents) is read while the image's blobs stream.
    const found = opts.attachments === false
      ? Promise.resolve([])
      : (async () => {
          const tags = (await source.listTags(from.repository)).filter((t) => hexes.has(ATTACHMENT_TAG.exec(t)?.[1] ?? '')).sort();
          return Promise.all(tags.map(async (t) => ({ tag: t, artifact: (await readRegistryArtifact(source, from.repository, t)).artifact })));
        })();
    // And which Sigstore bundles refer to them: listed now too, copied after the image.
    const listed = opts.attachments === false
      ? undefined
      : new Map(subjects.map((s) => [s, listReferrers(source, from.repository, s, MEDIA_TYPE_SIGSTORE_BUNDLE_V03).then((r) => r.descriptors)]));
    // Awaited below; not unhandled rejections meanwhile.
    found.catch(() => {});
    for (const p of listed?.values() ?? []) p.catch(() => {});
    await pushArtifact(sink, to.repository, main.artifact, { ...push, tag });
    const copied: string[] = [];
    const referrers: string[] = [];
    if (opts.attachments !== false) {
      const attachments = await found;
      await Promise.all([
        forEachLimit(attachments, 4, async (a) => {
          await pushArtifact(sink, to.repository, a.artifact, { ...push, tag: a.tag });
        }),
        // cosign v3's Sigstore bundles: OCI referrers of the same digests (registry/referrers.ts),
        // streamed blob by blob (mounted on the same registry) like everything else.
        copyReferrers(
          { client: source, repository: from.repository },
          { client: sink, repository: to.repository },
          subjects,
          MEDIA_TYPE_SIGSTORE_BUNDLE_V03,
          { stats, ...(listed !== undefined ? { listed } : {}), ...(sameRegistry ? { mountFrom: [from.repository] } : {}) },
        ).then((r) => referrers.push(...r)),
      ]);
      copied.push(...attachments.map((a) => a.tag));
    }
    return { source: src, destination: `${to.registry}/${to.repository}:${tag}`, digest: main.digest, attachments: copied, referrers, stats };
  } finally {
    await Promise.all([source.close(), sink.close()]);
  }
}

/**
 * A local source (an OCI layout, an oci-archive or docker-archive file) into a registry: the same
 * registry sink, each layer streamed from the file and verified as it goes. Cosign attachments live
 * in registries, so none come along from a file.
 */
async function copyFromLocal(src: string, dst: string, opts: CopyOptions): Promise<CopyResult> {
  const to = parseReference(dst);
  if (to.digest !== undefined || to.tag === undefined) {
    throw new DistillError('USAGE', `copy ${src} → ${dst}: give the destination a tag`, { hint: 'e.g. registry/prod/app:1.2' });
  }
  const source = await openSource(src);
  const sink = new RegistryClient(to.registry, { ...opts, access: 'push' });
  const stats = emptyStats();
  try {
    await pushArtifact(sink, to.repository, source.artifact, {
      stats,
      tag: to.tag,
      ...(opts.onProgress !== undefined ? { onProgress: opts.onProgress } : {}),
      ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
    });
    return { source: source.name, destination: `${to.registry}/${to.repository}:${to.tag}`, digest: source.digest, attachments: [], referrers: [], stats };
  } finally {
    await Promise.all([source.close(), sink.close()]);
  }
}
