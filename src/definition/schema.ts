// A validator for the subset of JSON Schema (2020-12) that image.schema.json uses: type, properties,
// required, additionalProperties (false or a schema), propertyNames.pattern, items, minItems,
// uniqueItems, minLength, pattern. The shipped schema file is the single source of the rules; editors
// can use the same file. Unknown keywords in the schema are a programming error, caught by a test.
import { didYouMean } from '../util/suggest.js';

export interface Schema {
  type?: 'object' | 'array' | 'string' | 'boolean' | 'integer' | 'number';
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  propertyNames?: { pattern: string };
  items?: Schema;
  minItems?: number;
  uniqueItems?: boolean;
  minLength?: number;
  pattern?: string;
  enum?: (string | number | boolean)[];
  description?: string;
  title?: string;
  $schema?: string;
  $id?: string;
}

export const SUPPORTED_KEYWORDS = new Set([
  'type', 'properties', 'required', 'additionalProperties', 'propertyNames', 'items', 'minItems',
  'uniqueItems', 'minLength', 'pattern', 'enum', 'description', 'title', '$schema', '$id',
]);

export interface SchemaIssue {
  /** Path of keys and indexes to the offending value (or its parent, for a missing field). */
  path: (string | number)[];
  /** True when `path` names a key that should not be there (so the key's own line is reported). */
  atKey: boolean;
  message: string;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

export function validate(schema: Schema, value: unknown, path: (string | number)[] = []): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  const t = typeOf(value);
  if (schema.type !== undefined) {
    const ok = schema.type === t || (schema.type === 'number' && t === 'integer');
    if (!ok) {
      issues.push({ path, atKey: false, message: `expected ${article(schema.type)}, got ${article(t)}` });
      return issues;
    }
  }
  if (schema.enum !== undefined && !schema.enum.includes(value as string)) {
    issues.push({ path, atKey: false, message: `${JSON.stringify(value)} is not one of ${schema.enum.map((x) => JSON.stringify(x)).join(', ')}` });
  }
  if (t === 'string') {
    const s = value as string;
    if (schema.minLength !== undefined && s.length < schema.minLength) issues.push({ path, atKey: false, message: 'must not be empty' });
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(s)) {
      issues.push({ path, atKey: false, message: `${JSON.stringify(s)} does not match ${schema.pattern}` });
    }
  }
  if (t === 'array') {
    const a = value as unknown[];
    if (schema.minItems !== undefined && a.length < schema.minItems) issues.push({ path, atKey: false, message: `needs at least ${schema.minItems} item(s)` });
    if (schema.uniqueItems) {
      const seen = new Set<string>();
      a.forEach((x, i) => {
        const k = JSON.stringify(x);
        if (seen.has(k)) issues.push({ path: [...path, i], atKey: false, message: `duplicate item ${k}` });
        seen.add(k);
      });
    }
    if (schema.items !== undefined) a.forEach((x, i) => issues.push(...validate(schema.items!, x, [...path, i])));
  }
  if (t === 'object') {
    const o = value as Record<string, unknown>;
    for (const r of schema.required ?? []) {
      if (!(r in o)) issues.push({ path, atKey: false, message: `missing required field "${r}"` });
    }
    const props = schema.properties ?? {};
    for (const [k, v] of Object.entries(o)) {
      if (schema.propertyNames && !new RegExp(schema.propertyNames.pattern, 'u').test(k)) {
        issues.push({ path: [...path, k], atKey: true, message: `name ${JSON.stringify(k)} does not match ${schema.propertyNames.pattern}` });
      }
      const p = props[k];
      if (p !== undefined) issues.push(...validate(p, v, [...path, k]));
      else if (schema.additionalProperties === false) {
        issues.push({ path: [...path, k], atKey: true, message: `unknown field "${k}"${didYouMean(k, Object.keys(props))}` });
      } else if (typeof schema.additionalProperties === 'object') {
        issues.push(...validate(schema.additionalProperties, v, [...path, k]));
      }
    }
  }
  return issues;
}

function article(t: string): string {
  return /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

/** Every keyword used anywhere in `schema` that this validator does not implement. */
export function unsupportedKeywords(schema: unknown, path = '$'): string[] {
  if (schema === null || typeof schema !== 'object') return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(schema as Record<string, unknown>)) {
    if (!SUPPORTED_KEYWORDS.has(k)) out.push(`${path}.${k}`);
    if (k === 'properties' && v && typeof v === 'object') {
      for (const [pk, pv] of Object.entries(v)) out.push(...unsupportedKeywords(pv, `${path}.properties.${pk}`));
    } else if ((k === 'items' || k === 'additionalProperties') && typeof v === 'object') {
      out.push(...unsupportedKeywords(v, `${path}.${k}`));
    }
  }
  return out;
}
