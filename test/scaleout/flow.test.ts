// The scale-out flow end to end, as separate processes that share nothing but a loopback registry:
// each worker has its own working directory, its own cache and its own environment. Two workers build
// python3 for amd64 and arm64 (the arm64 one is killed mid-push and rerun), a join assembles the
// indexes, and a third worker builds nodejs for amd64 taking the static/base-nossl/base/cc layers
// from the registry cache. The digests must be those of a one-machine build: reproducibility/
// digests.json, which the reproducibility test checks a one-machine build against.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '../../src/sign/keys.js';
import { RegistryClient } from '../../src/registry/client.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { needsRegistry, startRegistry } from '../helpers/registry.js';

const snap = snapshotDir();
const skip = needsRegistry().skip || (snap === undefined ? NO_SNAPSHOT : false);
const bin = join(repoRoot, 'dist', 'src', 'bundle', 'distill.js');
const PASSWORD = 'scale out';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A distill process in its own working directory; `killWhen` is polled and kills it (SIGKILL) when true. */
function distill(args: string[], cwd: string, killWhen?: () => boolean): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd,
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: cwd, COSIGN_PASSWORD: PASSWORD },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-20000)));
    const poll = killWhen ? setInterval(() => killWhen() && child.kill('SIGKILL'), 10) : undefined;
    const limit = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (poll) clearInterval(poll);
      clearTimeout(limit);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

test('workers + join on a shared registry give the one-machine digests; the registry cache feeds a later worker; a killed worker reruns', { skip, timeout: 900_000 }, async () => {
  const expected = JSON.parse(readFileSync(join(repoRoot, 'reproducibility', 'digests.json'), 'utf8')) as Record<string, Record<string, Record<string, string>>>;
  const registry = await startRegistry();
  const made: string[] = [];
  const temp = (p: string): string => {
    const d = mkdtempSync(join(tmpdir(), `distill-scaleout-${p}-`));
    made.push(d);
    return d;
  };
  try {
    const keys = temp('keys');
    const pair = generateKeyPair(PASSWORD);
    writeFileSync(join(keys, 'cosign.key'), pair.privatePem);
    writeFileSync(join(keys, 'cosign.pub'), pair.publicPem);
    const mirrors = Object.entries(snapshotMirrors(snap!)).flatMap(([k, v]) => ['--mirror', `${k}=${v}`]);
    const repo = `${registry.host}/distill/python3`;
    const cacheRepo = `${registry.host}/distill/cache`;
    const worker = (image: string, arch: string, dir: string): string[] => [
      'build', join(repoRoot, 'images', image), '--platform', arch, '--per-platform', '--push', `${registry.host}/distill/${image}`,
      '--cache-repo', cacheRepo, '--sign-key', join(keys, 'cosign.key'), '--cache', join(dir, 'cache'), '--json', ...mirrors,
    ];
    const amd = temp('amd64');
    const arm = temp('arm64');
    // The workers run one after the other (two cores); the arm64 one is killed as soon as an upload
    // session of python3 is open in the registry — its build is done and its push has begun.
    const uploads = join(registry.storage, 'docker', 'registry', 'v2', 'repositories', 'distill', 'python3', '_uploads');
    const a = await distill(worker('python3', 'amd64', amd), amd);
    assert.equal(a.code, 0, a.stderr);
    const before = entries(uploads);
    const killed = await distill(worker('python3', 'arm64', arm), arm, () => entries(uploads) > before);
    assert.equal(killed.signal, 'SIGKILL', `the arm64 worker was to be killed mid-push: ${killed.stderr}`);
    const aOut = JSON.parse(a.stdout) as { layers: { image: string; source: string }[]; pushed: { pushed: { tag: string }[] } };
    assert.deepEqual(aOut.pushed.pushed.map((p) => p.tag).sort(), ['debug-amd64', 'debug-nonroot-amd64', 'latest-amd64', 'nonroot-amd64'], 'a worker pushes only its <variant>-<arch> tags');

    const client = new RegistryClient(registry.host);
    const tags = async (name: string): Promise<string[]> => (await client.listTags(`distill/${name}`)).filter((t) => !t.startsWith('sha256-')).sort();
    try {
      // A worker killed mid-push leaves no tag, and the join refuses, naming what is missing.
      assert.ok(!(await tags('python3')).some((t) => t.endsWith('-arm64')), 'a worker killed mid-push leaves no tag');
      const early = await distill(['index', join(repoRoot, 'images', 'python3'), '--push', repo], temp('join0'));
      assert.equal(early.code, 1);
      assert.match(early.stderr, /^distill: .*python3:latest-arm64.* \[PLATFORM_MISSING\]$/m);
      assert.match(early.stderr, /^hint: .*--platform arm64 --per-platform/m);
      assert.ok(!early.stderr.includes('    at '), 'no stack trace');
      // The rerun: same working directory and cache, picks up where the killed one stopped.
      const rerun = await distill(worker('python3', 'arm64', arm), arm);
      assert.equal(rerun.code, 0, rerun.stderr);
      assert.deepEqual(await tags('python3'), ['debug-amd64', 'debug-arm64', 'debug-nonroot-amd64', 'debug-nonroot-arm64', 'latest-amd64', 'latest-arm64', 'nonroot-amd64', 'nonroot-arm64'], 'no multi-arch tag before the join');

      const j = await distill(['index', join(repoRoot, 'images', 'python3'), '--push', repo, '--sign-key', join(keys, 'cosign.key'), '--json'], temp('join'));
      assert.equal(j.code, 0, j.stderr);
      const joined = JSON.parse(j.stdout) as { variants: { variant: string; index: string; manifests: { arch: string; digest: string }[] }[]; provenance: { predicate: { runDetails: { byproducts: { annotations: { platforms: string } }[] } } } };
      for (const v of joined.variants) {
        assert.equal(v.index, expected['python3']![v.variant]!['index'], `python3:${v.variant} index is the one-machine build's`);
        for (const m of v.manifests) assert.equal(m.digest, expected['python3']![v.variant]![m.arch], `python3:${v.variant}-${m.arch}`);
        const got = await client.getManifest('distill/python3', v.variant);
        assert.equal(got.digest, v.index, `the ${v.variant} tag names the joined index`);
      }
      assert.equal(joined.variants.length, 4);
      // The provenance merges both workers' records (the rerun's arm64 record, not the killed run's).
      assert.deepEqual(joined.provenance.predicate.runDetails.byproducts.map((b) => b.annotations.platforms).sort(), ['amd64', 'arm64']);
      const verified = await distill(['verify', `${repo}:latest`, '--key', join(keys, 'cosign.pub')], temp('verify'));
      assert.equal(verified.code, 0, verified.stderr);
      const att = await distill(['verify-attestation', `${repo}:latest`, '--key', join(keys, 'cosign.pub'), '--type', 'slsaprovenance1'], temp('verify'));
      assert.equal(att.code, 0, att.stderr);

      // A third worker with an empty cache: nodejs amd64 takes every base layer from the registry cache.
      const node = temp('nodejs');
      const n = await distill([...worker('nodejs', 'amd64', node), '--variant', 'latest'], node);
      assert.equal(n.code, 0, n.stderr);
      const nOut = JSON.parse(n.stdout) as { layers: { image: string; source: string }[]; variants: { manifests: { digest: string }[] }[] };
      assert.deepEqual(nOut.layers.map((l) => [l.image, l.source]), [['static', 'registry cache'], ['base-nossl', 'registry cache'], ['base', 'registry cache'], ['cc', 'registry cache'], ['nodejs', 'built']]);
      assert.equal(nOut.variants[0]!.manifests[0]!.digest, expected['nodejs']!['latest']!['amd64']);
      assert.ok(aOut.layers.every((l) => l.source === 'built'), 'the first worker built everything');
    } finally {
      await client.close();
    }

  } finally {
    await registry.stop();
    for (const d of made) rmSync(d, { recursive: true, force: true });
  }
});

function entries(dir: string): number {
  try {
    return readdirSync(dir).length;
  } catch {
    return 0;
  }
}
