// Manifests over the OCI distribution spec 1.1 (spec.md "Pulling manifests", "Pushing manifests"):
// HEAD, GET and PUT by tag or digest. What is read is size-capped (4 MiB, distribution's own limit)
// and hashed: a manifest asked for by digest must have that digest, and a Docker-Content-Digest must
// name the bytes received; what is PUT is checked against the reference it goes under.
import { sha256Hex, toDigest, type Digest } from '../digest.js';
import { DistillError } from '../errors.js';
import { CAPS, DIGEST, type Transport, checkDigestHeader, drain, header, mismatch } from './transport.js';

export const MEDIA_TYPE_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MEDIA_TYPE_DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
/** What we read: OCI and Docker schema 2 images and indexes (never schema 1). */
export const MANIFEST_ACCEPT = [MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST, MEDIA_TYPE_DOCKER_MANIFEST];

/** distribution refuses manifests over 4 MiB; so do we, both ways. */
export const MANIFEST_CAP = CAPS.manifest;

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: Digest;
}

/** HEAD a manifest by tag or digest: its digest, media type and size, or undefined when absent. */
export async function headManifest(t: Transport, repository: string, reference: string): Promise<{ digest?: string; mediaType?: string; size?: number } | undefined> {
  const what = `manifest ${reference} in ${t.registry}/${repository}`;
  return t.retrying(`HEAD ${what}`, async () => {
    const res = await t.send({
      method: 'HEAD',
      url: t.url(repository, 'manifests', reference),
      scopes: t.readScopes(repository),
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      what,
    });
    if (res.statusCode === 404) {
      await drain(res);
      return undefined;
    }
    if (res.statusCode !== 200) throw await t.failure(res, what);
    await drain(res);
    if (DIGEST.test(reference)) checkDigestHeader(res, reference, what);
    const d = header(res, 'docker-content-digest');
    const type = header(res, 'content-type');
    const len = Number(header(res, 'content-length'));
    return {
      ...(d !== undefined && DIGEST.test(d) ? { digest: d } : {}),
      ...(type !== undefined ? { mediaType: type.split(';')[0]!.trim() } : {}),
      ...(Number.isSafeInteger(len) ? { size: len } : {}),
    };
  });
}

/** GET a manifest or index by tag or digest; its bytes are hashed and checked against what was asked and what the registry claims. */
export async function getManifest(t: Transport, repository: string, reference: string, accept: string[] = MANIFEST_ACCEPT): Promise<FetchedManifest> {
  const what = `manifest ${reference} in ${t.registry}/${repository}`;
  return t.retrying(`GET ${what}`, async () => {
    const res = await t.send({
      method: 'GET',
      url: t.url(repository, 'manifests', reference),
      scopes: t.readScopes(repository),
      headers: { accept: accept.join(', ') },
      what,
      followRedirects: true,
    });
    if (res.statusCode !== 200) throw await t.failure(res, what);
    const bytes = await t.readBody(res, CAPS.manifest, what);
    const digest = toDigest(sha256Hex(bytes));
    if (DIGEST.test(reference) && digest !== reference) throw mismatch(`${what}: the registry sent bytes whose digest is ${digest}`);
    checkDigestHeader(res, digest, what);
    let doc: unknown;
    try {
      doc = JSON.parse(bytes.toString('utf8'));
    } catch (e) {
      throw new DistillError('REGISTRY_PROTOCOL', `${what}: not JSON`, { cause: e });
    }
    // Every manifest and index is a JSON object (image-spec); `null`, a list or a number under a
    // manifest Content-Type is the registry's (attacker-controlled) lie, refused here for every caller.
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new DistillError('REGISTRY_PROTOCOL', `${what}: not a JSON object`);
    const fromBody = (doc as { mediaType?: unknown }).mediaType;
    const fromHeader = header(res, 'content-type')?.split(';')[0]?.trim();
    const mediaType = typeof fromBody === 'string' && fromBody !== '' ? fromBody : fromHeader;
    if (mediaType === undefined || !accept.includes(mediaType)) {
      throw new DistillError('REGISTRY_PROTOCOL', `${what}: unsupported media type ${JSON.stringify(String(mediaType).slice(0, 100))}`, {
        hint: `distill reads ${accept.join(', ')}`,
      });
    }
    return { bytes, mediaType, digest };
  });
}

/** PUT a manifest or index under a tag or its digest; returns its digest (checked against the registry's). */
export async function putManifest(t: Transport, repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<Digest> {
  const what = `manifest ${reference} to ${t.registry}/${repository}`;
  if (bytes.length > CAPS.manifest) {
    throw new DistillError('OCI_INVALID', `${what}: ${bytes.length} bytes, more than registries accept (${CAPS.manifest})`);
  }
  const digest = toDigest(sha256Hex(bytes));
  if (DIGEST.test(reference) && reference !== digest) {
    throw new DistillError('OCI_INVALID', `${what}: the bytes have the digest ${digest}`);
  }
  return t.retrying(`PUT ${what}`, async () => {
    const res = await t.send({
      method: 'PUT',
      url: t.url(repository, 'manifests', reference),
      scopes: [t.pushScope(repository)],
      headers: { 'content-type': mediaType },
      body: bytes,
      what,
    });
    if (res.statusCode !== 201) throw await t.failure(res, what);
    await drain(res);
    checkDigestHeader(res, digest, what);
    return digest;
  });
}
