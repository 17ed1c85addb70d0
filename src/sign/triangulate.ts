// Where cosign keeps an image's attachments (the classic "tag" scheme, shared/docs/formats.md b, c):
// the tag `sha256-<hex>.sig` (`.att`, `.sbom`) in the image's own repository, named as `cosign
// triangulate` prints it. Names follow go-containerregistry's Repository.Name(), which spells Docker
// Hub `index.docker.io`; cosign writes that same name into payloads and in-toto subjects.
// (cosign's COSIGN_REPOSITORY, which moves attachments to another repository, is not supported.)
import { digestHex } from '../digest.js';
import { DistillError } from '../errors.js';
import { RegistryClient, type RegistryOptions } from '../registry/client.js';
import { DOCKER_HUB, parseReference, type ImageReference } from '../registry/reference.js';
import { resolveImage } from './signature-store.js';

export type AttachmentKind = 'sig' | 'att' | 'sbom';
export type TriangulateType = 'signature' | 'attestation' | 'sbom' | 'digest';

const SUFFIX: Record<Exclude<TriangulateType, 'digest'>, AttachmentKind> = { signature: 'sig', attestation: 'att', sbom: 'sbom' };

/** `sha256-<hex>.sig`: the image digest with ':' made '-', plus the kind. */
export function attachmentTag(digest: string, kind: AttachmentKind): string {
  return `sha256-${digestHex(digest)}.${kind}`;
}

/** The repository as cosign names it (go-containerregistry's Repository.Name()). */
export function cosignRepositoryName(ref: ImageReference): string {
  return `${ref.registry === DOCKER_HUB ? 'index.docker.io' : ref.registry}/${ref.repository}`;
}

/** The attachment reference for an image digest, without touching a registry. */
export function triangulateDigest(ref: ImageReference, digest: string, type: TriangulateType): string {
  const repo = cosignRepositoryName(ref);
  if (type === 'digest') return `${repo}@sha256:${digestHex(digest)}`;
  const kind = SUFFIX[type];
  if (kind === undefined) {
    throw new DistillError('USAGE', `unknown attachment type ${JSON.stringify(type)}`, { hint: 'use signature, attestation, sbom or digest' });
  }
  return `${repo}:${attachmentTag(digest, kind)}`;
}

/**
 * `cosign triangulate [--type T] IMAGE`: resolve the reference (a tag is looked up in the registry; a
 * digest is taken as given, as cosign does) and print where its attachment lives, e.g.
 * `127.0.0.1:5000/distill/static:sha256-<hex>.sig`.
 */
export async function triangulate(reference: string, type: TriangulateType = 'signature', opts: RegistryOptions = {}): Promise<string> {
  const ref = parseReference(reference);
  if (ref.digest !== undefined) return triangulateDigest(ref, ref.digest, type);
  const client = new RegistryClient(ref.registry, { ...opts, access: 'pull' });
  try {
    const image = await resolveImage(client, ref);
    return triangulateDigest(ref, image.digest, type);
  } finally {
    await client.close();
  }
}
