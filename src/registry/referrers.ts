// OCI 1.1 referrers (distribution-spec "Listing referrers" and "Referrers tag schema"; image-spec
// manifest `subject`): artifacts that point at an image. A registry with the referrers API indexes a
// manifest with a `subject` by itself; one without it (Debian's docker-registry, distribution 2.8)
// needs the client to keep an index under the fallback tag `sha256-<hex>` of the subject — what
// go-containerregistry (and so cosign v3) and oras do: read the tag, add the descriptor, PUT it back
// (last writer wins, no locking, as with cosign's `.sig` tags).
//
// Which one a registry has is asked, not assumed: after the manifest PUT, GET /referrers/<subject>;
// a 404 means no API. Reading asks the API first and falls back to the tag.
// Everything read is untrusted registry content: indexes are size-capped by the client, parsed as
// objects, and their descriptors validated before use.
import { goJson, validateDescriptor, type Descriptor } from '../oci/descriptor.js';
import { DistillError, isDistillError } from '../errors.js';
import { MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, type RegistryClient } from './client.js';
import { emptyStats, type PushStats } from './sink.js';

/** The referrers tag schema's tag for a subject digest: `sha256-<hex>`. */
export function referrersTag(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (m === null) throw new DistillError('REFERENCE_INVALID', `${JSON.stringify(digest)} is not a sha256 digest`);
  return `sha256-${m[1]}`;
}

export interface Referrers {
  /** How the registry keeps them: its referrers API, or the fallback tag. */
  via: 'api' | 'tag';
  descriptors: Descriptor[];
}

function parseIndex(bytes: Buffer, what: string): Descriptor[] {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new DistillError('REGISTRY_PROTOCOL', `${what}: not JSON`, { cause: e });
  }
  const list = (doc as { manifests?: unknown } | null)?.manifests ?? [];
  if (typeof doc !== 'object' || doc === null || !Array.isArray(list)) throw new DistillError('REGISTRY_PROTOCOL', `${what}: not an image index`);
  return list.map((d: unknown, i) => {
    const x = d as Descriptor;
    try {
      validateDescriptor(x, `${what} manifests[${i}]`);
    } catch (e) {
      throw new DistillError('REGISTRY_PROTOCOL', `${what} manifests[${i}]: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (x.artifactType !== undefined && typeof x.artifactType !== 'string') throw new DistillError('REGISTRY_PROTOCOL', `${what} manifests[${i}]: artifactType is not a string`);
    if (x.annotations !== undefined && (typeof x.annotations !== 'object' || x.annotations === null || Object.values(x.annotations).some((v) => typeof v !== 'string'))) {
      throw new DistillError('REGISTRY_PROTOCOL', `${what} manifests[${i}]: annotations must map strings to strings`);
    }
    return {
      mediaType: x.mediaType,
      digest: x.digest,
      size: x.size,
      ...(x.artifactType !== undefined ? { artifactType: x.artifactType } : {}),
      ...(x.annotations !== undefined ? { annotations: { ...x.annotations } } : {}),
    };
  });
}

/** The referrers of `subject` (optionally only those of one artifactType): from the API, else the fallback tag. */
export async function listReferrers(client: RegistryClient, repository: string, subject: string, artifactType?: string): Promise<Referrers> {
  const keep = (list: Descriptor[]): Descriptor[] => (artifactType === undefined ? list : list.filter((d) => d.artifactType === artifactType));
  const api = await client.getReferrers(repository, subject);
  if (api !== undefined) return { via: 'api', descriptors: keep(parseIndex(api, `the referrers of ${subject}`)) };
  const tag = referrersTag(subject);
  try {
    const m = await client.getManifest(repository, tag, [MEDIA_TYPE_OCI_INDEX]);
    return { via: 'tag', descriptors: keep(parseIndex(m.bytes, `${client.registry}/${repository}:${tag}`)) };
  } catch (e) {
    if (isDistillError(e, 'REGISTRY_NOT_FOUND')) return { via: 'tag', descriptors: [] };
    throw e;
  }
}

/**
 * Make the manifest `descriptor` (already PUT, with a `subject` naming `subject`) findable as a referrer:
 * nothing to do when the registry lists it through its API; else add it to the fallback index, dropping
 * the entries `drop` selects (cosign attest --replace).
 */
export async function registerReferrer(
  client: RegistryClient,
  repository: string,
  subject: string,
  descriptor: Descriptor,
  drop: (d: Descriptor) => boolean = () => false,
): Promise<'api' | 'tag'> {
  const api = await client.getReferrers(repository, subject);
  if (api !== undefined) return 'api';
  const tag = referrersTag(subject);
  let existing: Descriptor[] = [];
  try {
    existing = parseIndex((await client.getManifest(repository, tag, [MEDIA_TYPE_OCI_INDEX])).bytes, `${client.registry}/${repository}:${tag}`);
  } catch (e) {
    if (!isDistillError(e, 'REGISTRY_NOT_FOUND')) throw e;
  }
  const kept = existing.filter((d) => d.digest !== descriptor.digest && !drop(d));
  const entry = {
    mediaType: descriptor.mediaType,
    digest: descriptor.digest,
    size: descriptor.size,
    ...(descriptor.artifactType !== undefined ? { artifactType: descriptor.artifactType } : {}),
    ...(descriptor.annotations !== undefined ? { annotations: Object.fromEntries(Object.entries(descriptor.annotations).sort(([a], [b]) => (a < b ? -1 : 1))) } : {}),
  };
  const index = Buffer.from(goJson({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [...kept, entry] }), 'utf8');
  await client.putManifest(repository, tag, index, MEDIA_TYPE_OCI_INDEX);
  return 'tag';
}


/** A referrer manifest is small; its blobs (a bundle: one statement) are capped like attestations. */
const REFERRER_BLOB_CAP = 64 * 1024 * 1024;

export interface CopyReferrersOptions {
  /** Repositories on the destination's registry to mount blobs from (a same-registry copy: the source). */
  mountFrom?: string[];
  /** Counters to add to (blobs uploaded, mounted, skipped; manifests pushed). */
  stats?: PushStats;
  /** The referrers of each subject, listed earlier (a copy lists them while the image's blobs stream). */
  listed?: ReadonlyMap<string, Promise<Descriptor[]>>;
}

/**
 * Copy the referrers of each `subjects` digest (of `artifactType`) from one repository to another,
 * byte for byte: every blob (HEAD-skipped, mounted when the registry is the same, else streamed from
 * the source verified as it flows and capped), the manifest under its digest, then its registration
 * at the destination (API or fallback tag, whatever the destination has). Subjects are copied at
 * once; one subject's referrers one after another (the fallback tag is read, changed and written).
 * Returns the referrer digests copied.
 */
export async function copyReferrers(
  source: { client: RegistryClient; repository: string },
  destination: { client: RegistryClient; repository: string },
  subjects: readonly string[],
  artifactType: string,
  opts: CopyReferrersOptions = {},
): Promise<string[]> {
  const stats = opts.stats ?? emptyStats();
  const perSubject = await Promise.all(subjects.map(async (subject) => {
    const copied: string[] = [];
    const descriptors = await (opts.listed?.get(subject) ?? listReferrers(source.client, source.repository, subject, artifactType).then((r) => r.descriptors));
    for (const d of descriptors) {
      const m = await source.client.getManifest(source.repository, d.digest, [MEDIA_TYPE_OCI_MANIFEST]);
      let doc: { config?: Descriptor; layers?: Descriptor[]; subject?: { digest?: string } };
      try {
        doc = JSON.parse(m.bytes.toString('utf8')) as typeof doc;
      } catch (e) {
        throw new DistillError('REGISTRY_PROTOCOL', `referrer ${d.digest}: not JSON`, { cause: e });
      }
      if (doc.subject?.digest !== subject) throw new DistillError('REGISTRY_PROTOCOL', `referrer ${d.digest} names another subject`);
      const blobs = [doc.config, ...(Array.isArray(doc.layers) ? doc.layers : [])].filter((b): b is Descriptor => b !== undefined);
      for (const [i, b] of blobs.entries()) {
        validateDescriptor(b, `referrer ${d.digest} blob ${i}`);
        if (b.size > REFERRER_BLOB_CAP) throw new DistillError('RESPONSE_TOO_LARGE', `referrer ${d.digest}: a ${b.size}-byte blob, more than ${REFERRER_BLOB_CAP}`);
      }
      for (const b of blobs) {
        const ref = { digest: b.digest, size: b.size };
        if ((await destination.client.headBlob(destination.repository, b.digest)) !== undefined) {
          stats.blobsSkipped++;
          continue;
        }
        const r = await destination.client.uploadBlob(destination.repository, ref, () => source.client.blobStream(source.repository, ref), {
          ...(opts.mountFrom !== undefined ? { mountFrom: opts.mountFrom } : {}),
        });
        if (r.outcome === 'mounted') stats.blobsMounted++;
        else {
          stats.blobsUploaded++;
          stats.bytesUploaded += b.size;
        }
      }
      await destination.client.putManifest(destination.repository, d.digest, m.bytes, MEDIA_TYPE_OCI_MANIFEST);
      stats.manifestsPushed++;
      await registerReferrer(destination.client, destination.repository, subject, d);
      copied.push(d.digest);
    }
    return copied;
  }));
  return perSubject.flat();
}
