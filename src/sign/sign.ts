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

export interface SignOptions extends RegistryOptions {
  privateKey: KeyObject;
  /** cosign's `-a key=value`: written into the payload's `optional`. */
  annotations?: Record<string, string>;
  /** cosign's `--sign-container-identity`: the docker-reference to claim (default: the repository, no tag). */
  identity?: string;
  /** For an index: sign the index and every manifest it lists. */
  recursive?: boolean;
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
}

/** Nested indexes deeper than this are not an image. */
const DEPTH_MAX = 4;

export async function signImage(reference: string, opts: SignOptions): Promise<SignedManifest[]> {
  const ref = parseReference(reference);
  const publicKey = publicKeyOf(opts.privateKey);
  const identity = opts.identity ?? cosignRepositoryName(ref);
  const client = new RegistryClient(ref.registry, { ...opts, access: 'push' });
  try {
    const root = await resolveImage(client, ref);
    const targets: string[] = [root.digest];
    if (opts.recursive === true && isIndex(root.mediaType)) {
      const walk = async (bytes: Buffer, what: string, depth: number): Promise<void> => {
        if (depth > DEPTH_MAX) throw new DistillError('REGISTRY_PROTOCOL', `${what}: indexes nested deeper than ${DEPTH_MAX}`);
        for (const child of indexChildren(bytes, what)) {
          if (targets.includes(child.digest)) continue;
          targets.push(child.digest);
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
      const payload = simpleSigningPayload(identity, digest, opts.annotations);
      const signature = base64Std(signBytes(opts.privateKey, payload));
      const layer = payloadLayer(SIMPLE_SIGNING_MEDIA_TYPE, payload, { [SIGNATURE_ANNOTATION]: signature });
      const tag = attachmentTag(digest, 'sig');
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
      out.push({ digest, tag, reference: `${ref.registry}/${ref.repository}:${tag}`, added: !duplicate });
    }
    return out;
  } finally {
    await client.close();
  }
}
