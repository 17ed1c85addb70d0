// Push figures, in one run against a docker-registry on 127.0.0.1: distill pushing the python3 and
// java layouts (every ref) into an empty repository vs `skopeo copy oci:DIR:REF docker://…` of the
// same refs into another empty repository (target ≤ 1.0×), and a no-change re-push (target: 0 blob
// bytes, under 1 s).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage } from '../../src/build.js';
import { pushLayout } from '../../src/registry/push.js';
import { needsRegistry, startRegistry } from '../helpers/registry.js';
import { repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

export async function benchPush(): Promise<string[]> {
  const snap = snapshotDir();
  if (snap === undefined) return ['push: skipped — the Debian snapshot is not present'];
  const { skip } = needsRegistry();
  if (skip) return [`push: skipped — ${skip}`];
  if (spawnSync('sh', ['-c', 'command -v skopeo']).status !== 0) return ['push: skipped — skopeo is not installed'];
  const lines: string[] = [];
  const cacheDir = tempDir('distill-bench-push-');
  const registry = await startRegistry();
  try {
    for (const image of ['python3', 'java']) {
      const out = tempDir('distill-bench-layout-');
      await buildImage(join(repoRoot, 'images', image, 'image.yaml'), { cacheDir, mirrors: { flags: snapshotMirrors(snap), aptSources: [] }, outDir: out });
      const refs = (JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')).manifests as { mediaType: string; annotations: Record<string, string> }[]).map((m) => ({
        name: m.annotations['org.opencontainers.image.ref.name']!,
        isIndex: m.mediaType.includes('index'),
      }));
      let t = performance.now();
      const first = await pushLayout(out, `${registry.host}/bench-distill/${image}`);
      const ours = (performance.now() - t) / 1000;
      t = performance.now();
      for (const r of refs) {
        const s = spawnSync('skopeo', ['copy', ...(r.isIndex ? ['--all'] : []), '--dest-tls-verify=false', `oci:${out}:${r.name}`, `docker://${registry.host}/bench-skopeo/${image}:${r.name}`], { encoding: 'utf8' });
        if (s.status !== 0) throw new Error(`skopeo copy failed: ${s.stderr}`);
      }
      const theirs = (performance.now() - t) / 1000;
      t = performance.now();
      const again = await pushLayout(out, `${registry.host}/bench-distill/${image}`);
      const repush = (performance.now() - t) / 1000;
      lines.push(
        `push ${image} (${refs.length} refs, ${(first.bytesUploaded / 1e6).toFixed(1)} MB of blobs): distill ${ours.toFixed(2)} s; skopeo copy ${theirs.toFixed(2)} s; ratio ${(ours / theirs).toFixed(2)}x (target ≤ 1.0x)`,
        `  no-change re-push: ${repush.toFixed(2)} s, ${again.bytesUploaded} blob bytes sent (target 0 bytes, < 1 s)`,
      );
    }
  } finally {
    await registry.stop();
  }
  return lines;
}
