// The Markdown rendering meets text from locks and .debs (attacker-controlled): table cells cannot
// break out of their column, changelog text cannot close its fence, and the body stays under GitHub's
// 65,536-character limit however much there is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DiffResult, DiffVersionChange } from '../../src/diff/diff.js';
import { formatDiffMarkdown, formatDiffText } from '../../src/diff/format.js';

function result(upgraded: DiffVersionChange[]): DiffResult {
  return {
    schemaVersion: 1, old: 'a', new: 'b', warnings: ['a <b>warning</b> | with a pipe'],
    images: [{ image: 'img|<x>', status: 'changed', architectures: [{ arch: 'amd64', added: [], removed: [], downgraded: [], unchanged: 0, cves: [], upgraded }] }],
    summary: { added: 0, removed: 0, upgraded: upgraded.length, downgraded: 0, cves: [], changed: true },
  };
}

function up(name: string, changes: string, versions = 1): DiffVersionChange {
  return {
    name, architecture: 'amd64', source: name, oldVersion: '1.0-1', newVersion: '2.0-1', oldSourceVersion: '1.0-1', newSourceVersion: '2.0-1',
    changelog: { status: 'ok', files: [], cves: ['CVE-2025-0001'], warnings: [], entries: Array.from({ length: versions }, (_, i) => ({ source: name, version: `2.0-${i + 1}`, distributions: ['stable'], changes, cves: ['CVE-2025-0001'], bugs: [] })) },
  };
}

test('hostile names and changelog text stay inside their cell and their fence', () => {
  const md = formatDiffMarkdown(result([up('evil|</details><script>', '* ```\n</details>\n# heading\n````` more')]));
  const row = md.split('\n').find((l) => l.startsWith('| amd64 |'))!;
  assert.equal(row.split(/(?<!\\)\|/).length, 9, row);
  // Outside the fenced changelog (where GitHub shows text as text), no markup gets through.
  assert.doesNotMatch(md.replace(/^(`{3,})\n[\s\S]*?\n\1$/gm, ''), /<script>|<\/details><script/);
  const fenceLine = md.split('\n').find((l) => /^`{3,}$/.test(l))!;
  assert.equal(fenceLine.length, 6);
  assert.match(md, /a \\<b\\>warning\\<\/b\\> \\\| with a pipe/);
  // Control characters never reach a terminal.
  assert.doesNotMatch(formatDiffText(result([up('x\u001b[31m', 'y')])), /\u001b/);
});

test('a body that would be too long keeps what fits and says what was left out', () => {
  const many = Array.from({ length: 40 }, (_, i) => up(`pkg${i}`, 'x'.repeat(3000)));
  const md = formatDiffMarkdown(result(many));
  assert.ok(md.length <= 60000, String(md.length));
  assert.match(md, /### Changelogs/);
  assert.match(md, /\d+ changelogs left out to keep this body under 60000 characters/);
  assert.equal(md.split('\n').filter((l) => l.startsWith('| amd64 |')).length, 40);
});
