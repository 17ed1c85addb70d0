// The reproducibility harness (`npm run repro`): build every standard image — every variant and
// platform — from the committed locks against the frozen Debian snapshot, several times under varied
// conditions, and fail unless every run gives exactly the digests in reproducibility/digests.json.
// `npm run repro -- --update` rewrites digests.json from a baseline run (commit it with the locks).
// `npm run repro -- --quick` does the baseline and one varied run.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const IMAGES = ['static', 'base-nossl', 'base', 'cc', 'python3', 'nodejs', 'java'];
export const DIGESTS_FILE = join(repo, 'reproducibility', 'digests.json');

export type Digests = Record<string, Record<string, Record<string, string>>>;

export function snapshot(): string | undefined {
  for (const c of [process.env['DISTILL_SNAPSHOT'], join(repo, '..', 'shared', 'debian-snapshot')]) {
    if (c && existsSync(join(c, 'debian', 'dists', 'trixie', 'InRelease'))) return resolve(c);
  }
  return undefined;
}

export interface Condition {
  name: string;
  env?: Record<string, string>;
  umask?: string;
  /** Run from a copy of the checkout at another path. */
  relocate?: boolean;
  cwd?: string;
  coldCache?: boolean;
  args?: string[];
  /** A command prefix such as faketime; the condition is skipped when it is not installed. */
  wrap?: string[];
}

export const CONDITIONS: Condition[] = [
  { name: 'baseline (cold cache, UTC, C locale)', coldCache: true, env: { TZ: 'UTC', LANG: 'C', LC_ALL: 'C' } },
  { name: 'TZ=Pacific/Kiritimati, LC_ALL=tr_TR.UTF-8, umask 077, cwd /, one thread', env: { TZ: 'Pacific/Kiritimati', LANG: 'tr_TR.UTF-8', LC_ALL: 'tr_TR.UTF-8' }, umask: '077', cwd: '/', args: ['--concurrency', '1', '--gzip-workers', '0', '--no-layer-cache'] },
  { name: 'checkout at another path, cold cache, many threads', relocate: true, coldCache: true, env: { TZ: 'America/St_Johns' }, umask: '002', args: ['--concurrency', '6', '--gzip-workers', '4'] },
  { name: 'clock set 7 years ahead (faketime), warm cache', wrap: ['faketime', '-f', '+7y'], env: { TZ: 'Asia/Kathmandu' }, args: ['--no-layer-cache'] },
];

function checkout(relocate: boolean): string {
  if (!relocate) return repo;
  const dest = join(mkdtempSync(join(tmpdir(), 'distill repro moved-')), 'deep', 'path', 'distill');
  mkdirSync(dest, { recursive: true });
  for (const part of ['dist', 'images', 'node_modules', 'package.json', 'src']) cpSync(join(repo, part), join(dest, part), { recursive: true });
  return dest;
}

/** One run of every image under a condition; returns the digests, or why the condition was skipped. */
export function runCondition(c: Condition, snap: string, images: readonly string[], warmCache: string): Digests | string {
  if (c.wrap && spawnSync('sh', ['-c', `command -v ${c.wrap[0]}`]).status !== 0) return `${c.wrap[0]} is not installed`;
  const root = checkout(c.relocate === true);
  const cache = c.coldCache ? mkdtempSync(join(tmpdir(), 'distill-repro-cache-')) : warmCache;
  const out: Digests = {};
  // Each image's layout goes here; only its digests are kept.
  const layouts = mkdtempSync(join(tmpdir(), 'distill-repro-out-'));
  try {
    for (const image of images) {
      const args = [
        join(root, 'dist', 'src', 'bundle', 'distill.js'), 'build', join(root, 'images', image), '--json', '--out', join(layouts, image), '--cache', cache,
        '--mirror', `debian=file://${join(snap, 'debian')}`, '--mirror', `debian-security=file://${join(snap, 'debian-security')}`, ...(c.args ?? []),
      ];
      const cmd = [...(c.wrap ?? []), process.execPath, ...args];
      const r = spawnSync('sh', ['-c', `umask ${c.umask ?? '022'}; exec "$@"`, 'sh', ...cmd], {
        cwd: c.cwd ?? root,
        encoding: 'utf8',
        maxBuffer: 1 << 26,
        timeout: 30 * 60_000,
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: cache, ...c.env },
      });
      if (r.status !== 0) throw new Error(`${c.name}: build ${image} failed:\n${r.stderr}`);
      const result = JSON.parse(r.stdout) as { variants: { variant: string; index: string; manifests: { arch: string; digest: string }[] }[] };
      out[image] = {};
      for (const v of result.variants) {
        out[image]![v.variant] = { index: v.index, ...Object.fromEntries(v.manifests.map((m) => [m.arch, m.digest])) };
      }
    }
  } finally {
    rmSync(layouts, { recursive: true, force: true });
    if (c.coldCache) rmSync(cache, { recursive: true, force: true });
    if (root !== repo) rmSync(resolve(root, '..', '..', '..'), { recursive: true, force: true });
  }
  return out;
}

export function differences(expected: Digests, actual: Digests): string[] {
  const out: string[] = [];
  for (const [image, variants] of Object.entries(actual)) {
    for (const [variant, digests] of Object.entries(variants)) {
      for (const [what, d] of Object.entries(digests)) {
        const want = expected[image]?.[variant]?.[what];
        if (want !== d) out.push(`${image}:${variant} ${what}: expected ${want ?? '(none)'}, got ${d}`);
      }
    }
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  const snap = snapshot();
  if (snap === undefined) {
    process.stderr.write('repro: the frozen Debian snapshot (../shared/debian-snapshot or $DISTILL_SNAPSHOT) is not here; nothing to check\n');
    return 1;
  }
  const update = argv.includes('--update');
  const quick = argv.includes('--quick');
  const warm = mkdtempSync(join(tmpdir(), 'distill-repro-warm-'));
  const conditions = quick ? CONDITIONS.slice(0, 2) : CONDITIONS;
  let expected: Digests | undefined = existsSync(DIGESTS_FILE) && !update ? (JSON.parse(readFileSync(DIGESTS_FILE, 'utf8')) as Digests) : undefined;
  let failed = 0;
  for (const c of conditions) {
    const t = performance.now();
    const r = runCondition(c, snap, IMAGES, warm);
    if (typeof r === 'string') {
      process.stdout.write(`skip  ${c.name}: ${r}\n`);
      continue;
    }
    if (expected === undefined) {
      writeFileSync(DIGESTS_FILE, JSON.stringify(r, null, 2) + '\n');
      expected = r;
      process.stdout.write(`wrote ${DIGESTS_FILE} from: ${c.name}\n`);
      continue;
    }
    const diffs = differences(expected, r);
    const n = Object.values(r).flatMap((v) => Object.values(v).flatMap((d) => Object.keys(d))).length;
    process.stdout.write(`${diffs.length === 0 ? 'ok   ' : 'FAIL '} ${c.name}: ${n} digests, ${((performance.now() - t) / 1000).toFixed(0)} s\n`);
    for (const d of diffs) process.stdout.write(`      ${d}\n`);
    if (diffs.length > 0) failed++;
  }
  rmSync(warm, { recursive: true, force: true });
  process.stdout.write(failed === 0 ? 'reproducible: every run matched digests.json\n' : `${failed} condition(s) differ\n`);
  return failed === 0 ? 0 : 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
