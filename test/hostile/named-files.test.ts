// Hostile catalogue: files a user names on the command line that are not files — a FIFO with no
// writer (a plain open() blocks forever), /dev/zero (read whole: an unbounded allocation), a
// directory — given as --provenance, --key, --predicate, a lockfile to diff or a lock to build from.
// Each must end at once in the command's own code with a hint; none may hang or grow without bound.
// Every run is a child process killed after 20 s, so a regression fails instead of hanging the suite.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTestLayout } from '../helpers/registry.js';
import { tempDir } from '../helpers/tmp.js';
import { assertRefused, spawnCli } from './helpers.js';

let work: string;
let fifo: string;
let dir: string;
let layout: string;
let lockOk: string;

before(async () => {
  work = tempDir('distill-hostile-named-');
  fifo = join(work, 'fifo');
  execFileSync('mkfifo', [fifo]);
  dir = join(work, 'a-directory');
  mkdirSync(dir);
  layout = join(work, 'layout');
  await makeTestLayout(layout, work);
  lockOk = join(work, 'ok.lock.json');
  writeFileSync(lockOk, '{}');
});
after(() => rmSync(work, { recursive: true, force: true }));

const NOT_FILES = (): [string, string][] => [
  ['a FIFO', fifo],
  ['/dev/zero', '/dev/zero'],
  ['a directory', dir],
];

async function refusedQuickly(args: string[], code: string, what: string): Promise<void> {
  const r = await spawnCli(args, { killAfterMs: 20_000, env: { DISTILL_NO_COMPILE_CACHE: '1' } });
  assert.equal(r.killed, false, `${what}: still running after 20 s (${args.join(' ')})`);
  assertRefused(r, code, what);
}

test('rebuild --provenance that is not a file', async () => {
  for (const [what, p] of NOT_FILES()) await refusedQuickly(['rebuild', `${layout}:latest-amd64`, '--provenance', p], 'PROVENANCE_INVALID', `--provenance ${what}`);
});

test('--key that is not a file: verify, sign, rebuild, diff', async () => {
  for (const [what, p] of NOT_FILES()) {
    await refusedQuickly(['verify', '127.0.0.1:1/x/y:1', '--key', p], 'KEY_INVALID', `verify --key ${what}`);
    await refusedQuickly(['sign', '127.0.0.1:1/x/y:1', '--key', p], 'KEY_INVALID', `sign --key ${what}`);
    await refusedQuickly(['rebuild', '127.0.0.1:1/x/y:1', '--key', p], 'KEY_INVALID', `rebuild --key ${what}`);
    await refusedQuickly(['diff', lockOk, lockOk, '--key', p], 'KEY_INVALID', `diff --key ${what}`);
  }
});

test('attest --predicate that is not a file', async () => {
  for (const [what, p] of NOT_FILES()) await refusedQuickly(['attest', '127.0.0.1:1/x/y:1', '--key', '/nonexistent.key', '--type', 'slsaprovenance1', '--predicate', p], 'USAGE', `--predicate ${what}`);
});

test('diff of a lockfile that is a FIFO or /dev/zero', async () => {
  for (const [what, p] of NOT_FILES().slice(0, 2)) {
    await refusedQuickly(['diff', p, lockOk], '(?:LOCK_INVALID|LOCK_NOT_FOUND)', `diff ${what}`);
  }
});

test('build or fetch from an image whose image.lock.json is a FIFO or /dev/zero', async () => {
  for (const [what, target] of [['a FIFO', fifo], ['/dev/zero', '/dev/zero']] as const) {
    const image = join(work, `img-${what.replace(/\W/g, '')}`);
    mkdirSync(image);
    writeFileSync(join(image, 'image.yaml'), 'sources:\n  debian:\n    suite: trixie\narchitectures: [amd64]\npackages: [app]\n');
    execFileSync('ln', ['-s', target!, join(image, 'image.lock.json')]);
    await refusedQuickly(['build', image, '--out', join(work, 'out'), '--cache', join(work, 'cache')], '(?:LOCK_INVALID|LOCK_NOT_FOUND)', `build, lock ${what}`);
  }
});

test('an image archive named explicitly that is a FIFO: inspect, copy, rebuild, append refuse it at once', async () => {
  for (const t of ['oci-archive', 'docker-archive']) {
    await refusedQuickly(['inspect', `${t}:${fifo}`], 'OCI_INVALID', `inspect ${t}:FIFO`);
    await refusedQuickly(['copy', `${t}:${fifo}`, '127.0.0.1:1/x/y:1'], 'OCI_INVALID', `copy ${t}:FIFO`);
    await refusedQuickly(['rebuild', `${t}:${fifo}`, '--provenance', lockOk], 'OCI_INVALID', `rebuild ${t}:FIFO`);
    await refusedQuickly(['append', `${t}:${fifo}`, '--layer', lockOk, '--out', join(work, 'append-out')], 'OCI_INVALID', `append ${t}:FIFO`);
  }
});
