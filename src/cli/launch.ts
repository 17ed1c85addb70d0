#!/usr/bin/env node
// The `distill` executable of the bundle (tools/bundle.mjs makes it dist/src/bundle/distill.js, and the
// CLI itself, main.ts with the library and its dependencies, dist/src/bundle/distill-cli.cjs beside
// it); bin.ts is the same without the bundle. Touches process, as bin.ts does.
//
// Node 20 has no compile cache (module.enableCompileCache is Node 22), so every process compiled the
// 1.3 MB bundle from source, and again each function a command calls: measured here, ~30 ms of
// `--help`'s 0.12 s of CPU, ~50 ms of a `distill copy`'s 0.48 s. So the CLI is loaded as a script with
// V8's code cache: after a command has run, the code V8 compiled for it is written to the cache
// directory (one file per command, named by Node's version, the architecture and the sha256 of the
// bundle, so another bundle or Node never reads it; V8 itself refuses data made under other flags;
// only this user's files are read),
// and the next run of that command starts from it. A cache that cannot be read or written is ignored;
// DISTILL_NO_COMPILE_CACHE=1 turns it off.
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import { writeFileAtomic } from '../util/atomic-write.js';
import { defaultCacheDir, type CliIo } from './io.js';

const cli = fileURLToPath(new URL('./distill-cli.cjs', import.meta.url));
let source: string | undefined = readFileSync(cli, 'utf8');
const args = process.argv.slice(2);
const cache = compileCacheFile(process.env, source);
let cached: Buffer | undefined;
try {
  if (cache !== undefined && ownedByUs(cache.dir) && ownedByUs(cache.file)) cached = readFileSync(cache.file);
} catch {
  // none yet, or unreadable: compile from source
}
// The CommonJS wrapper Node itself puts around a module, so the bundle runs as it would under require().
const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: cli, ...(cached !== undefined ? { cachedData: cached } : {}) });
const hadCache = cached !== undefined;
// V8 has taken what it needs (the script keeps its own copy of the source): ~1 + 1.3 MB not to keep.
cached = undefined;
source = undefined;
const mod: { exports: { main?: (args: readonly string[], io: CliIo) => Promise<number>; reportUncaught?: (e: unknown, io: CliIo) => number } } = { exports: {} };
(script.runInThisContext() as (...a: unknown[]) => void)(mod.exports, createRequire(cli), mod, cli, dirname(cli));
const io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env, stdin: process.stdin };
// A throw no one awaits (an unhandled rejection is one too) ends the process as any error does (bin.ts).
process.on('uncaughtException', (e) => process.exit(mod.exports.reportUncaught!(e, io)));
process.exitCode = await mod.exports.main!(args, io);
// Written after a run that succeeded (not a usage error): what V8 compiled then is what the next run of
// that command calls.
if (cache !== undefined && process.exitCode === 0 && (!hadCache || script.cachedDataRejected === true)) await writeCompileCache(cache, script.createCachedData());

interface CacheFile {
  dir: string;
  /** What every cache file of this bundle under this Node starts with. */
  prefix: string;
  file: string;
}

function compileCacheFile(env: CliIo['env'], source: string): CacheFile | undefined {
  if (env['DISTILL_NO_COMPILE_CACHE'] !== undefined && env['DISTILL_NO_COMPILE_CACHE'] !== '') return undefined;
  // One file per command (help apart: `copy --help` compiles none of what a copy calls).
  const help = args.some((a) => a === '--help' || a === '-h' || a === '--version');
  const command = help ? 'help' : /^[a-z][a-z-]{0,31}$/.test(args[0] ?? '') ? args[0]! : 'other';
  const bundle = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = join(defaultCacheDir(env), 'v8');
  const prefix = `${process.version}-${process.arch}-${bundle}-`;
  return { dir, prefix, file: join(dir, `${prefix}${command}.bin`) };
}

/**
 * V8 trusts code cache bytes as it trusts its own heap, so a cache anyone else could have written (a
 * shared or world-writable XDG_CACHE_HOME) is never loaded: the file and its directory must be this
 * user's and writable by no one else.
 */
function ownedByUs(path: string): boolean {
  const st = lstatSync(path);
  return (st.isFile() || st.isDirectory()) && st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
}

/** Atomically: a concurrent run reads the old file or the new one, never half of one. */
async function writeCompileCache({ dir, prefix, file }: CacheFile, data: Buffer): Promise<void> {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (!ownedByUs(dir)) return;
    // The caches of a bundle or a Node that is no longer this one (an upgrade) are dropped.
    for (const f of readdirSync(dir)) if (!f.startsWith(prefix) && !f.startsWith('.')) rmSync(join(dir, f), { force: true });
    await writeFileAtomic(file, data);
  } catch {
    // a read-only or full cache directory costs the next run its compile, nothing else
  }
}
