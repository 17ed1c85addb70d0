// `cosign verify --key` for the classic tag scheme, held to containers/image's rules (shared/docs/
// formats.md b, d). The steps, in order:
//   1. resolve the reference to the digest of the exact manifest bytes it names;
//   2. fetch `sha256-<hex>.sig` — none: SIGNATURE_NONE;
//   3. it must be served as an OCI image manifest — anything else: SIGNATURE_MEDIA_TYPE;
//   4. for each simplesigning layer (other layers are not signatures and are ignored):
//      a. the `dev.cosignproject.cosign/signature` annotation, standard padded base64 only;
//      b. the payload blob, size-capped, digest-checked as it streams;
//      c. the signature over those exact bytes with the public key;
//      d. the payload parsed strictly (simple-signing.ts);
//      e. docker-manifest-digest == the digest of step 1;
//      f. every required annotation present in `optional` with the same string value;
//   5. the image is signed when ANY layer passes every step. When none does, the error is the one of the
//      layer that got furthest: SIGNATURE_ANNOTATION_MISMATCH (f), SIGNATURE_DIGEST_MISMATCH (e),
//      else SIGNATURE_INVALID (a–d), with every layer's reason in the message.
// Everything from the registry is attacker-controlled until step 4c has passed, and only the bytes that
// passed 4c are parsed and returned.
import type { KeyObject } from 'node:crypto';
import { DistillError, isDistillError, messageOf, type ErrorCode } from '../errors.js';
import { MEDIA_TYPE_OCI_MANIFEST, RegistryClient, type RegistryOptions } from '../registry/client.js';
import { parseReference, type ImageReference } from '../registry/reference.js';
import { COSIGN_SIGN_PREDICATE, verifyBundle } from './bundle.js';
import { readBundles } from './bundle-store.js';
import { parseStatement, statementCovers } from '../provenance/statement.js';
import { SIGNATURE_ANNOTATION, SIGNATURE_PAYLOAD_CAP, readAttachment, readPayload, resolveImage } from './signature-store.js';
import { decodeStdBase64, verifyBytes } from './signer.js';
import { SIMPLE_SIGNING_MEDIA_TYPE, parseSimpleSigningPayload } from './simple-signing.js';
import { attachmentTag } from './triangulate.js';

export interface VerifyOptions extends RegistryOptions {
  publicKey: KeyObject;
  /** cosign verify's `-a key=value`: each must be in the payload's `optional`, as this string. */
  annotations?: Record<string, string>;
}

export interface VerifiedSignature {
  /** The payload blob's digest (the layer). */
  layer: string;
  /** The exact payload bytes the signature covers. */
  payload: Buffer;
  /** The base64 signature, as stored. */
  signature: string;
  dockerReference: string;
  manifestDigest: string;
  optional: Record<string, unknown> | null;
}

export interface VerifyResult {
  /** registry/repository@digest that was verified. */
  reference: string;
  digest: string;
  signatures: VerifiedSignature[];
}

/** Failures that belong to one layer (that layer does not verify); anything else aborts. */
const LAYER_FAULTS: ReadonlySet<ErrorCode> = new Set([
  'SIGNATURE_INVALID',
  'SIGNATURE_DIGEST_MISMATCH',
  'SIGNATURE_ANNOTATION_MISMATCH',
  'REGISTRY_DIGEST_MISMATCH',
  'REGISTRY_NOT_FOUND',
  'RESPONSE_TOO_LARGE',
]);
const RANK: Partial<Record<ErrorCode, number>> = { SIGNATURE_DIGEST_MISMATCH: 1, SIGNATURE_ANNOTATION_MISMATCH: 2 };

export async function verifyImage(reference: string, opts: VerifyOptions): Promise<VerifyResult> {
  const ref = parseReference(reference);
  const client = new RegistryClient(ref.registry, { ...opts, access: 'pull' });
  try {
    const image = await resolveImage(client, ref);
    let classic: VerifyResult | undefined;
    let classicError: unknown;
    try {
      classic = await verifyClassic(client, ref, image.digest, opts);
    } catch (e) {
      if (!isDistillError(e)) throw e;
      classicError = e;
    }
    // cosign v3's bundles (OCI referrers), read whatever the classic tag held.
    const found = await readBundles(client, ref.repository, image.digest, COSIGN_SIGN_PREDICATE);
    const fromBundles: VerifiedSignature[] = [];
    const failures: string[] = [...found.failures];
    for (const b of found.bundles) {
      try {
        const { payloadType, payload } = verifyBundle(b.bundle, opts.publicKey);
        if (payloadType !== 'application/vnd.in-toto+json') throw new DistillError('SIGNATURE_INVALID', `payload type ${JSON.stringify(payloadType.slice(0, 80))}`);
        const statement = parseStatement(payload);
        if (statement.predicateType !== COSIGN_SIGN_PREDICATE) continue;
        if (!statementCovers(statement, image.digest)) throw new DistillError('SIGNATURE_DIGEST_MISMATCH', `the bundle's statement is not about ${image.digest}`);
        if (Object.keys(opts.annotations ?? {}).length > 0) throw new DistillError('SIGNATURE_ANNOTATION_MISMATCH', 'a bundle signature carries no annotations');
        fromBundles.push({ layer: b.manifest, payload, signature: '', dockerReference: statement.subject[0]?.name ?? '', manifestDigest: image.digest, optional: null });
      } catch (e) {
        if (!isDistillError(e)) throw e;
        failures.push(`bundle ${b.manifest.slice(0, 19)}…: ${messageOf(e)}`);
      }
    }
    if (classic !== undefined || fromBundles.length > 0) {
      return { reference: `${ref.registry}/${ref.repository}@${image.digest}`, digest: image.digest, signatures: [...(classic?.signatures ?? []), ...fromBundles] };
    }
    if (failures.length === 0 || (isDistillError(classicError) && classicError.code !== 'SIGNATURE_NONE')) throw classicError;
    throw new DistillError('SIGNATURE_INVALID', `no signature of ${image.digest} verifies: ${failures.join('; ')}${isDistillError(classicError) ? `; ${messageOf(classicError)}` : ''}`, {
      hint: 'check the public key and the image reference',
    });
  } finally {
    await client.close();
  }
}

/** The classic `.sig` tag's signatures (steps 2–5 above), or the error that says why none verifies. */
async function verifyClassic(client: RegistryClient, ref: ImageReference, digest: string, opts: VerifyOptions): Promise<VerifyResult> {
  {
    const image = { digest };
    const tag = attachmentTag(image.digest, 'sig');
    const where = `${ref.registry}/${ref.repository}:${tag}`;
    const sigs = await readAttachment(client, ref.repository, tag);
    if (sigs === undefined) {
      throw new DistillError('SIGNATURE_NONE', `${ref.toString()} (${image.digest}) is not signed: there is no ${where}`, {
        hint: 'sign it (distill sign / cosign sign --key), or check the reference',
      });
    }
    if (sigs.mediaType !== MEDIA_TYPE_OCI_MANIFEST) {
      throw new DistillError('SIGNATURE_MEDIA_TYPE', `${where} is served as ${JSON.stringify(sigs.mediaType)}, not an OCI image manifest`, {
        hint: 'containers/image accepts only OCI signature manifests; sign again without COSIGN_DOCKER_MEDIA_TYPES',
      });
    }
    const layers = sigs.layers.filter((l) => l.mediaType === SIMPLE_SIGNING_MEDIA_TYPE);
    if (layers.length === 0) {
      throw new DistillError('SIGNATURE_NONE', `${where} holds no ${SIMPLE_SIGNING_MEDIA_TYPE} layer`, { hint: 'sign the image' });
    }
    const verified: VerifiedSignature[] = [];
    const failures: { layer: string; error: DistillError }[] = [];
    for (const l of layers) {
      try {
        const signature = l.annotations?.[SIGNATURE_ANNOTATION];
        const sig = signatureBytes(signature);
        const payload = await readPayload(client, ref.repository, l, SIGNATURE_PAYLOAD_CAP);
        verified.push({ layer: l.digest, ...checkSimpleSignature({ payload, signature: sig, publicKey: opts.publicKey, digest: image.digest, annotations: opts.annotations }), signature: signature! });
      } catch (e) {
        if (!isDistillError(e) || !LAYER_FAULTS.has(e.code)) throw e;
        failures.push({ layer: l.digest, error: e });
      }
    }
    if (verified.length > 0) return { reference: `${ref.registry}/${ref.repository}@${image.digest}`, digest: image.digest, signatures: verified };
    const worst = failures.reduce((a, b) => ((RANK[b.error.code] ?? 0) > (RANK[a.error.code] ?? 0) ? b : a));
    const code = RANK[worst.error.code] === undefined ? 'SIGNATURE_INVALID' : worst.error.code;
    const reasons = failures.map((f) => `${f.layer.slice(0, 19)}…: ${messageOf(f.error)}`).join('; ');
    throw new DistillError(code, `no signature in ${where} verifies (${failures.length} tried): ${reasons}`, {
      cause: worst.error,
      hint: worst.error.hint ?? 'check the public key and the image reference',
    });
  }
}

/** The signature annotation decoded, or SIGNATURE_INVALID (missing, URL-safe, unpadded or not base64). */
export function signatureBytes(annotation: string | undefined): Buffer {
  if (annotation === undefined || annotation === '') {
    throw new DistillError('SIGNATURE_INVALID', `the layer has no ${SIGNATURE_ANNOTATION} annotation`);
  }
  const sig = decodeStdBase64(annotation);
  if (sig === undefined) {
    throw new DistillError('SIGNATURE_INVALID', `the ${SIGNATURE_ANNOTATION} annotation is not standard padded base64`, {
      hint: 'containers/image refuses URL-safe or unpadded base64; re-sign with cosign or distill',
    });
  }
  return sig;
}

/** Steps 4c–4f for one payload and its decoded signature: the parsed payload, or the step's error. */
export function checkSimpleSignature(input: {
  payload: Buffer;
  signature: Buffer;
  publicKey: KeyObject;
  digest: string;
  annotations?: Record<string, string> | undefined;
}): Omit<VerifiedSignature, 'layer' | 'signature'> {
  if (!verifyBytes(input.publicKey, input.payload, input.signature)) {
    throw new DistillError('SIGNATURE_INVALID', 'the signature does not verify with the public key', {
      hint: 'the image was signed with another key, or the signature or payload was altered',
    });
  }
  const p = parseSimpleSigningPayload(input.payload);
  if (p.manifestDigest !== input.digest) {
    throw new DistillError('SIGNATURE_DIGEST_MISMATCH', `the signature is for ${JSON.stringify(p.manifestDigest.slice(0, 80))}, not ${input.digest}`, {
      hint: 'a signature of another image was copied here; do not trust this image',
    });
  }
  for (const [k, v] of Object.entries(input.annotations ?? {})) {
    const have = p.optional === null || !Object.hasOwn(p.optional, k) ? undefined : p.optional[k];
    if (have !== v) {
      throw new DistillError(
        'SIGNATURE_ANNOTATION_MISMATCH',
        `the signed annotation ${JSON.stringify(k)} is ${have === undefined ? 'missing' : JSON.stringify(have)}, required ${JSON.stringify(v)}`,
        { hint: 'the image was signed without the required annotation' },
      );
    }
  }
  return { payload: input.payload, dockerReference: p.dockerReference, manifestDigest: p.manifestDigest, optional: p.optional };
}
