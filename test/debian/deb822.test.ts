import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Deb822Parser, parseDeb822, type Paragraph } from '../../src/debian/deb822.js';
import { parseReleaseDate } from '../../src/debian/release.js';

test('paragraphs, continuation lines, case-insensitive fields', () => {
  const ps = parseDeb822('Package: a\nVersion: 1\nDescription: short\n long line\n .\n more\n\nPackage: b\nversion: 2\n', 'x');
  assert.equal(ps.length, 2);
  assert.equal(ps[0]!.get('package'), 'a');
  assert.equal(ps[0]!.get('Description'), 'short\nlong line\n.\nmore');
  assert.equal(ps[1]!.get('Version'), '2');
});

test('CRLF lines and whitespace-only separators are handled as dpkg does', () => {
  const ps = parseDeb822('Package: a\r\nVersion: 1\r\n \t\r\nPackage: b\r\nVersion: 2\r\n', 'x');
  assert.deepEqual(ps.map((p) => [p.get('Package'), p.get('Version')]), [['a', '1'], ['b', '2']]);
});

test('incremental parsing gives the same result at any chunk boundary', () => {
  const text = 'Package: alpha\nDepends: libc6 (>= 2.34),\n libssl3t64\n\n\nPackage: beta\nVersion: 1:2.0~rc1-3\n';
  const whole = parseDeb822(text, 'x').map((p) => [p.get('Package'), p.get('Depends') ?? p.get('Version')]);
  for (let step = 1; step < text.length; step += 3) {
    const got: Paragraph[] = [];
    const parser = new Deb822Parser('x', (p) => got.push(p));
    for (let i = 0; i < text.length; i += step) parser.push(text.slice(i, i + step));
    parser.end();
    assert.deepEqual(got.map((p) => [p.get('Package'), p.get('Depends') ?? p.get('Version')]), whole, `chunk size ${step}`);
  }
});

test('malformed lines are INDEX_MALFORMED with the line number', () => {
  assert.throws(() => parseDeb822('Package: a\nthis is not a field\n', 'idx'), (e: any) => e.code === 'INDEX_MALFORMED' && /idx:2/.test(e.message));
  assert.throws(() => parseDeb822(' leading continuation\n', 'idx'), (e: any) => e.code === 'INDEX_MALFORMED');
});

test('Release dates: RFC 2822 in UTC and with numeric zones', () => {
  assert.equal(parseReleaseDate('Sat, 12 Sep 2026 07:55:41 UTC')?.toISOString(), '2026-09-12T07:55:41.000Z');
  assert.equal(parseReleaseDate('Fri, 27 Nov 2026 00:12:43 +0100')?.toISOString(), '2026-11-26T23:12:43.000Z');
  assert.equal(parseReleaseDate('12 Sep 2026 07:55:41 GMT')?.toISOString(), '2026-09-12T07:55:41.000Z');
  assert.equal(parseReleaseDate('yesterday'), undefined);
  assert.equal(parseReleaseDate('Sat, 12 Foo 2026 07:55:41 UTC'), undefined);
});
