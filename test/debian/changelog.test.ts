// Reading a range of Debian changelog entries (deb-changelog(5)): the entries between two versions in
// dpkg order, their CVEs and closed bugs, and hostile text (huge, malformed, not UTF-8) degrading into
// warnings and an incomplete result, never an exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChangelogRangeReader, changelogRange, cvesIn } from '../../src/debian/changelog.js';

function entry(src: string, version: string, lines: string[], dist = 'unstable', urgency = 'medium'): string {
  return `${src} (${version}) ${dist}; urgency=${urgency}\n\n${lines.map((l) => `  ${l}`).join('\n')}\n\n -- Jane Maintainer <jane@example.invalid>  Sun, 08 Jun 2025 00:34:24 +0300\n\n`;
}

const LOG =
  entry('foo', '1:2.0-1', ['* New upstream release.', '* Fix CVE-2025-1234 and cve-2025-99999.', '  (Closes: #1001, #1002)']) +
  entry('foo', '1.5-2', ['* Security: CVE-2024-0001 (Closes: bug#900)']) +
  entry('foo', '1.5-1', ['* Nothing security-related.']) +
  entry('foo', '1.4-1', ['* CVE-2023-0002, which the old version already had.']);

test('entries strictly newer than the old version, up to the new one, newest first, in dpkg order', () => {
  const r = changelogRange(LOG, '1.5-1', '1:2.0-1');
  assert.deepEqual(r.entries.map((e) => e.version), ['1:2.0-1', '1.5-2']);
  assert.deepEqual(r.cves, ['CVE-2024-0001', 'CVE-2025-1234', 'CVE-2025-99999']);
  assert.deepEqual(r.entries[0]!.bugs, [1001, 1002]);
  assert.deepEqual(r.entries[1]!.bugs, [900]);
  assert.equal(r.entries[0]!.maintainer, 'Jane Maintainer <jane@example.invalid>');
  assert.equal(r.entries[0]!.date, 'Sun, 08 Jun 2025 00:34:24 +0300');
  assert.equal(r.entries[0]!.urgency, 'medium');
  assert.deepEqual(r.entries[0]!.distributions, ['unstable']);
  assert.equal(r.entries[0]!.changes, '* New upstream release.\n* Fix CVE-2025-1234 and cve-2025-99999.\n  (Closes: #1001, #1002)');
  assert.equal(r.complete, true);
  assert.equal(r.reachedOld, true);
  assert.deepEqual(r.warnings, []);
});

test('an old version absent from the changelog stops at the first entry below it (~ sorts before anything)', () => {
  const r = changelogRange(LOG, '1.5-1~deb13u1', '1:2.0-1');
  assert.deepEqual(r.entries.map((e) => e.version), ['1:2.0-1', '1.5-2', '1.5-1']);
  const noCve = changelogRange(LOG, '1.4-1', '1.5-1');
  assert.deepEqual(noCve.entries.map((e) => e.version), ['1.5-1']);
  assert.deepEqual(noCve.cves, []);
});

test('a changelog that ends before the old version says so', () => {
  const r = changelogRange(entry('foo', '3.0-1', ['* x']), '1.0-1', '3.0-1');
  assert.equal(r.entries.length, 1);
  assert.equal(r.reachedOld, false);
  assert.match(r.warnings.join('\n'), /ends before version 1\.0-1/);
});

test('binNMU headers with binary-only=yes, and entries newer than the new version are skipped', () => {
  const text = entry('busybox', '1:1.37.0-6+b10', ['* later rebuild']) + entry('busybox', '1:1.37.0-6+b9', ['* Rebuild for outdated Built-Using'], 'trixie', 'low, binary-only=yes');
  const r = changelogRange(text, '1:1.37.0-6+b8', '1:1.37.0-6+b9');
  assert.deepEqual(r.entries.map((e) => e.version), ['1:1.37.0-6+b9']);
  assert.equal(r.entries[0]!.urgency, 'low');
});

test('not UTF-8: read as Latin-1 with a warning; CRLF line ends are accepted', () => {
  const bytes = Buffer.concat([Buffer.from('foo (2.0-1) unstable; urgency=low\r\n\r\n  * Fix CVE-2025-0001 reported by Jos'), Buffer.from([0xe9]), Buffer.from('\r\n\r\n -- Ren'), Buffer.from([0xe9, 0xff]), Buffer.from(' <r@example.invalid>  Mon, 01 Jan 2024 00:00:00 +0000\r\n')]);
  const r = changelogRange(bytes, '1.0-1', '2.0-1');
  assert.equal(r.entries.length, 1);
  assert.equal(r.entries[0]!.changes, '* Fix CVE-2025-0001 reported by José');
  assert.deepEqual(r.cves, ['CVE-2025-0001']);
  assert.match(r.warnings.join('\n'), /not valid UTF-8/);
});

test('malformed lines and headers are skipped with warnings, never thrown', () => {
  const text = 'garbage at the top\nfoo (not a version!) unstable; urgency=low\n  * CVE-2020-0001 in a broken entry\n' + entry('foo', '2.0-1', ['* CVE-2025-0002']) + '\u0000\u0001binary junk\n';
  const r = changelogRange(text, '1.0-1', '2.0-1');
  assert.deepEqual(r.entries.map((e) => e.version), ['2.0-1']);
  assert.deepEqual(r.cves, ['CVE-2025-0002']);
  assert.ok(r.warnings.length >= 2, r.warnings.join('\n'));
  assert.deepEqual(changelogRange(Buffer.from([0x1f, 0x8b, 0, 1, 2, 0xff, 0xfe]), '1.0', '2.0').entries, []);
});

test('hostile sizes: long lines are cut, long entries are cut, entry count is capped — all marked incomplete', () => {
  const long = changelogRange(`foo (2.0-1) unstable; urgency=low\n\n  * ${'A'.repeat(100_000)} CVE-2025-7777\n`, '1.0-1', '2.0-1', 'c', { maxLineBytes: 1024 });
  assert.equal(long.entries[0]!.changes.length <= 1024, true);
  assert.match(long.warnings.join('\n'), /longer than 1024 bytes/);
  const big = changelogRange(entry('foo', '2.0-1', Array.from({ length: 5000 }, (_, i) => `* change ${i} CVE-2025-${10000 + i}`)), '1.0-1', '2.0-1', 'c', { maxEntryBytes: 4096 });
  assert.equal(big.complete, false);
  assert.ok(big.entries[0]!.changes.length < 4200);
  assert.ok(big.cves.length < 5000 && big.cves.length > 10);
  const many = Array.from({ length: 50 }, (_, i) => entry('foo', `${100 - i}.0-1`, ['* x'])).join('');
  const capped = changelogRange(many, '1.0-1', '100.0-1', 'c', { maxEntries: 10 });
  assert.equal(capped.entries.length, 10);
  assert.equal(capped.complete, false);
  // A reader fed byte by byte gives what one fed at once gives.
  const r = new ChangelogRangeReader('1.5-1', '1:2.0-1', 'c');
  for (const b of Buffer.from(LOG)) r.push(Buffer.from([b]));
  assert.deepEqual(r.end().entries, changelogRange(LOG, '1.5-1', '1:2.0-1').entries);
});

test('CVE identifiers: any case, sorted by year then number, deduplicated', () => {
  assert.deepEqual(cvesIn('cve-2026-100 CVE-2025-99999 CVE-2025-1000 CVE-2025-1000 XCVE-2025-1 CVE-2025-12'), ['CVE-2025-1000', 'CVE-2025-99999']);
});
