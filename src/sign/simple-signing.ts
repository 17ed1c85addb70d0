// The "simple signing" payload cosign signs (sigstore/sigstore payload.Cosign; shared/docs/formats.md b),
// written exactly as cosign's Go json.Marshal emits it — compact, no trailing newline, keys
// critical{identity{docker-reference}, image{docker-manifest-digest}, type}, optional — and read as
// strictly as containers/image reads it (signature/internal/sigstore_payload.go): exactly the keys
// critical/optional at the top (optional may be null, never missing), critical exactly
// identity/image/type, image and identity exactly their one key, no duplicate key anywhere, type
// "cosign container image signature", optional.creator a string and optional.timestamp an integer when
// present. cosign's own parser is lenient; this one is the bar that skopeo and podman set.
import { DistillError } from '../errors.js';
import { goJson, goMap } from '../oci/descriptor.js';

export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export interface SimpleSigningPayload {
  /** critical.identity.docker-reference */
  dockerReference: string;
  /** critical.image.docker-manifest-digest */
  manifestDigest: string;
  /** The optional object (user annotations, creator, timestamp), or null. */
  optional: Record<string, unknown> | null;
}

/**
 * The payload bytes for an image digest. `annotations` (cosign's `-a key=value`) become `optional`,
 * keys sorted as Go sorts map keys; none gives `"optional":null`, as cosign writes.
 */
export function simpleSigningPayload(dockerReference: string, manifestDigest: string, annotations?: Record<string, string>): Buffer {
  if (typeof dockerReference !== 'string' || dockerReference === '') throw invalidInput('the docker-reference is empty');
  if (!/^sha256:[0-9a-f]{64}$/.test(manifestDigest)) throw invalidInput(`${JSON.stringify(manifestDigest)} is not a sha256 digest`);
  const optional = goMap(annotations, 'signature annotations') ?? null;
  for (const s of [dockerReference, ...Object.entries(optional ?? {}).flat()]) {
    // Go writes U+FFFD for a lone surrogate where JSON.stringify writes an escape: refuse rather than differ.
    if (LONE_SURROGATE.test(s)) throw invalidInput(`${JSON.stringify(s)} is not well-formed Unicode`);
  }
  return Buffer.from(
    goJson({
      critical: {
        identity: { 'docker-reference': dockerReference },
        image: { 'docker-manifest-digest': manifestDigest },
        type: COSIGN_SIGNATURE_TYPE,
      },
      optional,
    }),
    'utf8',
  );
}

/** Parse payload bytes (untrusted, though already signature-checked) the way containers/image does. */
export function parseSimpleSigningPayload(bytes: Buffer): SimpleSigningPayload {
  const text = bytes.toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw bad(`the payload is not JSON`, e);
  }
  assertNoDuplicateKeys(text);
  const top = exactObject(doc, ['critical', 'optional'], 'the payload');
  const critical = exactObject(top['critical'], ['identity', 'image', 'type'], 'critical');
  if (critical['type'] !== COSIGN_SIGNATURE_TYPE) throw bad(`critical.type is ${JSON.stringify(critical['type'])}, not ${JSON.stringify(COSIGN_SIGNATURE_TYPE)}`);
  const image = exactObject(critical['image'], ['docker-manifest-digest'], 'critical.image');
  const identity = exactObject(critical['identity'], ['docker-reference'], 'critical.identity');
  const manifestDigest = image['docker-manifest-digest'];
  const dockerReference = identity['docker-reference'];
  if (typeof manifestDigest !== 'string' || !/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(manifestDigest)) {
    throw bad(`critical.image.docker-manifest-digest ${JSON.stringify(manifestDigest)} is not a digest`);
  }
  if (typeof dockerReference !== 'string') throw bad('critical.identity.docker-reference is not a string');
  const opt = top['optional'];
  if (opt !== null) {
    if (typeof opt !== 'object' || Array.isArray(opt)) throw bad('optional is neither an object nor null');
    const o = opt as Record<string, unknown>;
    if (Object.hasOwn(o, 'creator') && typeof o['creator'] !== 'string') throw bad('optional.creator is not a string');
    if (Object.hasOwn(o, 'timestamp') && !Number.isInteger(o['timestamp'])) throw bad('optional.timestamp is not an integer');
  }
  return { dockerReference, manifestDigest, optional: opt as Record<string, unknown> | null };
}

/**
 * Throws when any object in `text` (valid JSON) repeats a key. JSON.parse keeps the last of two
 * duplicates silently, and verifiers that disagree on which one counts are how signed payloads get
 * reinterpreted; containers/image refuses them, and so do we. Keys compare after unescaping.
 */
export function assertNoDuplicateKeys(text: string): void {
  // One frame per open object or array; `keys` is set for objects, `expectKey` after '{' and ','.
  const stack: { keys?: Set<string>; expectKey: boolean }[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.keys !== undefined && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) throw bad(`the key ${JSON.stringify(key)} appears twice in one object`);
        top.keys.add(key);
        top.expectKey = false;
      }
      i = j;
    } else if (c === '{') stack.push({ keys: new Set(), expectKey: true });
    else if (c === '[') stack.push({ expectKey: false });
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top?.keys !== undefined) top.expectKey = true;
    }
  }
}

function exactObject(v: unknown, keys: string[], what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${what} is not an object`);
  const o = v as Record<string, unknown>;
  const have = Object.keys(o);
  const missing = keys.filter((k) => !Object.hasOwn(o, k));
  const extra = have.filter((k) => !keys.includes(k));
  if (missing.length > 0) throw bad(`${what} lacks ${missing.map((k) => JSON.stringify(k)).join(', ')}`);
  if (extra.length > 0) throw bad(`${what} has unexpected keys ${extra.map((k) => JSON.stringify(k.slice(0, 50))).join(', ')}`);
  return o;
}

function bad(message: string, cause?: unknown): DistillError {
  return new DistillError('SIGNATURE_INVALID', `invalid signature payload: ${message}`, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'the signature was not made by cosign or distill, or its payload was altered',
  });
}

function invalidInput(message: string): DistillError {
  return new DistillError('USAGE', `cannot make a signature payload: ${message}`);
}
