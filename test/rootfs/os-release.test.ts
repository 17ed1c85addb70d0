// Reading os-release(5) as the SBOM does, checked against what /bin/sh makes of the same file (the
// format is shell-compatible): Debian's own from base-files, and quoting a hostile file may use.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseOsRelease } from '../../src/rootfs/os-release.js';
import { NO_SNAPSHOT } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';
import { extractDeb, snapshotDeb } from './generate/helpers.js';

const TRIXIE = `PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
DEBIAN_VERSION_FULL=13.7
ID=debian
HOME_URL="https://www.debian.org/"
`;

/** What /bin/sh makes of the file: an independent parser. */
function shellValues(text: string, keys: string[]): string[] {
  const file = join(tempDir('distill-os-release-'), 'os-release');
  writeFileSync(file, text);
  const r = spawnSync('sh', ['-c', `. "$1"; ${keys.map((k) => `printf '%s\\0' "$${k}"`).join('; ')}`, 'sh', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\0').slice(0, -1);
}

test('Debian\'s os-release: the values a shell sees', () => {
  const keys = ['ID', 'VERSION_ID', 'VERSION_CODENAME', 'PRETTY_NAME', 'HOME_URL'];
  const fields = parseOsRelease(TRIXIE);
  assert.deepEqual(keys.map((k) => fields.get(k)), shellValues(TRIXIE, keys));
  assert.deepEqual(keys.map((k) => fields.get(k)), ['debian', '13', 'trixie', 'Debian GNU/Linux 13 (trixie)', 'https://www.debian.org/']);
});

test('quoting, escapes, comments, CRLF; the last assignment wins; nothing is evaluated', () => {
  const text = '# a comment\nID=one\nID="two"\r\nVARIANT="a \\"b\\" \\$HOME \\`x\\` \\\\"\nNAME=\'single $HOME\'\nnot an assignment\n';
  const f = parseOsRelease(text);
  assert.equal(f.get('ID'), 'two');
  assert.equal(f.get('VARIANT'), 'a "b" $HOME `x` \\');
  assert.equal(f.get('NAME'), 'single $HOME');
  assert.deepEqual(shellValues(text.replace('\r', ''), ['VARIANT', 'NAME']), [f.get('VARIANT'), f.get('NAME')]);
});

test('base-files\' own os-release from the snapshot (what the images ship) reads as the shell reads it', (t) => {
  const deb = snapshotDeb('base-files');
  if (!deb) return t.skip(NO_SNAPSHOT);
  const dir = join(tempDir('distill-base-files-'), 'x');
  mkdirSync(dir);
  extractDeb(deb, dir);
  const text = readFileSync(join(dir, 'usr/lib/os-release'), 'utf8');
  const keys = ['ID', 'VERSION_ID', 'VERSION_CODENAME', 'PRETTY_NAME'];
  assert.deepEqual(keys.map((k) => parseOsRelease(text).get(k)), shellValues(text, keys));
  assert.equal(parseOsRelease(text).get('ID'), 'debian');
});
