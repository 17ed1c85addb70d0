// Hostile suite, class 1: a definition is untrusted text. Huge files and alias bombs cost milliseconds
// and end in DEFINITION_SYNTAX/DEFINITION_INVALID; files a definition names (source:, url: file://,
// tarballs) never reach outside its directory, so building someone's definition cannot copy this
// machine's files (/etc/hostname, ~/.ssh) into an image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tempDir } from '../helpers/tmp.js';
import { assertRefused, cli, type CliResult } from './helpers.js';

const HEAD = 'sources:\n  debian:\n    suite: trixie\narchitectures: [amd64]\n';

function define(yaml: string | Buffer): string {
  const dir = join(tempDir('distill-hostile-def-'), 'images', 'app');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'image.yaml'), yaml);
  return dir;
}

/** Both commands that read a definition refuse it the same way. */
async function refusedByAll(dir: string, code: string): Promise<CliResult> {
  const cache = join(dir, '..', '..', 'cache');
  let last: CliResult | undefined;
  for (const args of [['lock', dir, '--keyring', '/dev/null', '--cache', cache], ['build', dir, '--out', join(dir, '..', '..', 'out'), '--cache', cache]]) {
    last = await cli(args);
    assertRefused(last, code, `distill ${args[0]}`);
  }
  return last!;
}

test('an alias bomb (8 levels of 8 aliases) is refused as DEFINITION_SYNTAX, not expanded', async () => {
  const lines = ['a: &a ["x","x","x","x","x","x","x","x"]'];
  const names = 'abcdefgh';
  for (let i = 1; i < names.length; i++) lines.push(`${names[i]}: &${names[i]} [${Array(8).fill(`*${names[i - 1]}`).join(',')}]`);
  lines.push('packages: [*h]');
  await refusedByAll(define(lines.join('\n') + '\n'), 'DEFINITION_SYNTAX');
});

test('a few aliases are fine; more than the cap are refused even when each expands to little', async () => {
  const ok = define(`${HEAD}x: &p [libc6]\npackages: *p\n`);
  // An unknown top-level key is reported after parsing: the alias itself was accepted.
  assertRefused(await cli(['lock', ok, '--keyring', '/dev/null']), 'DEFINITION_INVALID');
  const many = define(`${HEAD}x: &p libc6\npackages: [${Array(500).fill('*p').join(', ')}]\n`);
  const r = await cli(['lock', many, '--keyring', '/dev/null']);
  assertRefused(r, 'DEFINITION_SYNTAX');
  assert.match(r.stderr, /alias/);
});

test('a definition over 1 MiB is refused unread; a FIFO named image.yaml too', async () => {
  const big = define(HEAD + 'packages: [libc6]\ndescription: "' + 'x'.repeat(1024 * 1024) + '"\n');
  const r = await refusedByAll(big, 'DEFINITION_INVALID');
  assert.match(r.stderr, /at most 1048576/);
  const d = join(tempDir('distill-hostile-def-'), 'images', 'app');
  mkdirSync(d, { recursive: true });
  execFileSync('mkfifo', [join(d, 'image.yaml')]); // reading it would block forever
  assertRefused(await cli(['lock', join(d, 'image.yaml'), '--keyring', '/dev/null']), 'DEFINITION_INVALID');
});

test('deeply nested YAML and binary garbage end in DEFINITION_SYNTAX/INVALID', async () => {
  assertRefused(await cli(['lock', define('['.repeat(100_000) + ']'.repeat(100_000) + '\n'), '--keyring', '/dev/null']), 'DEFINITION_SYNTAX');
  const garbage = Buffer.alloc(4096);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919) & 0xff;
  const r = await cli(['lock', define(garbage), '--keyring', '/dev/null']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /\[DEFINITION_(SYNTAX|INVALID)\]/);
  assert.doesNotMatch(r.stderr, /INTERNAL|^\s+at /m);
});

const hostname = readFileSync('/etc/hostname');
const hostnameSha = createHash('sha256').update(hostname).digest('hex');

test('files: url: file:// outside the definition directory is refused, pinned sha256 or not', async () => {
  for (const url of [pathToFileURL('/etc/hostname').href, 'file:///etc/../etc/hostname']) {
    const dir = define(`${HEAD}packages: [libc6]\nfiles:\n  - path: /etc/stolen\n    url: ${url}\n    sha256: ${hostnameSha}\n`);
    const r = await refusedByAll(dir, 'DEFINITION_INVALID');
    assert.match(r.stderr, /outside the definition's directory/);
  }
});

test('a file:// url or source reaching out through a symlink inside the directory is refused', async () => {
  const dir = define(`${HEAD}packages: [libc6]\nfiles:\n  - path: /etc/stolen\n    url: PLACEHOLDER\n    sha256: ${hostnameSha}\n`);
  symlinkSync('/etc', join(dir, 'etc-link'));
  const yaml = readFileSync(join(dir, 'image.yaml'), 'utf8').replace('PLACEHOLDER', pathToFileURL(join(dir, 'etc-link', 'hostname')).href);
  writeFileSync(join(dir, 'image.yaml'), yaml);
  await refusedByAll(dir, 'DEFINITION_INVALID');
  const src = define(`${HEAD}packages: [libc6]\nfiles:\n  - path: /etc/stolen\n    source: etc-link/hostname\n`);
  symlinkSync('/etc', join(src, 'etc-link'));
  await refusedByAll(src, 'DEFINITION_INVALID');
});

test('a tarball to extract is confined the same way, by source or by file:// url', async () => {
  const bySource = define(`${HEAD}packages: [libc6]\nfiles:\n  - path: /opt\n    source: ../../../../../../usr/share/doc/base-files/README\n    extract: true\n`);
  await refusedByAll(bySource, 'DEFINITION_INVALID');
  const byUrl = define(`${HEAD}packages: [libc6]\nfiles:\n  - path: /opt\n    url: file:///var/cache/apt/archives/partial.tar\n    sha256: ${'0'.repeat(64)}\n    extract: true\n`);
  await refusedByAll(byUrl, 'DEFINITION_INVALID');
});

test('url schemes other than http(s) and confined file:// are refused', async () => {
  for (const url of ['ftp://127.0.0.1/x', 'data:text/plain,hello', 'not a url']) {
    const dir = define(`${HEAD}packages: [libc6]\nfiles:\n  - path: /x\n    url: "${url}"\n    sha256: ${'0'.repeat(64)}\n`);
    assertRefused(await cli(['lock', dir, '--keyring', '/dev/null']), 'DEFINITION_INVALID', url);
  }
});
