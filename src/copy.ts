// `distill copy`: an image or index from one repository (or registry) to another with every digest
// kept, together with its cosign attachments — the `sha256-<hex>.sig`, `.att` and `.sbom` tags and the
// Sigstore bundle referrers (cosign v3) of the image and, for an index, of each platform manifest —
// so a promotion dev → test → prod carries its
// signatures and attestations along (the imgpkg flow). Bytes are never re-serialised: what is pushed
// is exactly what was pulled, so the digests (and the signatures over them) still hold.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DistillError } from './errors.js';
import { RegistryClient, type RegistryOptions } from './registry/client.js';
import { pullImage } from './registry/pull.js';
import { pushLayout } from './registry/push.js';
import { parseReference } from './registry/reference.js';
import { copyReferrers } from './registry/referrers.js';
import { MEDIA_TYPE_SIGSTORE_BUNDLE_V03 } from './oci/media-types.js';

export interface CopyOptions extends RegistryOptions {
  /** Also copy cosign signatures, attestations and SBOMs (default true). */
  attachments?: boolean;
  /** A scratch directory (default: the system temp dir). */
  workDir?: string;
}

export interface CopyResult {
  source: string;
  destination: string;
  digest: string;
  /** The attachment tags copied, e.g. sha256-<hex>.sig. */
  attachments: string[];
  /** The Sigstore bundle referrers copied (their manifest digests). */
  referrers: string[];
}

const ATTACHMENT = /^sha256-([0-9a-f]{64})\.(sig|att|sbom)$/;

export async function copyImage(src: string, dst: string, opts: CopyOptions = {}): Promise<CopyResult> {
  const from = parseReference(src);
  const to = parseReference(dst);
  if (to.digest !== undefined) {
    throw new DistillError('USAGE', `copy ${src} → ${dst}: the destination is a digest; copies keep digests, so give the destination a tag`, { hint: 'e.g. registry/prod/app:1.2' });
  }
  const tag = to.tag ?? from.tag;
  if (tag === undefined && to.digest === undefined) {
    throw new DistillError('USAGE', `copy ${src} → ${dst}: no tag to write`, { hint: 'give the destination a tag (repo:tag), or copy from a tagged source' });
  }
  const work = await mkdtemp(join(opts.workDir ?? tmpdir(), 'distill-copy-'));
  const dstRepo = `${to.registry}/${to.repository}`;
  try {
    const main = await pullImage(src, join(work, 'image'), { ...opts, refName: 'image' });
    if (main.digest !== main.sourceDigest) throw new Error('internal: copy narrowed an index');
    await pushLayout(join(work, 'image'), `${dstRepo}:${tag ?? 'latest'}`, { ...opts, refs: ['image'], tags: { image: tag ?? 'latest' } });
    const copied: string[] = [];
    const referrers: string[] = [];
    if (opts.attachments !== false) {
      // Attachments name the digest they belong to: the image's, and each platform manifest's.
      const digests = new Set([main.sourceDigest, ...main.manifests.map((m) => m.digest)].map((d) => d.slice('sha256:'.length)));
      const client = new RegistryClient(from.registry, { ...opts, access: 'pull' });
      let tags: string[];
      try {
        tags = await client.listTags(from.repository);
      } finally {
        await client.close();
      }
      for (const t of tags.sort()) {
        const m = ATTACHMENT.exec(t);
        if (!m || !digests.has(m[1]!)) continue;
        const dir = join(work, t);
        await pullImage(`${from.registry}/${from.repository}:${t}`, dir, { ...opts, refName: 'attachment' });
        await pushLayout(dir, `${dstRepo}:${t}`, { ...opts, refs: ['attachment'], tags: { attachment: t } });
        copied.push(t);
      }
      // cosign v3's Sigstore bundles: OCI referrers of the same digests (registry/referrers.ts).
      const source = new RegistryClient(from.registry, { ...opts, access: 'pull' });
      const destination = new RegistryClient(to.registry, { ...opts, access: 'push' });
      try {
        referrers.push(...(await copyReferrers(
          { client: source, repository: from.repository },
          { client: destination, repository: to.repository },
          [main.sourceDigest, ...main.manifests.map((m) => m.digest)],
          MEDIA_TYPE_SIGSTORE_BUNDLE_V03,
          work,
        )));
      } finally {
        await source.close();
        await destination.close();
      }
    }
    return { source: src, destination: `${dstRepo}:${tag ?? 'latest'}`, digest: main.sourceDigest, attachments: copied, referrers };
  } finally {
    await rm(work, { recursive: true, force: true }).catch(() => {});
  }
}
