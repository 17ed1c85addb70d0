// The hostile suite's tools: the CLI run in-process (or as a child, to SIGKILL it), the assertion that
// a failure is the one-line coded error a user is promised, a synthetic signed archive to lock and
// build from, and directory snapshots to prove that nothing was lost or half-written.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { makeArchive, type SynthArchive, type SynthPackage } from '../helpers/synthetic-archive.js';
import { repoRoot } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: { HOME: '/nonexistent', ...env },
  });
  return { code, stdout, stderr };
}

const STACK_LINE = /^\s+at .+:\d+:\d+\)?$/m;

/** A refusal as promised: non-zero exit, `distill: … [CODE]` first, a `hint:` line, no stack trace. */
export function assertRefused(r: CliResult, code: string, what = ''): void {
  const ctx = `${what}\n--- stderr ---\n${r.stderr}`;
  assert.notEqual(r.code, 0, `exit status 0 ${ctx}`);
  assert.doesNotMatch(r.stderr, STACK_LINE, `a stack trace ${ctx}`);
  assert.doesNotMatch(r.stderr, /INTERNAL/, `INTERNAL ${ctx}`);
  assert.match(r.stderr, new RegExp(`^distill: .+ \\[${code}\\]$`, 'm'), `expected [${code}] ${ctx}`);
  assert.match(r.stderr, /^hint: \S/m, `no hint ${ctx}`);
}

export const bin = join(repoRoot, 'dist', 'src', 'bundle', 'distill.js');

/** The CLI as a child process; `killWhen` sees stderr as it grows and may SIGKILL it. */
export function spawnCli(args: string[], opts: { env?: Record<string, string>; killWhen?: (stderr: string) => boolean; killAfterMs?: number } = {}): Promise<CliResult & { killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { PATH: process.env['PATH'] ?? '', HOME: '/nonexistent', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let killed = false;
    const kill = (): void => {
      if (!killed && child.exitCode === null) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    const timer = opts.killAfterMs !== undefined ? setTimeout(kill, opts.killAfterMs) : undefined;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (opts.killWhen?.(stderr)) kill();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr, killed });
    });
  });
}

/** path → sha256 (files), link target (symlinks) or 'dir', for every entry below `root`. */
export function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(p);
      if (st.isDirectory()) {
        out.set(r, 'dir');
        walk(p, r);
      } else if (st.isSymbolicLink()) out.set(r, `-> ${readlinkSync(p)}`);
      else out.set(r, createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(root, '');
  return out;
}

/** Provenance records when and by which invocation a build ran: everything else is byte-identical. */
export function withoutProvenance(s: Map<string, string>): Map<string, string> {
  return new Map([...s].filter(([k]) => !k.endsWith('provenance.intoto.json')));
}

export interface World {
  dir: string;
  archive: SynthArchive;
  images: string;
  cache: string;
  /** Flags every lock/build needs: the synthetic keyring and the cache. */
  flags: string[];
  /** Write images/<name>/image.yaml. */
  define(name: string, yaml: string): string;
}

export const APP: SynthPackage = { name: 'app', version: '1.0-1', architecture: 'amd64', depends: 'libapp', files: { 'usr/bin/app': '#!/bin/true\n' } };
export const LIBAPP: SynthPackage = { name: 'libapp', version: '2.0-1', architecture: 'amd64', files: { 'usr/lib/libapp.so.2': 'not really a library\n' } };

/** A signed synthetic archive (file:// mirror) holding `packages`, and an images directory beside it. */
export async function makeWorld(packages: SynthPackage[], prefix = 'distill-hostile-'): Promise<World> {
  const dir = tempDir(prefix);
  const archive = await makeArchive(join(dir, 'mirror'), [{ archiveName: 'debian', suite: 'trixie', architectures: ['amd64'], packages }]);
  const images = join(dir, 'images');
  const cache = join(dir, 'cache');
  mkdirSync(images, { recursive: true });
  return {
    dir,
    archive,
    images,
    cache,
    flags: ['--keyring', archive.key.keyringPath, '--cache', cache, '--mirror', `debian=${archive.url('debian')}`],
    define(name: string, yaml: string): string {
      mkdirSync(join(images, name), { recursive: true });
      writeFileSync(join(images, name, 'image.yaml'), yaml);
      return join(images, name);
    },
  };
}

export function simpleDefinition(packages: string[], extra = ''): string {
  return `sources:\n  debian:\n    suite: trixie\narchitectures: [amd64]\npackages: [${packages.join(', ')}]\nvariants: [latest]\n${extra}`;
}

/** Lock must succeed (a setup step, not what is tested). */
export async function mustLock(w: World, image: string): Promise<void> {
  const r = await cli(['lock', image, ...w.flags]);
  assert.equal(r.code, 0, r.stderr);
}

export async function mustBuild(w: World, image: string, out: string, extra: string[] = []): Promise<void> {
  const r = await cli(['build', image, '--out', out, ...w.flags, ...extra]);
  assert.equal(r.code, 0, r.stderr);
}

/** The lock of images/<name>, parsed, and a writer for a hostile edit of it. */
export function readLockOf(image: string): any {
  return JSON.parse(readFileSync(join(image, 'image.lock.json'), 'utf8'));
}
export function writeLockOf(image: string, lock: unknown): void {
  writeFileSync(join(image, 'image.lock.json'), JSON.stringify(lock, null, 2) + '\n');
}

/**
 * Replace package `name`'s .deb in the mirror with `bytes` and point the lock at it (size, sha256):
 * a lock is untrusted text, so an attacker can pin any bytes they like — the build must still refuse.
 */
export function swapDeb(w: World, image: string, name: string, bytes: Buffer): void {
  const lock = readLockOf(image);
  const p = lock.architectures.amd64.packages.find((x: { name: string }) => x.name === name);
  assert.ok(p, `${name} is locked`);
  writeFileSync(join(w.archive.root, 'debian', p.filename), bytes);
  p.size = bytes.length;
  p.sha256 = createHash('sha256').update(bytes).digest('hex');
  writeLockOf(image, lock);
}

/** A crafted .deb that says it is `name` `version` (so only its contents are hostile). */
export function controlFor(name: string, version = '1', arch = 'amd64'): string {
  return `Package: ${name}\nVersion: ${version}\nArchitecture: ${arch}\nMaintainer: Test <test@example.invalid>\nDescription: crafted\n`;
}
