// distill diff with a registry image on one side: its SLSA provenance attestation is read only when it
// verifies against the publisher's key (as distill rebuild reads it); no key is a usage error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import type { DiffResult } from '../../src/diff/diff.js';
import { needsRegistry, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';

const snap = snapshotDir();
const skip = needsRegistry().skip || (snap === undefined ? NO_SNAPSHOT : false);
const work = mkdtempSync(join(tmpdir(), 'distill-diff-reg-'));
let registry: RunningRegistry | undefined;

async function cli(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: { HOME: work, COSIGN_PASSWORD: 'pw' } });
  return { code, stdout, stderr };
}
const mirrorArgs = (): string[] => Object.entries(snapshotMirrors(snap!)).flatMap(([k, v]) => ['--mirror', `${k}=${v}`]);

before(async () => {
  if (skip) return;
  registry = await startRegistry();
  assert.equal((await cli(['generate-key-pair', '--dir', work])).code, 0);
  mkdirSync(join(work, 'other'));
  assert.equal((await cli(['generate-key-pair', '--dir', join(work, 'other')])).code, 0);
});
after(async () => {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('a signed registry image against an older lock: the busybox binNMU, read through the verified provenance', { skip }, async () => {
  const repo = `${registry!.host}/distill/static`;
  const cache = join(work, 'cache');
  const b = await cli(['build', join(repoRoot, 'images', 'static'), '--platform', 'amd64', '--push', repo, '--sign-key', join(work, 'cosign.key'), '--cache', cache, ...mirrorArgs()]);
  assert.equal(b.code, 0, b.stderr);
  const old = join(work, 'images');
  cpSync(join(repoRoot, 'images'), old, { recursive: true });
  const p = join(old, 'static', 'image.lock.json');
  const lock = JSON.parse(readFileSync(p, 'utf8'));
  for (const x of lock.architectures.amd64.debug) if (x.name === 'busybox-static') x.version = '1:1.37.0-6+b8';
  writeFileSync(p, JSON.stringify(lock, null, 2) + '\n');

  const r = await cli(['diff', join(old, 'static'), `${repo}:latest`, '--key', join(work, 'cosign.pub'), '--json', '--cache', cache, ...mirrorArgs()]);
  assert.equal(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout) as DiffResult;
  const amd64 = d.images[0]!.architectures.find((a) => a.arch === 'amd64')!;
  assert.deepEqual(amd64.upgraded.map((u) => `${u.name} ${u.newVersion}`), ['busybox-static 1:1.37.0-6+b9']);
  assert.deepEqual(amd64.upgraded[0]!.changelog!.entries.map((e) => e.version), ['1:1.37.0-6+b9']);

  const noKey = await cli(['diff', join(old, 'static'), `${repo}:latest`, '--cache', cache]);
  assert.equal(noKey.code, 2);
  assert.match(noKey.stderr, /publisher's key \[USAGE\]\nhint: pass --key/);
  const wrongKey = await cli(['diff', join(old, 'static'), `${repo}:latest`, '--key', join(work, 'other', 'cosign.pub'), '--cache', cache]);
  assert.equal(wrongKey.code, 1);
  assert.match(wrongKey.stderr, /^distill: .+ \[[A-Z_]+\]\n/);
  assert.doesNotMatch(wrongKey.stderr, /\n\s+at /);
});
