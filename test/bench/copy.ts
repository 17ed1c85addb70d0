// Copy and append figures, in one run against two docker-registry instances on 127.0.0.1:
// - `distill copy` of python3 and java (every platform) from registry A to registry B vs
//   `skopeo copy --all` of the same tag between the same registries (target ≤ 0.6×);
// - a copy within registry A to another repository: every blob mounted (target 0 blob bytes uploaded);
// - `distill append` of a 1 MB app onto python3 from registry A, pushed to A (target < 1 s).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendImage } from '../../src/append.js';
import { buildImage } from '../../src/build.js';
import { copyImage } from '../../src/copy.js';
import { pushLayout } from '../../src/registry/push.js';
import { needsRegistry, startRegistry } from '../helpers/registry.js';
import { repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';

export async function benchCopy(): Promise<string[]> {
  const snap = snapshotDir();
  if (snap === undefined) return ['copy: skipped — the Debian snapshot is not present'];
  const { skip } = needsRegistry();
  if (skip) return [`copy: skipped — ${skip}`];
  if (spawnSync('sh', ['-c', 'command -v skopeo']).status !== 0) return ['copy: skipped — skopeo is not installed'];
  const lines: string[] = [];
  const work = mkdtempSync(join(tmpdir(), 'distill-bench-copy-'));
  const a = await startRegistry();
  const b = await startRegistry();
  try {
    for (const image of ['python3', 'java']) {
      const out = join(work, image);
      await buildImage(join(repoRoot, 'images', image, 'image.yaml'), { cacheDir: join(work, 'cache'), mirrors: { flags: snapshotMirrors(snap), aptSources: [] }, outDir: out, variants: ['latest'] });
      await pushLayout(out, `${a.host}/src/${image}`, { refs: ['latest'] });
      let t = performance.now();
      const r = await copyImage(`${a.host}/src/${image}:latest`, `${b.host}/distill/${image}:latest`);
      const ours = (performance.now() - t) / 1000;
      t = performance.now();
      const s = spawnSync('skopeo', ['copy', '--all', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${a.host}/src/${image}:latest`, `docker://${b.host}/skopeo/${image}:latest`], { encoding: 'utf8' });
      if (s.status !== 0) throw new Error(`skopeo copy failed: ${s.stderr}`);
      const theirs = (performance.now() - t) / 1000;
      t = performance.now();
      const same = await copyImage(`${a.host}/src/${image}:latest`, `${a.host}/promoted/${image}:latest`);
      const mounted = (performance.now() - t) / 1000;
      lines.push(
        `copy ${image} (all platforms, ${(r.stats.bytesUploaded / 1e6).toFixed(1)} MB of blobs): distill ${ours.toFixed(2)} s; skopeo copy --all ${theirs.toFixed(2)} s; ratio ${(ours / theirs).toFixed(2)}x (target ≤ 0.6x)`,
        `  same-registry copy: ${mounted.toFixed(2)} s, ${same.stats.blobsMounted} blobs mounted, ${same.stats.bytesUploaded} blob bytes uploaded (target 0)`,
      );
    }
    const appDir = join(work, 'app');
    mkdirSync(appDir);
    writeFileSync(join(appDir, 'main.py'), 'print("hello")\n');
    writeFileSync(join(appDir, 'data.bin'), randomBytes(1024 * 1024));
    const t = performance.now();
    const r = await appendImage(`${a.host}/src/python3:latest`, { layers: [`${appDir}:/app`], entrypoint: ['/usr/bin/python3', '/app/main.py'], push: `${a.host}/app/python3-app:1` });
    const secs = (performance.now() - t) / 1000;
    lines.push(`append 1 MB app onto python3 from a registry, pushed: ${secs.toFixed(2)} s (target < 1 s), ${r.stats?.blobsMounted ?? 0} base blobs mounted, ${((r.stats?.bytesUploaded ?? 0) / 1e6).toFixed(2)} MB uploaded`);
  } finally {
    await a.stop();
    await b.stop();
    rmSync(work, { recursive: true, force: true });
  }
  return lines;
}
