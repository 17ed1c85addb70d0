// The committed .wasm files (libdeflate, zstd, xz) are rebuilt byte for byte from pinned Debian sources
// by wasm/<name>/build.sh; this is the one test of that, shared by each module's test file.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from './paths.js';

const has = (cmd: string, args: string[]): boolean => spawnSync(cmd, args).status === 0;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Why the wasm cannot be rebuilt here (the pinned toolchain, plus `tools` a build script needs), or undefined. */
export function wasmToolchainMissing(tools: { cmd: string; why: string }[] = []): string | undefined {
  const clang = spawnSync('clang', ['--version'], { encoding: 'utf8' });
  if (clang.status !== 0) return 'clang is not installed (apt-get install clang lld wasi-libc)';
  if (!clang.stdout.startsWith('Debian clang version 14.0.6')) return `the pinned compiler is Debian clang 14.0.6, found: ${clang.stdout.split('\n')[0]}`;
  if (!has('wasm-ld', ['--version']) && !has('wasm-ld-14', ['--version'])) return 'wasm-ld is not installed (apt-get install lld)';
  if (!existsSync('/usr/lib/wasm32-wasi/libc.a')) return 'wasi-libc is not installed (apt-get install wasi-libc)';
  for (const t of tools) if (!has(t.cmd, ['--version'])) return t.why;
  return undefined;
}

/** `wasm/<name>/build.sh` must rebuild the committed file at `committed` byte for byte. */
export function testWasmRebuild(name: string, committed: URL, tools: { cmd: string; why: string }[] = [], timeoutMs = 300_000): void {
  test(`wasm/${name}/build.sh rebuilds the committed .wasm byte for byte`, { skip: wasmToolchainMissing(tools) }, (t) => {
    const dir = mkdtempSync(join(tmpdir(), `distill-wasm-${name}-`));
    try {
      const out = join(dir, `${name}.wasm`);
      const r = spawnSync('sh', [join(repoRoot, 'wasm', name, 'build.sh'), out], { encoding: 'utf8', timeout: timeoutMs });
      if (r.status === 3) {
        t.skip(r.stderr.trim()); // no Debian mirror reachable for the pinned source: nothing was compared
        return;
      }
      assert.equal(r.status, 0, r.stderr);
      assert.equal(sha(readFileSync(out)), sha(readFileSync(committed)), 'the rebuilt .wasm differs from the committed one');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
