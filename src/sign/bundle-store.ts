// Sigstore bundles in a registry as cosign v3 stores them (cosign specs/BUNDLE_SPEC.md): the bundle JSON
// as a blob; an OCI image manifest with artifactType application/vnd.dev.sigstore.bundle.v0.3+json, the
// empty config, the bundle as its one layer (titled sha256-<hex>.sigstore.json), `subject` = the image,
// and the annotations dev.sigstore.bundle.content / .predicateType / org.opencontainers.image.created;
// PUT by digest, then made findable through the referrers API or the fallback tag (registry/referrers.ts).
import { sha256Hex, toDigest } from '../digest.js';
import { DistillError, isDistillError } from '../errors.js';
import { goJson, type Descriptor } from '../oci/descriptor.js';
import { MEDIA_TYPE_OCI_MANIFEST, type RegistryClient } from '../registry/client.js';
import { listReferrers, registerReferrer } from '../registry/referrers.js';
import { Readable } from 'node:stream';
import { BUNDLE_V03_MEDIA_TYPE } from './bundle.js';
import { readPayload } from './signature-store.js';

export const EMPTY_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json';
const EMPTY = Buffer.from('{}', 'utf8');
export const BUNDLE_CONTENT_ANNOTATION = 'dev.sigstore.bundle.content';
export const BUNDLE_PREDICATE_ANNOTATION = 'dev.sigstore.bundle.predicateType';
const CREATED_ANNOTATION = 'org.opencontainers.image.created';
const TITLE_ANNOTATION = 'org.opencontainers.image.title';
/** A bundle carries one statement (a whole SBOM at most): the same cap as DSSE attestation layers. */
export const BUNDLE_CAP = 64 * 1024 * 1024;

export interface StoredBundle {
  /** The referrer manifest's digest. */
  manifest: string;
  /** How the registry lists it. */
  via: 'api' | 'tag';
}

async function putBlob(client: RegistryClient, repository: string, bytes: Buffer): Promise<string> {
  const digest = toDigest(sha256Hex(bytes));
  const have = await client.headBlob(repository, digest);
  if (have === undefined) await client.uploadBlob(repository, { digest, size: bytes.length }, () => Readable.from([bytes], { objectMode: false }));
  return digest;
}

/**
 * Store `bundle` as a referrer of `subject`. With `replace`, earlier bundles of the same predicate type
 * leave the fallback index (a registry's referrers API lists what it holds: they stay there).
 */
export async function writeBundle(
  client: RegistryClient,
  repository: string,
  subject: Descriptor,
  bundle: Buffer,
  predicateType: string,
  opts: { created: string; replace?: boolean },
): Promise<StoredBundle> {
  const bundleDigest = await putBlob(client, repository, bundle);
  const configDigest = await putBlob(client, repository, EMPTY);
  const annotations = { [BUNDLE_CONTENT_ANNOTATION]: 'dsse-envelope', [BUNDLE_PREDICATE_ANNOTATION]: predicateType, [CREATED_ANNOTATION]: opts.created };
  const manifest = Buffer.from(goJson({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    artifactType: BUNDLE_V03_MEDIA_TYPE,
    config: { mediaType: EMPTY_MEDIA_TYPE, digest: configDigest, size: EMPTY.length },
    layers: [{ mediaType: BUNDLE_V03_MEDIA_TYPE, digest: bundleDigest, size: bundle.length, annotations: { [TITLE_ANNOTATION]: `${bundleDigest.replace(':', '-')}.sigstore.json` } }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: Object.fromEntries(Object.entries(annotations).sort(([a], [b]) => (a < b ? -1 : 1))),
  }), 'utf8');
  const digest = toDigest(sha256Hex(manifest));
  await client.putManifest(repository, digest, manifest, MEDIA_TYPE_OCI_MANIFEST);
  const via = await registerReferrer(
    client,
    repository,
    subject.digest,
    { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest, size: manifest.length, artifactType: BUNDLE_V03_MEDIA_TYPE, annotations },
    (d) => opts.replace === true && d.artifactType === BUNDLE_V03_MEDIA_TYPE && d.annotations?.[BUNDLE_PREDICATE_ANNOTATION] === predicateType,
  );
  return { manifest: digest, via };
}

export interface FoundBundle {
  manifest: string;
  /** The bundle's bytes (unverified). */
  bundle: Buffer;
  /** The index's predicateType annotation: an unauthenticated hint. */
  predicateType?: string;
}

/**
 * The bundles that refer to `subject` (of `predicateType`, by the index annotation, when given — a
 * hint only: the caller verifies the statement). Unreadable referrers are reported in `failures`.
 */
export async function readBundles(client: RegistryClient, repository: string, subject: string, predicateType?: string): Promise<{ via: 'api' | 'tag'; bundles: FoundBundle[]; failures: string[] }> {
  const { via, descriptors } = await listReferrers(client, repository, subject, BUNDLE_V03_MEDIA_TYPE);
  const bundles: FoundBundle[] = [];
  const failures: string[] = [];
  for (const d of descriptors) {
    const hinted = d.annotations?.[BUNDLE_PREDICATE_ANNOTATION];
    if (predicateType !== undefined && hinted !== undefined && hinted !== predicateType) continue;
    try {
      const m = await client.getManifest(repository, d.digest, [MEDIA_TYPE_OCI_MANIFEST]);
      const doc = JSON.parse(m.bytes.toString('utf8')) as { subject?: { digest?: unknown }; layers?: unknown };
      if (doc.subject?.digest !== subject) throw new DistillError('REGISTRY_PROTOCOL', `referrer ${d.digest} has another subject`);
      const layer = Array.isArray(doc.layers) ? (doc.layers as Descriptor[]).find((l) => l?.mediaType === BUNDLE_V03_MEDIA_TYPE) : undefined;
      if (layer === undefined || typeof layer.digest !== 'string' || typeof layer.size !== 'number') throw new DistillError('REGISTRY_PROTOCOL', `referrer ${d.digest} has no bundle layer`);
      bundles.push({ manifest: d.digest, bundle: await readPayload(client, repository, { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, BUNDLE_CAP), ...(hinted !== undefined ? { predicateType: hinted } : {}) });
    } catch (e) {
      if (!isDistillError(e) || !['REGISTRY_PROTOCOL', 'REGISTRY_NOT_FOUND', 'REGISTRY_DIGEST_MISMATCH', 'RESPONSE_TOO_LARGE'].includes(e.code)) {
        if (e instanceof SyntaxError) {
          failures.push(`${d.digest.slice(0, 19)}…: not JSON`);
          continue;
        }
        throw e;
      }
      failures.push(`${d.digest.slice(0, 19)}…: ${e.message}`);
    }
  }
  return { via, bundles, failures };
}
