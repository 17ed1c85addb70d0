// src/definition/image.schema.json, the file editors and users validate image.yaml with, read by an
// implementation that is not distill's: ajv (draft 2020-12, strict mode) checks it against JSON
// Schema's 2020-12 meta-schema, every committed images/*/image.yaml validates against it, and ajv and
// distill's own subset validator (src/definition/schema.ts) agree on valid and broken definitions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { validate as distillValidate, type Schema } from '../../src/definition/schema.js';
import { repoRoot } from '../helpers/paths.js';
import { draft2020 } from './validators.js';

const schemaFile = join(repoRoot, 'src', 'definition', 'image.schema.json');
const schema = JSON.parse(readFileSync(schemaFile, 'utf8')) as Record<string, unknown>;
const images = readdirSync(join(repoRoot, 'images')).sort();

test('image.schema.json is a valid draft 2020-12 JSON Schema (meta-schema, ajv strict mode)', () => {
  assert.equal(schema['$schema'], 'https://json-schema.org/draft/2020-12/schema');
  const ajv = draft2020();
  assert.equal(ajv.validateSchema(schema), true, JSON.stringify(ajv.errors));
  // strict mode also refuses unknown keywords and ambiguous types when compiling.
  assert.doesNotThrow(() => ajv.compile(schema));
  // A broken copy fails the meta-schema: a keyword with a value of the wrong type.
  assert.equal(ajv.validateSchema({ ...schema, required: 'name' }), false);
  assert.equal(ajv.validateSchema({ ...schema, properties: { name: { type: 'text' } } }), false);
});

test('every images/*/image.yaml validates against image.schema.json (ajv)', () => {
  const check = draft2020().getSchema(String(schema['$id'])) ?? draft2020().compile(schema);
  assert.ok(images.length >= 7, images.join(','));
  for (const name of images) {
    const doc = parse(readFileSync(join(repoRoot, 'images', name, 'image.yaml'), 'utf8')) as unknown;
    assert.equal(check(doc), true, `${name}: ${JSON.stringify(check.errors)}`);
    assert.deepEqual(distillValidate(schema as Schema, doc), [], name);
  }
});

test("ajv and distill's own validator agree on broken definitions", () => {
  const check = draft2020().getSchema(String(schema['$id'])) ?? draft2020().compile(schema);
  const base = parse(readFileSync(join(repoRoot, 'images', 'python3', 'image.yaml'), 'utf8')) as Record<string, unknown>;
  const cases: [string, unknown][] = [
    ['as committed', base],
    ['not an object', ['python3']],
    ['unknown top-level key', { ...base, pakages: ['x'] }],
    ['description of the wrong type', { ...base, description: 3 }],
    ['packages not a list', { ...base, packages: 'libc6' }],
    ['an empty package name', { ...base, packages: [''] }],
    ['a package name with a space', { ...base, packages: ['lib c6'] }],
    ['duplicate packages', { ...base, packages: ['libc6', 'libc6'] }],
  ];
  let rejected = 0;
  for (const [what, doc] of cases) {
    const ajvOk = check(doc) === true;
    const distillOk = distillValidate(schema as Schema, doc).length === 0;
    assert.equal(distillOk, ajvOk, `${what}: ajv ${ajvOk ? 'accepts' : `rejects (${JSON.stringify(check.errors)})`}, distill ${distillOk ? 'accepts' : 'rejects'}`);
    if (!ajvOk) rejected++;
  }
  assert.ok(rejected >= 4, `the broken cases are rejected (${rejected})`);
});
