import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { osRelease, parseOsRelease } from '../../../src/rootfs/generate/os-release.js';
import { NO_SNAPSHOT } from '../../helpers/paths.js';
import { extractDeb, snapshotDeb, tempDir } from './helpers.js';

const failed = (e: unknown) => (e as { code?: string }).code === 'GENERATE_FAILED' && Boolean((e as { hint?: string }).hint);

const TRIXIE = `PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
DEBIAN_VERSION_FULL=13.7
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
`;

/** What /bin/sh makes of the file (os-release(5) is shell-compatible): an independent parser. */
function shellValues(text: string, keys: string[]): string[] {
  const { dir, cleanup } = tempDir('os-release');
  try {
    const file = join(dir, 'os-release');
    writeFileSync(file, text);
    const r = spawnSync('sh', ['-c', `. "$1"; ${keys.map((k) => `printf '%s\\0' "$${k}"`).join('; ')}`, 'sh', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split('\0').slice(0, -1);
  } finally {
    cleanup();
  }
}

test('base-files\' own os-release from the snapshot is kept byte for byte', (t) => {
  const deb = snapshotDeb('base-files');
  if (!deb) return t.skip(NO_SNAPSHOT);
  const { dir, cleanup } = tempDir('base-files');
  try {
    extractDeb(deb, dir);
    const text = readFileSync(join(dir, 'usr/lib/os-release'), 'utf8');
    assert.equal(osRelease(text), text);
    const fields = parseOsRelease(text);
    assert.equal(fields.get('ID'), 'debian');
    assert.equal(fields.get('VERSION_ID'), '13');
    assert.equal(fields.get('VERSION_CODENAME'), 'trixie');
    assert.deepEqual(shellValues(text, ['ID', 'VERSION_ID', 'PRETTY_NAME']), ['debian', '13', 'Debian GNU/Linux 13 (trixie)']);
  } finally {
    cleanup();
  }
});

test('fields: replaced in place, new ones appended in order, quoting survives a shell', () => {
  const out = osRelease(TRIXIE, { fields: { PRETTY_NAME: 'distill (Debian 13)', VARIANT: 'distill "static" $HOME `x` \\', VARIANT_ID: 'distill' } });
  const lines = out.split('\n');
  assert.equal(lines[0], 'PRETTY_NAME="distill (Debian 13)"');
  assert.deepEqual(lines.slice(-3), ['VARIANT="distill \\"static\\" \\$HOME \\`x\\` \\\\"', 'VARIANT_ID="distill"', '']);
  assert.equal(lines.length, TRIXIE.split('\n').length + 2);
  assert.deepEqual(shellValues(out, ['PRETTY_NAME', 'VARIANT', 'VARIANT_ID', 'ID', 'VERSION_ID']), [
    'distill (Debian 13)',
    'distill "static" $HOME `x` \\',
    'distill',
    'debian',
    '13',
  ]);
  assert.equal(parseOsRelease(out).get('VARIANT'), 'distill "static" $HOME `x` \\');
  // A file without a final newline gets one; a repeated key keeps one line.
  assert.equal(osRelease('ID=debian\nHOME_URL=a\nHOME_URL=b', { fields: { HOME_URL: 'c' } }), 'ID=debian\nHOME_URL="c"\n');
});

test('identity fields are refused, and so are bad names, control characters and a file without ID', () => {
  for (const key of ['ID', 'ID_LIKE', 'VERSION_ID', 'VERSION_CODENAME']) {
    assert.throws(() => osRelease(TRIXIE, { fields: { [key]: 'x' } }), failed, key);
  }
  assert.throws(() => osRelease(TRIXIE, { fields: { variant: 'x' } }), failed);
  assert.throws(() => osRelease(TRIXIE, { fields: { 'A-B': 'x' } }), failed);
  assert.throws(() => osRelease(TRIXIE, { fields: { VARIANT: 'a\nID=evil' } }), failed);
  assert.throws(() => osRelease('NAME="x"\n'), failed);
});
