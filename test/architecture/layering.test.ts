// The layout rules the code relies on, checked (as go-containerregistry's depcheck does): the CLI
// reaches the library only through src/index.ts; the library never touches `process` or the console
// (it takes the environment as an argument and reports through progress events); and no module
// imports one that comes later in the data flow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoRoot } from '../helpers/paths.js';

const src = join(repoRoot, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function code(path: string): string {
  // Comments may mention process.env; only code counts.
  return readFileSync(path, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
}

function imports(path: string): string[] {
  return [...code(path).matchAll(/^\s*(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
}

test('the CLI imports the library only through src/index.ts', () => {
  for (const f of files(join(src, 'cli'))) {
    for (const i of imports(f)) {
      if (i.startsWith('node:') || i === 'yargs') continue;
      const target = join(f, '..', i.replace(/\.js$/, '.ts'));
      const ok = target === join(src, 'index.ts') || target.startsWith(join(src, 'cli') + '/');
      assert.ok(ok, `${relative(repoRoot, f)} imports ${i}`);
    }
  }
});

test('the library never touches process or the console', () => {
  for (const f of files(src)) {
    if (f.startsWith(join(src, 'cli'))) continue;
    const c = code(f);
    assert.ok(!/\bprocess\.(env|exit|stdout|stderr|argv|cwd|chdir|pid)\b/.test(c), `${relative(repoRoot, f)} uses process`);
    assert.ok(!/\bconsole\./.test(c), `${relative(repoRoot, f)} uses the console`);
  }
});

// The data flow, earliest first; a module may import from its own stage or earlier ones.
const STAGES = ['errors.ts', 'digest.ts', 'json.ts', 'events.ts', 'version.ts', 'util', 'http', 'compress', 'tar', 'cas', 'definition', 'debian', 'lock', 'fetch', 'rootfs', 'layer', 'oci', 'sources', 'sinks', 'provenance', 'build', 'build.ts', 'registry', 'source.ts', 'copy.ts', 'inspect.ts', 'sign', 'attest', 'append.ts', 'rebuild', 'rebuild.ts', 'scaleout', 'publish.ts', 'pipeline', 'diff', 'index.ts', 'cli'];

function stageOf(path: string): number {
  const top = relative(src, path).split('/')[0]!;
  const i = STAGES.indexOf(top);
  assert.ok(i >= 0, `${top} is not placed in the data flow (add it to STAGES)`);
  return i;
}

test('no module imports one that comes later in the data flow', () => {
  for (const f of files(src)) {
    for (const i of imports(f)) {
      if (!i.startsWith('.')) continue;
      const target = join(f, '..', i.replace(/\.js$/, '.ts'));
      assert.ok(stageOf(target) <= stageOf(f), `${relative(repoRoot, f)} (stage ${STAGES[stageOf(f)]}) imports ${relative(repoRoot, target)} (later stage ${STAGES[stageOf(target)]})`);
    }
  }
});

// Sources and sinks meet only at the image model (go-containerregistry's pkg/v1 shape): each one
// imports src/oci/model.ts (or builds its documents with src/oci/), and none reaches into another
// source's or sink's internals for a shape of "a blob" of its own.
const SOURCES_AND_SINKS = ['sources/oci-layout.ts', 'sources/archive.ts', 'source.ts', 'registry/source.ts', 'registry/sink.ts', 'registry/pull.ts', 'sinks/oci-layout.ts', 'copy.ts', 'append.ts'];

test('sources and sinks depend on the image model, not on each other', () => {
  for (const rel of SOURCES_AND_SINKS) {
    const f = join(src, rel);
    const targets = imports(f).filter((i) => i.startsWith('.')).map((i) => relative(src, join(f, '..', i.replace(/\.js$/, '.ts'))));
    assert.ok(targets.includes('oci/model.ts'), `${rel} does not use the image model (src/oci/model.ts)`);
    for (const t of targets) {
      if (t.startsWith('sources/') || t === 'registry/source.ts' || t === 'registry/sink.ts' || t.startsWith('sinks/')) {
        // Only the entry points may combine sources with sinks; a source never imports a sink (an
        // archive source reads the layout in its tar through the layout source's public reader).
        const isSource = rel.startsWith('sources/') || rel === 'registry/source.ts';
        const allowed = rel === 'sources/archive.ts' && t === 'sources/oci-layout.ts';
        assert.ok(rel === 'copy.ts' || rel === 'append.ts' || !isSource || allowed, `${rel} (a source) imports ${t}`);
      }
    }
  }
});
