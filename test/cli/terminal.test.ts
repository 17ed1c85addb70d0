// What reaches the terminal cannot drive it: names, versions and messages taken from hostile input
// (here a package record inside an image layer, and an error message) are printed with ESC, C1, CR and
// bidi controls escaped, while --json output stays valid JSON carrying the exact original string.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { repoRoot } from '../helpers/paths.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, reportError } from '../../src/cli/main.js';
import { terminalIo, terminalSafe } from '../../src/cli/io.js';
import { progressRenderer } from '../../src/cli/progress.js';
import { DistillError } from '../../src/errors.js';
import { makeTestLayout } from '../helpers/registry.js';
import { removeTempDir, tempDir } from '../helpers/tmp.js';

const dirs: string[] = [];
after(() => dirs.forEach(removeTempDir));

async function run(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: { HOME: tmpdir() } });
  return { code, stdout, stderr };
}

// ESC colour + OSC window title ended by BEL, an 8-bit CSI, a lone CR, RLO (bidi override), LRI/PDI.
const EVIL_NAME = 'ev\x1b[31mil\u202e\u2066x\u2069';
const EVIL_VERSION = '1\x1b]0;pwned\x07\u009b2J\r';
const RAW = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

test('terminalSafe escapes what a terminal would act on and keeps the rest', () => {
  assert.equal(terminalSafe('a\x1b[2Jb'), 'a\\u001b[2Jb');
  assert.equal(terminalSafe('\u202egnp.exe'), '\\u202egnp.exe');
  assert.equal(terminalSafe('x\u009by\rz\x7f'), 'x\\u009by\\u000dz\\u007f');
  assert.equal(terminalSafe('héllo → wörld\tok\n'), 'héllo → wörld\tok\n');
});

test('inspect prints hostile package records escaped; --json keeps them exact', async () => {
  const dir = tempDir('distill-term-');
  dirs.push(dir);
  const layout = join(dir, 'layout');
  mkdirSync(join(dir, 'work'));
  await makeTestLayout(layout, join(dir, 'work'));
  const app = join(dir, 'app', 'var', 'lib', 'dpkg', 'status.d');
  mkdirSync(app, { recursive: true });
  writeFileSync(join(app, 'evil'), `Package: ${EVIL_NAME}\nVersion: ${EVIL_VERSION.replace('\r', '')}\nArchitecture: amd64\nInstalled-Size: 5\n`);
  const out = join(dir, 'out');
  const a = await run(['append', `${layout}:latest-amd64`, '--layer', `${join(dir, 'app')}:/`, '--out', out]);
  assert.equal(a.code, 0, a.stderr);
  const human = await run(['inspect', out]);
  assert.equal(human.code, 0, human.stderr);
  assert.doesNotMatch(human.stdout, RAW, 'no raw control or bidi character reaches the terminal');
  assert.match(human.stdout, /ev\\u001b\[31mil\\u202e\\u2066x\\u2069/);
  assert.match(human.stdout, /1\\u001b\]0;pwned\\u0007\\u009b2J/);
  const json = await run(['inspect', out, '--json']);
  assert.equal(json.code, 0, json.stderr);
  assert.doesNotMatch(json.stdout, RAW);
  const packages = JSON.stringify(JSON.parse(json.stdout));
  assert.ok(packages.includes(JSON.stringify(EVIL_NAME).slice(1, -1)), 'the JSON carries the exact name');
  assert.ok(JSON.stringify(JSON.parse(json.stdout)).includes('\u202e'), 'parsed back, the string is the original');
});

test('an error naming hostile input is printed escaped: the message line, then the hint line', async () => {
  const dir = tempDir('distill-term-');
  dirs.push(dir);
  const r = await run(['fetch', join(dir, `no${EVIL_VERSION}where`)]);
  assert.equal(r.code, 1);
  assert.doesNotMatch(r.stderr, RAW);
  assert.match(r.stderr, /^distill: [^\n]*no1\\u001b\]0;pwned\\u0007\\u009b2J\\u000dwhere[^\n]* \[DEFINITION_NOT_FOUND\]\nhint: [^\n]+\n$/);
});

test('reportError is what main() prints through: the filter sits on the io, so it also covers it', () => {
  let stderr = '';
  reportError(new DistillError('REGISTRY_PROTOCOL', 'registry said: x', { hint: 'h' }), { stdout: { write: () => undefined }, stderr: { write: (s: string) => (stderr += s) }, env: {} });
  assert.equal(stderr, 'distill: registry said: x [REGISTRY_PROTOCOL]\nhint: h\n');
});

// The progress line's own "erase line" is the only control sequence let through, and only as a write of
// its own: a hostile string that starts with the same bytes is escaped like any other.
const ERASE = '\r\x1b[K';

test('a write that merely starts with the erase-line sequence is escaped; the progress line still erases', () => {
  const writes: string[] = [];
  const io = terminalIo({ stdout: { write: (s: string) => writes.push(s) }, stderr: { write: (s: string) => writes.push(s), isTTY: true, columns: 200 }, env: {} });
  io.stdout.write(`${ERASE}${ERASE}fake\n`);
  assert.deepEqual(writes, ['\\u000d\\u001b[K\\u000d\\u001b[Kfake\n']);
  writes.length = 0;
  const p = progressRenderer(io, true);
  p.onProgress({ type: 'release-verified', source: `${ERASE}mirror\x1b[2J`, suite: 'trixie', signer: 'k' });
  p.onProgress({ type: 'retry', what: 'x.deb', attempt: 1, delayMs: 1000, reason: `${ERASE}HTTP 503\x1b]0;t\x07` });
  p.done();
  // Raw erase-line only ever as a whole write; everything else escaped.
  for (const w of writes) if (w !== ERASE) assert.doesNotMatch(w, RAW, JSON.stringify(w));
  assert.ok(writes.includes(ERASE), 'the progress line is still erased and redrawn');
  assert.ok(writes.includes('verified \\u000d\\u001b[Kmirror\\u001b[2J trixie'), JSON.stringify(writes));
  assert.ok(writes.some((w) => w.startsWith('distill: retrying x.deb') && w.includes('\\u000d\\u001b[KHTTP 503\\u001b]0;t\\u0007')), JSON.stringify(writes));
});

/** A test layout whose index.json ref names are rewritten by `rename` (as a hostile layout names them). */
async function layoutWithRefs(rename: (name: string) => string): Promise<string> {
  const dir = tempDir('distill-term-');
  dirs.push(dir);
  const layout = join(dir, 'layout');
  mkdirSync(join(dir, 'work'));
  await makeTestLayout(layout, join(dir, 'work'));
  const indexPath = join(layout, 'index.json');
  const index = JSON.parse(readFileSync(indexPath, 'utf8'));
  for (const m of index.manifests) m.annotations['org.opencontainers.image.ref.name'] = rename(m.annotations['org.opencontainers.image.ref.name']);
  writeFileSync(indexPath, JSON.stringify(index));
  return layout;
}

test('inspect of a layout whose ref name starts with the erase-line sequence prints it escaped', async () => {
  const layout = await layoutWithRefs((name) => `${ERASE}${name}`);
  const r = await run(['inspect', layout]);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, RAW);
  assert.match(r.stdout, /^\\u000d\\u001b\[Klatest {2}sha256:/m);
});

test('a ref or package name with a newline cannot forge a line of inspect\'s table', async () => {
  const layout = await layoutWithRefs((name) => `${name}\nFORGED\tsha256:${'0'.repeat(64)}`);
  const r = await run(['inspect', layout]);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /^FORGED/m);
  assert.match(r.stdout, /^latest\\u000aFORGED\\u0009sha256:0{64} {2}sha256:/m);
  const json = await run(['inspect', layout, '--json']);
  assert.ok((JSON.parse(json.stdout) as { name: string }[]).some((x) => x.name === `latest\nFORGED\tsha256:${'0'.repeat(64)}`), 'the JSON keeps the name exact');
});

test('a progress line carrying a hostile name still fits the terminal once escaped', () => {
  const writes: string[] = [];
  const io = terminalIo({ stdout: { write: () => undefined }, stderr: { write: (s: string) => writes.push(s), isTTY: true, columns: 41 }, env: {} });
  const p = progressRenderer(io, true);
  p.onProgress({ type: 'release-verified', source: '\x1b'.repeat(30), suite: 'trixie', signer: 'k' });
  const lines = writes.filter((w) => w !== ERASE);
  assert.equal(lines.length, 1);
  assert.ok(lines[0]!.length <= 40, `${lines[0]!.length} characters on a 41-column terminal`);
  assert.ok(lines[0]!.startsWith('verified \\u001b\\u001b'));
});

// A bug that throws where no one awaits: preloaded, this throws a hostile message once the executable
// has installed its guard (at most 5 s later regardless, so without the guard it still ends).
const THROWER = `const t0 = Date.now(); const iv = setInterval(() => { if (process.listenerCount('uncaughtException') > 0 || Date.now() - t0 > 5000) { clearInterval(iv); throw new Error('boom \\x1b]0;pwned\\x07\\u202e'); } }, 5);`;

test('an error thrown where no one awaits is one filtered [INTERNAL] line, not a raw stack trace (bin and bundle)', () => {
  const dir = tempDir('distill-term-');
  dirs.push(dir);
  const preload = join(dir, 'throw.mjs');
  writeFileSync(preload, THROWER);
  for (const bin of [join(repoRoot, 'dist', 'src', 'cli', 'bin.js'), join(repoRoot, 'dist', 'src', 'bundle', 'distill.js')]) {
    const r = spawnSync(process.execPath, ['--import', preload, bin, '--version'], { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env['PATH'] ?? '', HOME: dir, DISTILL_NO_COMPILE_CACHE: '1' } });
    assert.equal(r.status, 1, bin);
    assert.doesNotMatch(r.stderr, RAW, r.stderr);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
    assert.match(r.stderr, /^distill: internal error: boom \\u001b\]0;pwned\\u0007\\u202e \[INTERNAL\]\nhint: /m, `${bin}: ${r.stderr}`);
  }
});

test('output piped to a reader that went away (| head) ends quietly with the SIGPIPE status, not an [INTERNAL] bug report', async () => {
  const { spawn } = await import('node:child_process');
  for (const bin of [join(repoRoot, 'dist', 'src', 'cli', 'bin.js'), join(repoRoot, 'dist', 'src', 'bundle', 'distill.js')]) {
    const c = spawn(process.execPath, [bin, '--help'], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '', HOME: '/nonexistent', DISTILL_NO_COMPILE_CACHE: '1' } });
    c.stdout.destroy(); // the reader is gone before distill writes
    let stderr = '';
    c.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((r) => c.on('close', (n) => r(n)));
    clearTimeout(timer);
    assert.equal(stderr, '', bin);
    assert.equal(code, 141, bin);
  }
});
