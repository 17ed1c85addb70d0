// `cosign attest --key` and `cosign verify-attestation --key` in the classic tag scheme (shared/docs/
// formats.md c): an in-toto statement about the image digest, signed as a DSSE envelope, stored as one
// layer (media type application/vnd.dsse.envelope.v1+json, annotations `predicateType` = the URI and
// `dev.cosignproject.cosign/signature` = "") of the `sha256-<hex>.att` manifest, appended — or, with
// `replace`, in place of the earlier layers of the same predicate type.
//
// Verifying, per DSSE layer: payload blob (size-capped, digest-checked) → a signature over PAE with the
// key → payload type in-toto → statement → its predicateType is the one asked for → its subject names
// the image digest. Statements are returned only from bytes that passed the signature check.
import type { KeyObject } from 'node:crypto';
import { DistillError, isDistillError, messageOf, type ErrorCode } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { RegistryClient, type RegistryOptions } from '../registry/client.js';
import { parseReference } from '../registry/reference.js';
import {
  ATTESTATION_PAYLOAD_CAP,
  SIGNATURE_ANNOTATION,
  payloadLayer,
  readAttachment,
  readPayload,
  resolveImage,
  writeAttachment,
} from '../sign/signature-store.js';
import { attachmentTag, cosignRepositoryName } from '../sign/triangulate.js';
import { signBundle, verifyBundle } from '../sign/bundle.js';
import { readBundles, writeBundle } from '../sign/bundle-store.js';
import { checkFormat, type SignatureFormat } from '../sign/sign.js';
import { DSSE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, decodeEnvelope, signEnvelope, verifyEnvelope } from './dsse.js';
import { SLSA_PROVENANCE_V1, makeStatement, parseStatement, predicateTypeUri, statementCovers, type Statement } from '../provenance/statement.js';

/** The layer annotation naming the predicate URI (literally `predicateType`). */
export const PREDICATE_TYPE_ANNOTATION = 'predicateType';

export interface AttestOptions extends RegistryOptions {
  privateKey: KeyObject;
  /** A predicate URI, or a cosign --type name (slsaprovenance1, spdxjson, …: see statement.ts). */
  predicateType: string;
  predicate: object;
  /** Drop earlier attestations of the same predicate type (cosign attest --replace). */
  replace?: boolean;
  /** More subjects for the statement, after the attested image (e.g. a build's every manifest). */
  extraSubjects?: { name: string; digest: string }[];
  /** `classic` (the `.att` tag), `bundle` (a Sigstore bundle v0.3 referrer, cosign v3) or `both`; default classic. */
  format?: SignatureFormat;
  /** When the bundle says it was made; default now. */
  now?: Date;
  /** A client for the reference's registry (push access) to use and leave open (see SignOptions.client). */
  client?: RegistryClient;
}

export interface AttestResult {
  digest: string;
  /** `sha256-<hex>.att` */
  tag: string;
  /** `registry/repository:sha256-<hex>.att` */
  reference: string;
  predicateType: string;
  /** How many earlier layers `replace` dropped. */
  replaced: number;
  /** With --format bundle|both: the bundle's referrer manifest and how the registry lists it. */
  bundle?: { manifest: string; via: 'api' | 'tag' };
}

export interface VerifyAttestationOptions extends RegistryOptions {
  publicKey: KeyObject;
  /** A predicate URI or a cosign --type name. */
  predicateType: string;
  /**
   * Also return verified statements whose subject names another digest (for `distill rebuild`, which
   * reports such a provenance as being about another image rather than stopping short). Default false.
   */
  anySubject?: boolean;
  /** A client for the reference's registry to use and leave open (see SignOptions.client). */
  client?: RegistryClient;
}

export interface VerifyAttestationResult {
  reference: string;
  digest: string;
  /** Every statement of the predicate type that verified, from its signed bytes. */
  statements: Statement[];
}

export async function attestImage(reference: string, opts: AttestOptions): Promise<AttestResult> {
  const ref = parseReference(reference);
  const uri = predicateTypeUri(opts.predicateType);
  const client = opts.client ?? new RegistryClient(ref.registry, { ...opts, access: 'push' });
  try {
    const image = await resolveImage(client, ref);
    const statement = makeStatement(cosignRepositoryName(ref), image.digest, uri, uri === SLSA_PROVENANCE_V1 ? slsaV1Spelling(opts.predicate) : opts.predicate, opts.extraSubjects ?? []);
    const format = checkFormat(opts.format);
    const tag = attachmentTag(image.digest, 'att');
    const reference = `${ref.registry}/${ref.repository}:${tag}`;
    const bundle = format === 'classic'
      ? undefined
      : await writeBundle(client, ref.repository, { mediaType: image.mediaType, digest: image.digest, size: image.bytes.length }, signBundle(IN_TOTO_PAYLOAD_TYPE, statement, opts.privateKey), uri, {
        created: (opts.now ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        ...(opts.replace !== undefined ? { replace: opts.replace } : {}),
      });
    if (format === 'bundle') return { digest: image.digest, tag, reference, predicateType: uri, replaced: 0, bundle: bundle! };
    const envelope = signEnvelope(IN_TOTO_PAYLOAD_TYPE, statement, opts.privateKey);
    const layer = payloadLayer(DSSE_MEDIA_TYPE, envelope, { [PREDICATE_TYPE_ANNOTATION]: uri, [SIGNATURE_ANNOTATION]: '' });
    const existing = (await readAttachment(client, ref.repository, tag))?.layers ?? [];
    const kept: Descriptor[] = [];
    for (const l of existing) {
      if (opts.replace === true && l.mediaType === DSSE_MEDIA_TYPE && (await predicateTypeOf(client, ref.repository, l)) === uri) continue;
      kept.push(l);
    }
    await writeAttachment(client, ref.repository, tag, [...kept.map((descriptor) => ({ descriptor })), layer]);
    return { digest: image.digest, tag, reference, predicateType: uri, replaced: existing.length - kept.length, ...(bundle ? { bundle } : {}) };
  } finally {
    if (opts.client === undefined) await client.close();
  }
}

export async function verifyAttestation(reference: string, opts: VerifyAttestationOptions): Promise<VerifyAttestationResult> {
  const ref = parseReference(reference);
  const uri = predicateTypeUri(opts.predicateType);
  const client = opts.client ?? new RegistryClient(ref.registry, { ...opts, access: 'pull' });
  try {
    const image = await resolveImage(client, ref);
    const tag = attachmentTag(image.digest, 'att');
    const where = `${ref.registry}/${ref.repository}:${tag}`;
    const att = await readAttachment(client, ref.repository, tag);
    // cosign v3's bundles (OCI referrers) are read too: an image may carry either or both.
    const found = await readBundles(client, ref.repository, image.digest, uri);
    if (att === undefined && found.bundles.length === 0 && found.failures.length === 0) {
      throw new DistillError('ATTESTATION_NONE', `${ref.toString()} (${image.digest}) has no attestations: there is no ${where} and no Sigstore bundle refers to it`, {
        hint: 'attest it (distill attest / cosign attest --key), or check the reference',
      });
    }
    // The annotation is unauthenticated: it only saves downloading layers that say they are another type.
    const candidates = (att?.layers ?? []).filter((l) => l.mediaType === DSSE_MEDIA_TYPE && (l.annotations?.[PREDICATE_TYPE_ANNOTATION] ?? uri) === uri);
    const statements: Statement[] = [];
    const failures: string[] = [...found.failures];
    let cause: unknown;
    const accept = (payloadType: string, payload: Buffer): void => {
      if (payloadType !== IN_TOTO_PAYLOAD_TYPE) throw invalid(`payload type ${JSON.stringify(payloadType.slice(0, 80))}, not ${IN_TOTO_PAYLOAD_TYPE}`);
      const statement = parseStatement(payload);
      if (statement.predicateType !== uri) return;
      if (!opts.anySubject && !statementCovers(statement, image.digest)) throw invalid(`its subject does not name ${image.digest}`);
      statements.push(statement);
    };
    for (const b of found.bundles) {
      try {
        const { payloadType, payload } = verifyBundle(b.bundle, opts.publicKey);
        accept(payloadType, payload);
      } catch (e) {
        if (!isDistillError(e) || !LAYER_FAULTS.has(e.code)) throw e;
        failures.push(`bundle ${b.manifest.slice(0, 19)}…: ${messageOf(e)}`);
        cause ??= e;
      }
    }
    for (const l of candidates) {
      try {
        const envelope = await readPayload(client, ref.repository, l, ATTESTATION_PAYLOAD_CAP);
        const { payloadType, payload } = verifyEnvelope(envelope, opts.publicKey);
        accept(payloadType, payload);
      } catch (e) {
        if (!isDistillError(e) || !LAYER_FAULTS.has(e.code)) throw e;
        failures.push(`${l.digest.slice(0, 19)}…: ${messageOf(e)}`);
        cause ??= e;
      }
    }
    if (statements.length > 0) return { reference: `${ref.registry}/${ref.repository}@${image.digest}`, digest: image.digest, statements };
    if (failures.length > 0) {
      throw new DistillError('ATTESTATION_INVALID', `no ${uri} attestation in ${where} verifies (${failures.length} tried): ${failures.join('; ')}`, {
        cause,
        hint: 'check the public key; an attestation made with another key or altered is not accepted',
      });
    }
    throw new DistillError('ATTESTATION_NONE', `${where} holds no ${uri} attestation`, { hint: `attest it with that predicate type` });
  } finally {
    if (opts.client === undefined) await client.close();
  }
}

const LAYER_FAULTS: ReadonlySet<ErrorCode> = new Set(['ATTESTATION_INVALID', 'REGISTRY_DIGEST_MISMATCH', 'REGISTRY_NOT_FOUND', 'RESPONSE_TOO_LARGE']);

/** A DSSE layer's predicate type for --replace: its annotation, else (as cosign does) from the statement inside. */
async function predicateTypeOf(client: RegistryClient, repository: string, layer: Descriptor): Promise<string | undefined> {
  const annotated = layer.annotations?.[PREDICATE_TYPE_ANNOTATION];
  if (annotated !== undefined) return annotated;
  try {
    const env = decodeEnvelope(await readPayload(client, repository, layer, ATTESTATION_PAYLOAD_CAP));
    return parseStatement(env.payload).predicateType;
  } catch (e) {
    if (isDistillError(e) && LAYER_FAULTS.has(e.code)) return undefined; // unreadable: kept, not ours to judge
    throw e;
  }
}

/** SLSA v1 spells it `invocationId`; cosign rewrites a stray `invocationID` in runDetails.metadata, and so do we. */
function slsaV1Spelling(predicate: object): object {
  const metadata = (predicate as { runDetails?: { metadata?: Record<string, unknown> } }).runDetails?.metadata;
  if (typeof metadata !== 'object' || metadata === null || !Object.hasOwn(metadata, 'invocationID')) return predicate;
  const { invocationID, ...rest } = metadata;
  const p = predicate as { runDetails: Record<string, unknown> };
  return { ...p, runDetails: { ...p.runDetails, metadata: { ...rest, invocationId: invocationID } } };
}

function invalid(message: string): DistillError {
  return new DistillError('ATTESTATION_INVALID', message);
}
