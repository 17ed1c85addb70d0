// `cosign sign --key` in the classic tag scheme (shared/docs/formats.md b): resolve the reference to a
// digest, sign the simple-signing payload for that digest, and append it as one layer to the image's
// `sha256-<hex>.sig` manifest. With `recursive`, an index and every manifest it lists (depth-first)
// are each signed under their own `.sig` tag, as `cosign sign --recursive`.
//
// Re-signing does not pile up layers: like cosign's duplicate detector, a layer with the same payload
// blob whose signature verifies with our key already says what we would say, so nothing is written.
// (ECDSA signatures are randomised: the new signature never equals the old one byte for byte.)
import type { KeyObject } from 'node:crypto';
import { DistillError } from '../errors.js';
import { RegistryClient, type RegistryOptions } from '../registry/client.js';
import { parseReference } from '../registry/reference.js';
import { SIGNATURE_ANNOTATION, indexChildren, isIndex, payloadLayer, readAttachment, resolveImage, writeAttachment } from './signature-store.js';
import { base64Std, decodeStdBase64, publicKeyOf, signBytes, verifyBytes } from './signer.js';
import { SIMPLE_SIGNING_MEDIA_TYPE, simpleSigningPayload } from './simple-signing.js';
import { attachmentTag, cosignRepositoryName } from './triangulate.js';
import { COSIGN_SIGN_PREDICATE, signBundle } from './bundle.js';
import { writeBundle } from './bundle-store.js';
import { makeStatement } from '../provenance/statement.js';
import type { Descriptor } from '../oci/descriptor.js';

const IN_TOTO = 'application/vnd.in-toto+json';

/** RFC 3339, seconds. */
function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface SignOptions extends RegistryOptions {
  privateKey: KeyObject;
  /** cosign's `-a key=value`: written into the payload's `optional`. */
  annotations?: Record<string, string>;
  /** cosign's `--sign-container-identity`: the docker-reference to claim (default: the repository, no tag). */
  identity?: string;
  /** For an index: sign the index and every manifest it lists. */
  recursive?: boolean;
  /**
   * Where signatures go: `classic` (the `.sig` tag: cosign v2, containers/image, Kyverno, policy-controller),
   * `bundle` (a Sigstore bundle v0.3 OCI referrer: cosign v3), or `both`. Default classic.
   */
  format?: SignatureFormat;
  /** When the bundle says it was made (org.opencontainers.image.created); default now. */
  now?: Date;
  /**
   * A client for the reference's registry (push access) to use and leave open: a command that signs
   * and attests several digests pings and authenticates once, not once per operation.
   */
  client?: RegistryClient;
}

export type SignatureFormat = 'classic' | 'bundle' | 'both';

export function checkFormat(format: string | undefined): SignatureFormat {
  if (format === undefined) return 'classic';
  if (format !== 'classic' && format !== 'bundle' && format !== 'both') {
    throw new DistillError('USAGE', `--format ${JSON.stringify(format)}: not classic, bundle or both`, { hint: 'classic (.sig/.att tags), bundle (Sigstore bundle referrers, cosign v3) or both' });
  }
  return format;
}

export interface SignedManifest {
  /** The manifest digest that was signed. */
  digest: string;
  /** Its signature tag, `sha256-<hex>.sig`. */
  tag: string;
  /** `registry/repository:sha256-<hex>.sig` */
  reference: string;
  /** False when an equivalent signature by this key was already there (nothing written). */
  added: boolean;
  /** With --format bundle|both: the bundle's referrer manifest and how the registry lists it. */
  bundle?: { manifest: string; via: 'api' | 'tag' };
}

/** Nested indexes deeper than this are not an image. */
const DEPTH_MAX = 4;

export async function signImage(reference: string, opts: SignOptions): Promise<SignedManifest[]> {
  const ref = parseReference(reference);
  const publicKey = publicKeyOf(opts.privateKey);
  const identity = opts.identity ?? cosignRepositoryName(ref);
  const client = opts.client ?? new RegistryClient(ref.registry, { ...opts, access: 'push' });
  try {
    const root = await resolveImage(client, ref);
    const format = checkFormat(opts.format);
    const targets: string[] = [root.digest];
    const descriptors = new Map<string, Descriptor>([[root.digest, { mediaType: root.mediaType, digest: root.digest, size: root.bytes.length }]]);
    if (opts.recursive === true && isIndex(root.mediaType)) {
      const walk = async (bytes: Buffer, what: string, depth: number): Promise<void> => {
        if (depth > DEPTH_MAX) throw new DistillError('REGISTRY_PROTOCOL', `${what}: indexes nested deeper than ${DEPTH_MAX}`);
        for (const child of indexChildren(bytes, what)) {
          if (targets.includes(child.digest)) continue;
          targets.push(child.digest);
          descriptors.set(child.digest, child);
          if (isIndex(child.mediaType)) {
            const m = await client.getManifest(ref.repository, child.digest);
            await walk(m.bytes, `index ${child.digest}`, depth + 1);
          }
        }
      };
      await walk(root.bytes, `index ${root.digest}`, 1);
    }
    const out: SignedManifest[] = [];
    for (const digest of targets) {
      const tag = attachmentTag(digest, 'sig');
      const reference = `${ref.registry}/${ref.repository}:${tag}`;
      // cosign v3's image signature: an in-toto statement about the digest, in a DSSE bundle.
      const bundle = format === 'classic'
        ? undefined
        : await writeBundle(
          client,
          ref.repository,
          descriptors.get(digest)!,
          signBundle(IN_TOTO, makeStatement(identity, digest, COSIGN_SIGN_PREDICATE, {}), opts.privateKey),
          COSIGN_SIGN_PREDICATE,
          { created: rfc3339(opts.now ?? new Date()) },
        );
      if (format === 'bundle') {
        out.push({ digest, tag, reference, added: true, bundle: bundle! });
        continue;
      }
      const payload = simpleSigningPayload(identity, digest, opts.annotations);
      const signature = base64Std(signBytes(opts.privateKey, payload));
      const layer = payloadLayer(SIMPLE_SIGNING_MEDIA_TYPE, payload, { [SIGNATURE_ANNOTATION]: signature });
      const existing = await readAttachment(client, ref.repository, tag);
      const layers = existing?.layers ?? [];
      const duplicate = layers.some((l) => {
        if (l.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE || l.digest !== layer.descriptor.digest || l.size !== layer.descriptor.size) return false;
        // Same blob, so its bytes are `payload`: does the signature already there verify with our key?
        const sig = decodeStdBase64(l.annotations?.[SIGNATURE_ANNOTATION] ?? '');
        return sig !== undefined && verifyBytes(publicKey, payload, sig);
      });
      if (!duplicate) {
        await writeAttachment(client, ref.repository, tag, [...layers.map((descriptor) => ({ descriptor })), layer]);
      }
      out.push({ digest, tag, reference, added: !duplicate, ...(bundle ? { bundle } : {}) });
    }
    return out;
  } finally {
    if (opts.client === undefined) await client.close();
  }
}
