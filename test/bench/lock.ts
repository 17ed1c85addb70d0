// Lock-stage figures: parsing the full trixie amd64 Packages index, and locking python3 (the whole
// cc → base → base-nossl → static chain), against baselines measured in the same run: `xz -dc` of the
// same index (the decompression floor) and apt resolving the same closure from the same mirror.
import { spawnSync } from 'node:child_process';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ContentStore } from '../../src/cas/store.js';
import { readPackagesIndex } from '../../src/debian/packages-index.js';
import { readInRelease } from '../../src/debian/release.js';
import { loadKeyring, lockImages } from '../../src/lock/lock.js';
import { readFileSync } from 'node:fs';
import { aptAvailable, aptResolve } from '../helpers/apt-resolve.js';
import { repoRoot, snapshotDir, snapshotMirrors, systemKeyring } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const r = await fn();
  return [(performance.now() - t) / 1000, r];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function benchLock(): Promise<string[]> {
  const snap = snapshotDir();
  if (snap === undefined) return ['lock: skipped — the Debian snapshot (../shared/debian-snapshot) is not present'];
  const lines: string[] = [];
  const cache = tempDir('distill-bench-');
  const store = new ContentStore(cache);
  const release = readInRelease(readFileSync(join(snap, 'debian', 'dists', 'trixie', 'InRelease')), {
    keyring: await loadKeyring(systemKeyring),
    allowExpired: true,
    now: new Date(),
    what: 'trixie InRelease',
  });
  const ref = { archive: 'debian', mirror: pathToFileURL(join(snap, 'debian')).href, release, suite: 'trixie', component: 'main', arch: 'amd64' };
  const indexPath = join(snap, 'debian', 'dists', 'trixie', 'main', 'binary-amd64', 'Packages.xz');

  const xzTimes: number[] = [];
  const parseTimes: number[] = [];
  let records = 0;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    spawnSync('sh', ['-c', `xz -dc '${indexPath}' > /dev/null`]);
    xzTimes.push((performance.now() - t) / 1000);
    records = 0;
    const [s] = await time(() => readPackagesIndex(store, ref, () => records++));
    parseTimes.push(s);
  }
  const px = median(parseTimes);
  const bx = median(xzTimes);
  lines.push(`index: trixie amd64 Packages.xz (${records} packages, 56.6 MB): verify + decompress + parse ${px.toFixed(2)} s (median of 3); xz -dc alone ${bx.toFixed(2)} s; ratio ${(px / bx).toFixed(2)}x`);

  const images = join(tempDir('distill-bench-img-'), 'images');
  cpSync(join(repoRoot, 'images'), images, { recursive: true });
  const opts = { cacheDir: cache, keyring: systemKeyring, allowExpired: true, mirrors: { flags: snapshotMirrors(snap), aptSources: [] } };
  const [cold] = await time(() => lockImages([join(images, 'python3', 'image.yaml'), join(images, 'cc', 'image.yaml'), join(images, 'base', 'image.yaml'), join(images, 'base-nossl', 'image.yaml'), join(images, 'static', 'image.yaml')], opts));
  lines.push(`lock python3 and its bases (amd64 + arm64, 2 archives, warm index cache): ${cold.toFixed(2)} s`);
  if (await aptAvailable()) {
    const work = tempDir('distill-bench-apt-');
    const mirrors = snapshotMirrors(snap);
    const [aptS] = await time(async () => {
      for (const arch of ['amd64', 'arm64']) {
        await aptResolve({
          sources: [
            { url: mirrors['debian']!, suite: 'trixie', components: ['main'] },
            { url: mirrors['debian-security']!, suite: 'trixie-security', components: ['main'] },
          ],
          keyring: systemKeyring,
          arch,
          packages: ['base-files', 'ca-certificates', 'media-types', 'netbase', 'tzdata', 'tzdata-legacy', 'libc6', 'libssl3t64', 'libzstd1', 'openssl', 'zlib1g', 'gcc-14-base', 'libgcc-s1', 'libgomp1', 'libstdc++6', 'libpython3.13-stdlib', 'python3.13-minimal'],
          exclude: ['debconf', 'mawk'],
          allowExpired: true,
          workDir: join(work, arch),
        });
      }
    });
    lines.push(`  baseline: apt-get update + install -s of the same closure (amd64 + arm64): ${aptS.toFixed(2)} s; distill/apt ${(cold / aptS).toFixed(2)}x`);
  }
  return lines;
}
