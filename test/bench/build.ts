// Build-stage figures, in one run on the same .debs with a warm .deb cache and no layer cache:
// distill's build of python3 and java (amd64, latest only) against the native shell pipeline doing the
// same job — dpkg-deb -x every package, drop the same paths, GNU tar --sort=name --mtime=@N
// --owner=0 --group=0 --numeric-owner, gzip -n -6, sha256sum — and against mmdebstrap, the Debian tool
// a user would reach for (`--variant=extract` of the same closure, pinned versions, into a tarball, then
// gzip -n -6; it also reads the snapshot's Packages indexes, which is part of what it costs a user);
// and every standard image's size.
//
// Method: the machines are noisy (the same build varies ±30 % through a day), so the two are timed
// alternately, native then distill, DISTILL_BENCH_REPS times (default 3), and the figures are medians; every
// timed run starts after `sync`, so the dirty pages of the previous step (the native pipeline's unpacked
// tree, mmdebstrap's tarball) are not written back on the next run's time. mmdebstrap runs once, after.
import { spawnSync } from 'node:child_process';
import { rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage } from '../../src/build.js';
import { ContentStore } from '../../src/cas/store.js';
import { loadLockChain } from '../../src/lock/load.js';
import { repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

const bin = join(repoRoot, 'dist', 'src', 'bundle', 'distill.js');

interface Timed {
  seconds: number;
  maxRssKb: number | undefined;
  /** user + system CPU seconds of the process and its children, where /usr/bin/time is present. */
  cpu: number | undefined;
}

/** Writes back dirty pages so that the previous step's writes are not charged to the next timed run. */
function settle(): void {
  spawnSync('sync');
}

function timed(cmd: string, args: string[]): Timed {
  const haveTime = existsSync('/usr/bin/time');
  const t = performance.now();
  const r = haveTime ? spawnSync('/usr/bin/time', ['-f', '%M %U %S', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 }) : spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const m = haveTime ? /(\d+) ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr.trim()) : null;
  return { seconds, maxRssKb: m ? Number(m[1]) : undefined, cpu: m ? Number(m[2]) + Number(m[3]) : undefined };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

const DROP = ['usr/share/doc', 'usr/share/man', 'usr/share/info', 'usr/share/lintian', 'usr/share/linda', 'usr/share/groff', 'usr/share/bug', 'usr/share/locale', 'usr/share/doc-base', 'usr/share/menu'];

async function nativePipeline(image: string, cacheDir: string): Promise<number> {
  const chain = await loadLockChain(join(repoRoot, 'images', image, 'image.yaml'));
  const store = new ContentStore(cacheDir);
  const debs = chain.flatMap((li) => li.lock.architectures['amd64']!.packages).map((p) => store.blobPath(p.sha256));
  const root = tempDir('distill-bench-native-');
  const script = [
    'set -e',
    `cd ${root}`,
    ...debs.map((d) => `dpkg-deb -x ${d} rootfs`),
    `rm -rf ${DROP.map((d) => `rootfs/${d}`).join(' ')}`,
    `tar --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner -C rootfs -cf - . | gzip -n -6 > layer.tar.gz`,
    'sha256sum layer.tar.gz > /dev/null',
  ].join('\n');
  const t = performance.now();
  const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
  const s = (performance.now() - t) / 1000;
  rmSync(root, { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`native pipeline failed: ${r.stderr}`);
  return s;
}

/** mmdebstrap --variant=extract of the image's amd64 closure, then gzip: seconds, or why it was skipped. */
async function mmdebstrapPipeline(image: string, snap: string): Promise<number | string> {
  if (spawnSync('mmdebstrap', ['--version']).status !== 0) return 'mmdebstrap is not installed (apt-get install mmdebstrap)';
  const chain = await loadLockChain(join(repoRoot, 'images', image, 'image.yaml'));
  const pkgs = chain.flatMap((li) => li.lock.architectures['amd64']!.packages).map((p) => `${p.name}=${p.version}`);
  const root = tempDir('distill-bench-mmdebstrap-');
  const mirrors = snapshotMirrors(snap);
  const args = [
    '--quiet', '--variant=extract', '--architectures=amd64',
    // The frozen snapshot's Release files are past Valid-Until; distill's lock checked them when made.
    '--aptopt=Acquire::Check-Valid-Until "false"',
    `--include=${pkgs.join(',')}`,
    'trixie', join(root, 'rootfs.tar'),
    // copy://: apt inside mmdebstrap's chroot cannot see file:// paths outside it.
    `deb ${mirrors['debian']!.replace(/^file:/, 'copy:')} trixie main`,
    `deb ${mirrors['debian-security']!.replace(/^file:/, 'copy:')} trixie-security main`,
  ];
  const t = performance.now();
  const r = spawnSync('mmdebstrap', args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  const g = r.status === 0 ? spawnSync('gzip', ['-n', '-6', join(root, 'rootfs.tar')], { encoding: 'utf8' }) : undefined;
  const s = (performance.now() - t) / 1000;
  rmSync(root, { recursive: true, force: true });
  if (r.status !== 0) return `mmdebstrap failed: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`;
  if (g?.status !== 0) return `gzip failed: ${g?.stderr}`;
  return s;
}

export async function benchBuild(): Promise<string[]> {
  const snap = snapshotDir();
  if (snap === undefined) return ['build: skipped — the Debian snapshot (../shared/debian-snapshot) is not present'];
  const lines: string[] = [];
  const cacheDir = tempDir('distill-bench-build-');
  // Everything the bench makes goes, also when a step fails.
  const made: string[] = [cacheDir];
  const temp = (prefix: string): string => {
    const d = tempDir(prefix);
    made.push(d);
    return d;
  };
  try {
    const mirrors = Object.entries(snapshotMirrors(snap)).flatMap(([k, v]) => ['--mirror', `${k}=${v}`]);
    const reps = Math.max(1, Number(process.env['DISTILL_BENCH_REPS'] ?? 3));
    for (const image of ['python3', 'java']) {
      // Warm the .deb cache first (not timed), then time builds that reuse no finished layer.
      timed(process.execPath, [bin, 'fetch', join(repoRoot, 'images', image), '--cache', cacheDir, ...mirrors]);
      const natives: number[] = [];
      const ours: Timed[] = [];
      for (let i = 0; i < reps; i++) {
        settle();
        natives.push(await nativePipeline(image, cacheDir));
        settle();
        const out = temp('distill-bench-out-');
        ours.push(timed(process.execPath, [bin, 'build', join(repoRoot, 'images', image), '--out', out, '--variant', 'latest', '--platform', 'amd64', '--no-layer-cache', '--cache', cacheDir, ...mirrors]));
        rmSync(out, { recursive: true, force: true });
      }
      const out = temp('distill-bench-out-');
      const args = [bin, 'build', join(repoRoot, 'images', image), '--out', out, '--variant', 'latest', '--platform', 'amd64', '--cache', cacheDir, ...mirrors];
      timed(process.execPath, args); // records the layers
      settle();
      const warm = timed(process.execPath, args);
      settle();
      const mm = await mmdebstrapPipeline(image, snap);
      const native = median(natives);
      const wall = median(ours.map((o) => o.seconds));
      const rss = ours.map((o) => o.maxRssKb).filter((x): x is number => x !== undefined);
      const cpu = ours.map((o) => o.cpu).filter((x): x is number => x !== undefined);
      const ratios = ours.map((o, i) => o.seconds / natives[i]!);
      lines.push(
        `build ${image} (amd64, latest, warm .deb cache, no layer cache, median of ${reps} alternating runs): ${wall.toFixed(2)} s` +
          (cpu.length > 0 ? ` (${median(cpu).toFixed(2)} s CPU)` : '') +
          (rss.length > 0 ? `, peak RSS ${(Math.max(...rss) / 1024).toFixed(0)} MiB` : '') +
          `; native pipeline ${native.toFixed(2)} s; ratio ${(wall / native).toFixed(2)}x (target ${image === 'java' ? '≤ 0.4x, ≤ 256 MiB' : '≤ 0.5x'})`,
      );
      lines.push(
        `  each run: distill ${ours.map((o) => o.seconds.toFixed(2)).join(', ')} s; native ${natives.map((n) => n.toFixed(2)).join(', ')} s; ` +
          `ratios ${ratios.map((r) => r.toFixed(2)).join(', ')}`,
      );
      lines.push(
        typeof mm === 'number'
          ? `  mmdebstrap --variant=extract + gzip -6 of the same closure: ${mm.toFixed(2)} s; distill/mmdebstrap ${(wall / mm).toFixed(2)}x`
          : `  mmdebstrap baseline skipped: ${mm}`,
      );
      lines.push(`  no-change rebuild (layer cache): ${warm.seconds.toFixed(2)} s`);
    }
    const sizes: string[] = [];
    for (const image of ['static', 'base-nossl', 'base', 'cc', 'python3', 'nodejs', 'java']) {
      const r = await buildImage(join(repoRoot, 'images', image, 'image.yaml'), {
        cacheDir,
        mirrors: { flags: snapshotMirrors(snap), aptSources: [] },
        outDir: temp('distill-bench-size-'),
        variants: ['latest'],
      });
      for (const m of r.variants[0]!.manifests) sizes.push(`${image}/${m.arch} ${(m.layers.reduce((n, l) => n + l.size, 0) / 1e6).toFixed(1)} MB`);
    }
    lines.push(`compressed sizes (latest): ${sizes.join(', ')}`);
    return lines;
  } finally {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  }
}
