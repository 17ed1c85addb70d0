// The command line as a user meets it: exit codes (0 ok, 1 failure, 2 usage), one-line errors with a
// code and a hint, --json output, --help.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

async function run(args: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: { HOME: tmpdir(), ...env },
  });
  return { code, stdout, stderr };
}

test('--help lists the commands and exits 0', async () => {
  const r = await run(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /distill lock/);
  assert.match(r.stdout, /distill fetch/);
  const l = await run(['lock', '--help']);
  assert.equal(l.code, 0);
  assert.match(l.stdout, /--allow-expired/);
});

test('--version prints the version (package.json\'s) on stdout and exits 0', async () => {
  const r = await run(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version);
});

test('usage errors exit 2 with a one-line message and a hint', async () => {
  for (const args of [[], ['frobnicate'], ['lock'], ['lock', 'x', '--no-such-flag']]) {
    const r = await run(args);
    assert.equal(r.code, 2, `distill ${args.join(' ')}`);
    assert.match(r.stderr, /^distill: .+ \[USAGE\]\nhint: /);
  }
  const bad = await run(['lock', 'images', '--mirror', 'debian']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /expected NAME=URL \[USAGE\]/);
});

test('a failure exits 1 naming what, where and the code, with a hint', async () => {
  const dir = tempDir('distill-cli-');
  mkdirSync(join(dir, 'app'));
  writeFileSync(join(dir, 'app', 'image.yaml'), 'sources:\n  debian:\n    suite: trixie\narchitectures: [amd64]\npakages: [libc6]\n');
  const r = await run(['lock', join(dir, 'app')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^distill: .*app\/image\.yaml:5: pakages: unknown field "pakages" — did you mean "packages"\? \[DEFINITION_INVALID\]\n/);
  assert.match(r.stderr, /\nhint: /);
  const missing = await run(['fetch', join(dir, 'nothing-here')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /\[DEFINITION_NOT_FOUND\]/);
});

test('no mirror configured: the error says how to give one', async () => {
  const dir = tempDir('distill-cli-');
  mkdirSync(join(dir, 'app'));
  writeFileSync(join(dir, 'app', 'image.yaml'), 'sources:\n  nowhere-archive:\n    suite: trixie\narchitectures: [amd64]\npackages: [libc6]\n');
  const r = await run(['lock', join(dir, 'app'), '--keyring', '/dev/null']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\[MIRROR_NOT_CONFIGURED\]/);
  assert.match(r.stderr, /--mirror nowhere-archive=URL/);
});

const snap = snapshotDir();
test('lock --check, --json and --explain against the snapshot', { skip: snap === undefined ? NO_SNAPSHOT : false }, async () => {
  const dir = tempDir('distill-cli-');
  cpSync(join(repoRoot, 'images'), join(dir, 'images'), { recursive: true });
  const mirrors = Object.entries(snapshotMirrors(snap!)).flatMap(([k, v]) => ['--mirror', `${k}=${v}`]);
  const common = ['--allow-expired', '--cache', join(dir, 'cache'), ...mirrors];
  const ok = await run(['lock', join(dir, 'images', 'python3'), '--check', ...common]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /python3: .* up to date/);

  const json = await run(['lock', join(dir, 'images', 'python3'), '--json', '--explain', 'libssl3t64', ...common]);
  assert.equal(json.code, 0, json.stderr);
  const out = JSON.parse(json.stdout);
  assert.equal(out.locks[0].image, 'python3');
  assert.equal(out.locks[0].changed, false);
  assert.deepEqual(out.locks[0].architectures, { amd64: 14, arm64: 14 });

  const why = await run(['lock', join(dir, 'images', 'base'), '--explain', 'libzstd1', ...common]);
  assert.equal(why.code, 0, why.stderr);
  assert.match(why.stdout, /base amd64: libzstd1 .*: requested; needed by libssl3t64/);

  const def = join(dir, 'images', 'python3', 'image.yaml');
  writeFileSync(def, readFileSync(def, 'utf8').replace('  - python3.13-minimal\n', '  - python3.13-minimal\n  - libexpat1\n'));
  const stale = await run(['lock', join(dir, 'images', 'python3'), '--check', ...common]);
  assert.equal(stale.code, 1);
  assert.match(stale.stderr, /would change \[LOCK_STALE\]/);
  assert.equal(readFileSync(join(dir, 'images', 'python3', 'image.lock.json'), 'utf8'), readFileSync(join(repoRoot, 'images', 'python3', 'image.lock.json'), 'utf8'), '--check writes nothing');

  const fetched = await run(['fetch', join(dir, 'images', 'static'), '--json', '--cache', join(dir, 'cache'), ...mirrors]);
  assert.equal(fetched.code, 0, fetched.stderr);
  // base-files and the debug variants' busybox-static per architecture, the five Architecture: all packages once.
  assert.equal(JSON.parse(fetched.stdout).files, 9);
});
