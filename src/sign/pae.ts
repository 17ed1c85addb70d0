// DSSE's pre-authentication encoding and its base64 reading rules (secure-systems-lab/dsse protocol.md,
// envelope.md), shared by DSSE envelopes (attest/) and Sigstore bundles (sign/bundle.ts).

/** PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body; lengths are decimal byte counts. */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'ascii'),
    type,
    Buffer.from(` ${payload.length} `, 'ascii'),
    payload,
  ]);
}

const ANY_BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Standard or URL-safe base64, padded or not (the DSSE spec: readers accept both). */
export function decodeAnyBase64(s: string): Buffer | undefined {
  if (!ANY_BASE64.test(s)) return undefined;
  const bare = s.replace(/=+$/, '');
  if (bare.length % 4 === 1) return undefined;
  if (s.length !== bare.length && s.length % 4 !== 0) return undefined;
  return Buffer.from(bare.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

