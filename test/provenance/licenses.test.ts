// DEP-5 copyright files to SPDX license expressions: Debian's short names, '+' and '~variant', and/or/
// comma precedence, exceptions, LicenseRefs with their texts, and the files that say nothing certain.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { declaredLicense, SPDX_IDS, spdxIdFor, unifyExtracted } from '../../src/provenance/licenses.js';
import { spdxExpressionProblem } from '../helpers/schemas.js';

const HEADER = 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n';
const files = (...licenses: string[]): string => HEADER + licenses.map((l, i) => `Files: f${i}/*\nCopyright: someone\nLicense: ${l}\n`).join('\n');

test('Debian short names become SPDX identifiers', () => {
  const cases: [string, string | undefined][] = [
    ['GPL-2+', 'GPL-2.0-or-later'], ['GPL-2', 'GPL-2.0-only'], ['GPL-3+', 'GPL-3.0-or-later'], ['LGPL-2.1+', 'LGPL-2.1-or-later'],
    ['LGPL-2.1', 'LGPL-2.1-only'], ['LGPL', 'LGPL-2.0-or-later'], ['GPL', 'GPL-1.0-or-later'], ['Expat', 'MIT'], ['BSD-3-clause', 'BSD-3-Clause'],
    ['BSD-3-clause~Google', 'BSD-3-Clause'], ['zlib', 'Zlib'], ['CC0', 'CC0-1.0'], ['Apache-2.0', 'Apache-2.0'], ['FSFAP', 'FSFAP'],
    ['Artistic', 'Artistic-1.0-Perl'], ['public-domain', undefined], ['BSD-3-clause-Berkeley', undefined],
  ];
  for (const [debian, spdx] of cases) assert.equal(spdxIdFor(debian), spdx, debian);
});

test('every identifier distill writes is on the SPDX License List, spelled as it is there', () => {
  const ids = new Set(createRequire(import.meta.url)('spdx-license-ids') as string[]);
  assert.deepEqual(SPDX_IDS.filter((id) => !ids.has(id)), []);
  assert.equal(spdxIdFor('Ms-PL'), 'MS-PL', 'looked up case-insensitively, written canonically');
  for (const e of ['GPL-3+ with Bison exception', 'GPL-3+ with autoconf exception', 'GPL-2+ with Libtool exception', 'GPL2 with Classpath exception', 'GPL-2+ with Font exception', 'Apache-2.0 with LLVM exception', 'GPL-2 with Linux-syscall-note exception']) {
    const d = declaredLicense(files(e))!;
    assert.equal(spdxExpressionProblem(d.expression), undefined, `${e} → ${d.expression}`);
    assert.doesNotMatch(d.expression, /LicenseRef/, e);
  }
});

test('expressions: and/or, commas, exceptions, conjunction of the Files paragraphs', () => {
  assert.deepEqual(declaredLicense(files('GPL-2+')), { expression: 'GPL-2.0-or-later', extracted: [] });
  assert.equal(declaredLicense(files('GPL-2+', 'Expat', 'GPL-2+'))!.expression, 'GPL-2.0-or-later AND MIT');
  assert.equal(declaredLicense(files('BSD-3-clause or GPL-2'))!.expression, 'BSD-3-Clause OR GPL-2.0-only');
  assert.equal(declaredLicense(files('GPL-2+ or Artistic, and BSD-3-clause'))!.expression, '(GPL-2.0-or-later OR Artistic-1.0-Perl) AND BSD-3-Clause');
  assert.equal(declaredLicense(files('LGPL-2.1+ and GPL-2', 'Expat or Apache-2.0'))!.expression, '(LGPL-2.1-or-later AND GPL-2.0-only) AND (MIT OR Apache-2.0)');
  assert.equal(declaredLicense(files('GPL-3+ with Bison exception'))!.expression, 'GPL-3.0-or-later WITH Bison-exception-2.2');
  assert.equal(declaredLicense(files('GPL-3+ with autoconf exception'))!.expression, 'GPL-3.0-or-later WITH Autoconf-exception-3.0');
  assert.equal(declaredLicense(files('GPL2 with Classpath exception'))!.expression, 'GPL-2.0-only WITH Classpath-exception-2.0');
  const odd = declaredLicense(files('GPL-2+ with OpenSSL exception'))!;
  assert.equal(odd.expression, 'LicenseRef-GPL-2-or-later-with-OpenSSL-exception');
});

test('names without an SPDX identifier: LicenseRefs with the stand-alone paragraph\'s text', () => {
  const text = `${files('public-domain', 'Expat')}\nLicense: public-domain\n This work is in the public domain.\n .\n No rights reserved.\n`;
  const d = declaredLicense(text)!;
  assert.equal(d.expression, 'LicenseRef-public-domain AND MIT');
  assert.deepEqual(d.extracted, [{ licenseId: 'LicenseRef-public-domain', name: 'public-domain', extractedText: 'This work is in the public domain.\n\nNo rights reserved.' }]);
  // The same name with two texts in one document: two ids.
  const a = declaredLicense(`${files('custom')}\nLicense: custom\n Text A.\n`)!;
  const b = declaredLicense(`${files('custom')}\nLicense: custom\n Text B.\n`)!;
  const { rename, infos } = unifyExtracted([a.extracted, b.extracted]);
  assert.notEqual(rename(a.extracted[0]!), rename(b.extracted[0]!));
  assert.equal(infos.length, 2);
  const same = unifyExtracted([a.extracted, a.extracted]);
  assert.equal(same.rename(a.extracted[0]!), 'LicenseRef-custom');
});

test('what cannot be determined: free-text files, a Files paragraph without a licence, garbage', () => {
  assert.equal(declaredLicense('This is the Debian prepackaged version of gcc.\n\nLicense: GPL\n'), undefined);
  assert.equal(declaredLicense(`${HEADER}Files: *\nCopyright: x\n`), undefined);
  assert.equal(declaredLicense(`${HEADER}Files: *\nCopyright: x\nLicense:\n Different licences apply.\n`), undefined);
  assert.equal(declaredLicense(HEADER), undefined);
  assert.equal(declaredLicense('\u0000\u0001 not deb822 at all: \n:::\n'), undefined);
  // Hostile names never leave the LicenseRef character set.
  const evil = declaredLicense(files('x"); DROP (TABLE) <script>'))!;
  assert.match(evil.expression, /^LicenseRef-[A-Za-z0-9.-]+$/);
});
