// Validation against published schemas, with the schema files as npm packages ship them (dev
// dependencies; nothing fetched at test time): CycloneDX 1.6 JSON from @cyclonedx/cyclonedx-library
// (with the SPDX licence-id and JSF schemas it references), checked by ajv; SPDX license expressions by
// spdx-expression-parse (the SPDX licence and exception lists of spdx-license-ids / spdx-exceptions).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';

const require = createRequire(import.meta.url);
const schemaDir = join(dirname(require.resolve('@cyclonedx/cyclonedx-library/package.json')), 'res', 'schema');
const load = (file: string): Record<string, unknown> => JSON.parse(readFileSync(join(schemaDir, file), 'utf8')) as Record<string, unknown>;

let cdx16: ValidateFunction | undefined;

/** The problems ajv finds in `bom` against the official CycloneDX 1.6 JSON schema; [] when valid. */
export function cyclonedx16Problems(bom: unknown): string[] {
  if (cdx16 === undefined) {
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
    (addFormatsModule as unknown as (a: Ajv) => void)(ajv);
    // Formats ajv-formats does not know (IRIs, internationalised e-mail): accepted, as ajv would
    // otherwise ignore them with a warning per use.
    ajv.addFormat('iri-reference', true);
    ajv.addFormat('idn-email', true);
    // bom-1.6 refers to its sibling schemas by their file names: register them under those.
    const base = 'http://cyclonedx.org/schema/';
    ajv.addSchema({ ...load('spdx.SNAPSHOT.schema.json'), $id: `${base}spdx.SNAPSHOT.schema.json` });
    ajv.addSchema({ ...load('jsf-0.82.SNAPSHOT.schema.json'), $id: `${base}jsf-0.82.SNAPSHOT.schema.json` });
    cdx16 = ajv.compile(load('bom-1.6.SNAPSHOT.schema.json'));
  }
  if (cdx16(bom)) return [];
  return (cdx16.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}

const parseExpression = require('spdx-expression-parse') as (s: string) => unknown;

/** Whether `expression` is a valid SPDX license expression (ids and exceptions from the SPDX lists). */
export function spdxExpressionProblem(expression: string): string | undefined {
  try {
    parseExpression(expression);
    return undefined;
  } catch (e) {
    return `${expression}: ${(e as Error).message}`;
  }
}
