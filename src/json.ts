// Canonical JSON for anything hashed, signed or committed: object keys sorted by UTF-16 code units
// (as RFC 8785 JCS for the ASCII keys we write), no insignificant whitespace, arrays in their given
// order. `prettyStableJson` is the same ordering, indented, with a trailing newline, for files people
// read and diff (lockfiles).

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function normalise(value: unknown, path: string): Json {
  if (value === null) return null;
  switch (typeof value) {
    case 'boolean':
    case 'string':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: non-finite number at ${path}`);
      return value;
    case 'object': {
      if (Array.isArray(value)) return value.map((v, i) => normalise(v, `${path}[${i}]`));
      const out: { [k: string]: Json } = {};
      for (const k of Object.keys(value as object).sort()) {
        const v = (value as Record<string, unknown>)[k];
        if (v === undefined) continue;
        out[k] = normalise(v, `${path}.${k}`);
      }
      return out;
    }
    default:
      throw new TypeError(`canonical JSON: cannot encode ${typeof value} at ${path}`);
  }
}

export function canonicalJson(value: unknown): string {
  return JSON.stringify(normalise(value, '$'));
}

export function prettyStableJson(value: unknown): string {
  return JSON.stringify(normalise(value, '$'), null, 2) + '\n';
}

/** Parse bytes that must hold one JSON object; `fail` makes the caller's own error (code, wording). */
export function parseJsonObject(bytes: Buffer, fail: (message: string, cause?: unknown) => Error): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw fail('not JSON', e);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw fail('not a JSON object');
  return doc as Record<string, unknown>;
}
