// Copy and append figures, against docker-registry instances on 127.0.0.1:
// - `distill copy` of python3 and java (every platform) from registry A vs `skopeo copy --all` of the
//   same tag from the same registry (target ≤ 0.6×). Like with like: the same source, a fresh target
//   registry for every single copy (nothing to HEAD-skip, no blob cache to mount from), the order of
//   the tools alternating between repetitions, and medians over DISTILL_BENCH_REPS (default 5) runs.
//   `distill copy` is timed both as the CLI process (as skopeo is: process start included) and as the
//   library call (copyImage) — in this process, warmed up, and in a fresh `node` process (no CLI), to
//   tell the CLI's own cost from a Node process's start-up and cold JIT — beside the floor: `node -e 0`
//   and `distill --help`;
// - a copy within registry A to another repository, of the image signed (cosign .sig tags and
//   Sigstore bundle referrers for the index and every platform): every blob mounted, attachments
//   included (target 0 blob bytes uploaded);
// - `distill append` of a 1 MB app onto python3 from registry A, pushed to A (target < 1 s).
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { appendImage } from '../../src/append.js';
import { buildImage } from '../../src/build.js';
import { copyImage } from '../../src/copy.js';
import { pushLayout } from '../../src/registry/push.js';
import { signImage } from '../../src/sign/sign.js';
import { needsRegistry, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const secs = (xs: number[]): string => xs.map((x) => x.toFixed(2)).join(' ');

/** CPU seconds (user + system) a process has used, from /proc (its waited-for children not included). */
function cpuOf(pid: number | 'self', children = false): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    const tick = 100; // USER_HZ on Linux
    return (Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0)) / tick;
  } catch {
    return NaN;
  }
}

/** The pid of the docker-registry serving `r` (its command line names its config beside its storage). */
function registryPid(r: RunningRegistry): number | undefined {
  const config = join(dirname(r.storage), 'config.yml');
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').includes(config)) return Number(d);
    } catch {
      // gone
    }
  }
  return undefined;
}

interface Run {
  wall: number;
  /** CPU seconds: the copying client (this process for the library, else the child), the target registry, the source registry. */
  client: number;
  target: number;
  source: number;
}

/** Time `fn` against a registry started for it alone (its start and stop are not timed), with the CPU each party spent. */
async function onFreshRegistry(a: RunningRegistry, fn: (r: RunningRegistry) => Promise<void>, inProcess: boolean): Promise<Run> {
  const r = await startRegistry();
  try {
    const aPid = registryPid(a);
    const bPid = registryPid(r);
    const before = { self: inProcess ? cpuOf('self') : cpuOf('self', true) - cpuOf('self'), a: aPid ? cpuOf(aPid) : NaN, b: bPid ? cpuOf(bPid) : NaN };
    const t = performance.now();
    await fn(r);
    const wall = (performance.now() - t) / 1000;
    const self = inProcess ? cpuOf('self') : cpuOf('self', true) - cpuOf('self');
    return { wall, client: self - before.self, target: (bPid ? cpuOf(bPid) : NaN) - before.b, source: (aPid ? cpuOf(aPid) : NaN) - before.a };
  } finally {
    await r.stop();
  }
}

const cpuLine = (name: string, runs: Run[]): string => {
  const c = median(runs.map((x) => x.client));
  const t = median(runs.map((x) => x.target));
  const s = median(runs.map((x) => x.source));
  return `${name}: client ${c.toFixed(2)} + target registry ${t.toFixed(2)} + source registry ${s.toFixed(2)} = ${(c + t + s).toFixed(2)} s CPU`;
};

/** A fresh process's library call: import copyImage and copy argv[1] (the module) argv[2] → argv[3]. */
const FRESH_COPY = 'const { copyImage } = await import(process.argv[1]); await copyImage(process.argv[2], process.argv[3]);';
const copyModule = pathToFileURL(join(repoRoot, 'dist', 'src', 'copy.js')).href;

/** The start-up floor a CLI process pays before any copy: Node itself, and the CLI parsing its flags. */
function startupLine(cli: string, reps: number): string {
  const time = (args: string[]): { wall: number; cpu: number } => {
    const walls: number[] = [];
    const cpus: number[] = [];
    for (let i = 0; i < Math.max(5, reps); i++) {
      const c = cpuOf('self', true) - cpuOf('self');
      const t = performance.now();
      run('node', args);
      walls.push((performance.now() - t) / 1000);
      cpus.push(cpuOf('self', true) - cpuOf('self') - c);
    }
    return { wall: median(walls), cpu: median(cpus) };
  };
  const bare = time(['-e', '0']);
  const help = time([cli, '--help']);
  return `start-up: node -e 0 ${bare.wall.toFixed(3)} s wall, ${bare.cpu.toFixed(2)} s CPU; distill --help ${help.wall.toFixed(3)} s wall, ${help.cpu.toFixed(2)} s CPU (medians of ${Math.max(5, reps)})`;
}

function run(cmd: string, args: string[]): void {
  const s = spawnSync(cmd, args, { encoding: 'utf8' });
  if (s.status !== 0) throw new Error(`${cmd} ${args.slice(0, 2).join(' ')} failed: ${s.stderr}`);
}

export async function benchCopy(): Promise<string[]> {
  const snap = snapshotDir();
  if (snap === undefined) return ['copy: skipped — the Debian snapshot is not present'];
  const { skip } = needsRegistry();
  if (skip) return [`copy: skipped — ${skip}`];
  if (spawnSync('sh', ['-c', 'command -v skopeo']).status !== 0) return ['copy: skipped — skopeo is not installed'];
  const reps = Math.max(1, Number(process.env['DISTILL_BENCH_REPS'] ?? 5));
  const cores = availableParallelism();
  const cli = join(repoRoot, 'dist', 'src', 'bundle', 'distill.js');
  const lines: string[] = [startupLine(cli, reps)];
  const work = mkdtempSync(join(tmpdir(), 'distill-bench-copy-'));
  const a = await startRegistry();
  try {
    for (const image of ['python3', 'java']) {
      const out = join(work, image);
      await buildImage(join(repoRoot, 'images', image, 'image.yaml'), { cacheDir: join(work, 'cache'), mirrors: { flags: snapshotMirrors(snap), aptSources: [] }, outDir: out, variants: ['latest'] });
      await pushLayout(out, `${a.host}/src/${image}`, { refs: ['latest'] });
      const src = `${a.host}/src/${image}:latest`;
      const lib: Run[] = [];
      const fresh: Run[] = [];
      const proc: Run[] = [];
      const skopeo: Run[] = [];
      let mb = 0;
      const tools: [Run[], boolean, (r: RunningRegistry) => Promise<void>][] = [
        [lib, true, async (r) => {
          const c = await copyImage(src, `${r.host}/distill/${image}:latest`);
          mb = c.stats.bytesUploaded / 1e6;
        }],
        [proc, false, async (r) => run('node', [cli, 'copy', src, `${r.host}/distill/${image}:latest`])],
        [fresh, false, async (r) => run('node', ['--input-type=module', '-e', FRESH_COPY, copyModule, src, `${r.host}/fresh/${image}:latest`])],
        [skopeo, false, async (r) => run('skopeo', ['copy', '--all', '-q', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${src}`, `docker://${r.host}/skopeo/${image}:latest`])],
      ];
      for (let i = 0; i < reps; i++) {
        // Alternate the order, so neither tool always runs on a machine the other just warmed up.
        const order = i % 2 === 0 ? tools : [...tools].reverse();
        for (const [runs, inProcess, fn] of order) runs.push(await onFreshRegistry(a, fn, inProcess));
      }
      const wall = (runs: Run[]): number => median(runs.map((x) => x.wall));
      const total = (runs: Run[]): number => median(runs.map((x) => x.client + x.target + x.source));
      const s = wall(skopeo);
      const registries = median([...lib, ...proc].map((x) => x.target + x.source));
      lines.push(
        `copy ${image} (all platforms, ${mb.toFixed(1)} MB of blobs, fresh target each run, median of ${reps}): ` +
          `distill copy ${wall(proc).toFixed(2)} s (CLI process), ${wall(lib).toFixed(2)} s (library); skopeo copy --all ${s.toFixed(2)} s; ` +
          `ratio ${(wall(proc) / s).toFixed(2)}x CLI, ${(wall(lib) / s).toFixed(2)}x library (target ≤ 0.6x)`,
        `  library call in a fresh node process (no CLI): ${wall(fresh).toFixed(2)} s, ${(wall(fresh) / s).toFixed(2)}x; client ${median(fresh.map((x) => x.client)).toFixed(2)} s CPU`,
        `  wall runs: CLI ${secs(proc.map((x) => x.wall))}; library ${secs(lib.map((x) => x.wall))}; fresh-process library ${secs(fresh.map((x) => x.wall))}; skopeo ${secs(skopeo.map((x) => x.wall))}`,
        `  CPU (medians): ${cpuLine('library', lib)}; ${cpuLine('CLI', proc)}; ${cpuLine('skopeo', skopeo)}; ` +
          `total CPU ratio ${(total(lib) / total(skopeo)).toFixed(2)}x library, ${(total(proc) / total(skopeo)).toFixed(2)}x CLI`,
        // A lower bound no client can beat here: the registries' own work, spread over every core.
        `  bound: the two registries alone spend ${registries.toFixed(2)} s CPU per copy (median over distill's runs); on ${cores} cores no client finishes under ${(registries / cores).toFixed(2)} s = ${(registries / cores / s).toFixed(2)}x skopeo`,
      );
    }
    // The same-registry copy, with attachments: sign both images (classic .sig tags and bundles).
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    for (const image of ['python3', 'java']) {
      await signImage(`${a.host}/src/${image}:latest`, { privateKey, recursive: true, format: 'both' });
      const t = performance.now();
      const same = await copyImage(`${a.host}/src/${image}:latest`, `${a.host}/promoted/${image}:latest`);
      const took = (performance.now() - t) / 1000;
      lines.push(
        `same-registry copy of ${image}, signed: ${took.toFixed(2)} s; ${same.stats.blobsMounted} blobs mounted, ${same.stats.blobsUploaded} uploaded, ` +
          `${same.stats.bytesUploaded} blob bytes uploaded (target 0); ${same.attachments.length} attachment tags, ${same.referrers.length} referrers`,
      );
    }
    const appDir = join(work, 'app');
    mkdirSync(appDir);
    writeFileSync(join(appDir, 'main.py'), 'print("hello")\n');
    writeFileSync(join(appDir, 'data.bin'), randomBytes(1024 * 1024));
    const t = performance.now();
    const r = await appendImage(`${a.host}/src/python3:latest`, { layers: [`${appDir}:/app`], entrypoint: ['/usr/bin/python3', '/app/main.py'], push: `${a.host}/app/python3-app:1` });
    const took = (performance.now() - t) / 1000;
    lines.push(`append 1 MB app onto python3 from a registry, pushed: ${took.toFixed(2)} s (target < 1 s), ${r.stats?.blobsMounted ?? 0} base blobs mounted, ${((r.stats?.bytesUploaded ?? 0) / 1e6).toFixed(2)} MB uploaded`);
  } finally {
    await a.stop();
    rmSync(work, { recursive: true, force: true });
  }
  return lines;
}
