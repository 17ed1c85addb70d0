// The GitHub Actions workflow, checked against SchemaStore's github-workflow.json as published on npm
// inside @action-validator/core 0.6.0 (the schema compiled into its validator; GPL-3.0, a test-only
// devDependency, never shipped). GitHub's own @actions/workflow-parser needs JSON import attributes
// that Node 20 lacks, so it is not used. The schema is not ours to soften: what it refuses fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parse } from 'yaml';
import { validateWorkflow } from '@action-validator/core';
import { imageMatrix } from '../../src/pipeline/plan.js';
import { githubWorkflow } from '../../src/pipeline/github.js';
import { repoRoot } from '../helpers/paths.js';

function schemaErrors(text: string): string[] {
  const a = validateWorkflow(text).errors.map((e) => `schemastore: ${e.title}${'path' in e ? ` at ${e.path}` : ''}${e.detail ? `: ${e.detail}` : ''}`);
  return a;
}

test("the workflow for images/ is valid against SchemaStore's github-workflow schema and follows extends", async () => {
  const matrix = await imageMatrix(join(repoRoot, 'images'), repoRoot);
  const text = githubWorkflow(matrix);
  assert.deepEqual(schemaErrors(text), []);
  const wf = parse(text) as { jobs: Record<string, { needs?: string[]; 'runs-on': string; strategy?: { matrix: { include: { arch: string; runner: string; qemu: boolean }[] } }; steps: { run?: string }[] }> };
  for (const img of matrix.images) {
    const build = wf.jobs[`build-${img.name}`]!;
    assert.ok(build, `a build job for ${img.name}`);
    assert.deepEqual(build.needs, img.base ? [`build-${img.base}`] : undefined, `${img.name} waits for the workers of ${img.base ?? 'nothing'}`);
    const include = build.strategy!.matrix.include;
    assert.deepEqual(include.map((i) => i.arch), img.architectures);
    for (const i of include) {
      assert.equal(i.runner, i.arch === 'arm64' ? 'ubuntu-24.04-arm' : 'ubuntu-24.04');
      assert.equal(i.qemu, i.arch !== 'arm64' && i.arch !== 'amd64');
    }
    const run = build.steps.map((s) => s.run ?? '').join('\n');
    assert.match(run, new RegExp(`distill build ${img.path} --platform "\\$\\{\\{ matrix.arch \\}\\}" --per-platform --push "\\$REGISTRY/${img.name}" --cache-repo`));
    const index = wf.jobs[`index-${img.name}`]!;
    assert.deepEqual(index.needs, [`build-${img.name}`]);
    assert.match(index.steps.map((s) => s.run ?? '').join('\n'), new RegExp(`distill index ${img.path} --push "\\$REGISTRY/${img.name}"`));
  }
  // Bases come first in the file, as they run first.
  const order = Object.keys(wf.jobs);
  assert.ok(order.indexOf('build-static') < order.indexOf('build-base') && order.indexOf('build-cc') < order.indexOf('build-python3'));
});

test('the validators refuse what GitHub refuses (the check can fail)', async () => {
  const matrix = await imageMatrix(join(repoRoot, 'images', 'static'), repoRoot);
  const good = githubWorkflow(matrix);
  assert.deepEqual(schemaErrors(good), []);
  const badKey = good.replace('runs-on: ${{ matrix.runner }}', 'runs-on: ${{ matrix.runner }}\n    runs_on_typo: x');
  assert.ok(schemaErrors(badKey).length > 0, 'an unknown job key is refused');
  const badNeeds = good.replace('needs:\n      - build-static', 'needs: {job: build-static}');
  assert.ok(schemaErrors(badNeeds).length > 0, 'needs as a mapping is refused');
});

test('distill pipeline: writes the file it is asked for; an unknown engine is a usage error', async () => {
  const { main } = await import('../../src/cli/main.js');
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'distill-pipeline-'));
  try {
    let stderr = '';
    const io = { stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) }, env: {} };
    const out = join(dir, 'distill.yml');
    assert.equal(await main(['pipeline', join(repoRoot, 'images'), '--root', repoRoot, '--engine', 'github', '--out', out], io), 0, stderr);
    assert.deepEqual(schemaErrors(readFileSync(out, 'utf8')), []);
    assert.match(readFileSync(out, 'utf8'), /distill build images\/python3 /);
    assert.equal(await main(['pipeline', join(repoRoot, 'images'), '--engine', 'jenkins'], io), 2);
    assert.match(stderr, /\[USAGE\]/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
