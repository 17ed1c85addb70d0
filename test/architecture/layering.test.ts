// The layout rules the code relies on, checked (as go-containerregistry's depcheck does): the CLI
// reaches the library only through src/index.ts; the library never touches `process` or the console
// (it takes the environment as an argument and reports through progress events); and no module
// imports one that comes later in the data flow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, relative } from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import { code, files, src } from '../helpers/source-code.js';

function imports(path: string): string[] {
  return [...code(path).matchAll(/^\s*(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
}

/** What src/index.ts exports, by the module it re-exports from: `./copy.js` → {copyImage, …}. */
function publicApi(): Map<string, Set<string>> {
  const api = new Map<string, Set<string>>();
  for (const m of code(join(src, 'index.ts')).matchAll(/^export\s+(?:type\s+)?\{([^}]*)\}\s*from\s+['"]([^'"]+)['"]/gm)) {
    const target = join(src, m[2]!.replace(/\.js$/, '.ts'));
    const names = api.get(target) ?? new Set<string>();
    for (const n of m[1]!.split(',')) {
      const name = n.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0]!;
      if (name !== '') names.add(name);
    }
    api.set(target, names);
  }
  return api;
}

// The CLI uses the public API only. It loads a command's library modules when that command runs
// (`await import` in the handler), so start-up does not compile the whole library: those modules are
// ones src/index.ts re-exports, and only names index.ts exports from them are taken.
test('the CLI reaches the library only through its public API (src/index.ts)', () => {
  const api = publicApi();
  for (const f of files(join(src, 'cli'))) {
    const c = code(f);
    const uses: { names: string; spec: string; typeOnly: boolean; dynamic?: true }[] = [
      ...[...c.matchAll(/^\s*import\s+(type\s+)?\{([^}]*)\}\s*from\s+['"]([^'"]+)['"]/gm)].map((m) => ({ names: m[2]!, spec: m[3]!, typeOnly: m[1] !== undefined })),
      ...[...c.matchAll(/^\s*import\s+(?:(type)\s+|(?!type\s))(?!\{)[^'"]*from\s+['"]([^'"]+)['"]/gm)].map((m) => ({ names: '*', spec: m[2]!, typeOnly: m[1] !== undefined })),
      // `const { a, b } = await import('…')` and `[{ a }, { b }] = await Promise.all([import('…'), …])`
      ...[...c.matchAll(/\{([^{}]*)\}\s*=\s*await\s+import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => ({ names: m[1]!, spec: m[2]!, typeOnly: false, dynamic: true as const })),
      ...[...c.matchAll(/\[([^\]]*)\]\s*=\s*await\s+Promise\.all\(\[([^\]]*)\]\)/g)].flatMap((m) => {
        const names = [...m[1]!.matchAll(/\{([^}]*)\}/g)].map((x) => x[1]!);
        const specs = [...m[2]!.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((x) => x[1]!);
        assert.equal(names.length, specs.length, `${relative(repoRoot, f)}: a Promise.all of imports destructures one module per import`);
        return specs.map((spec, i) => ({ names: names[i]!, spec, typeOnly: false, dynamic: true as const }));
      }),
    ];
    // An import() written some other way would escape the checks below.
    const dynamic = [...c.matchAll(/import\(/g)].length;
    assert.equal(uses.filter((u) => u.dynamic).length, dynamic, `${relative(repoRoot, f)}: every import() is destructured as \`const { a } = await import('…')\` or in an \`await Promise.all([import('…'), …])\``);
    for (const u of uses) {
      if (u.spec.startsWith('node:') || u.spec === 'yargs') continue;
      assert.ok(u.spec.startsWith('.'), `${relative(repoRoot, f)} imports the package ${u.spec}: the CLI reaches dependencies only through the library`);
      const target = join(f, '..', u.spec.replace(/\.js$/, '.ts'));
      if (target.startsWith(join(src, 'cli') + '/')) continue;
      if (target === join(src, 'index.ts')) {
        // The whole library at start-up: only its types.
        assert.ok(u.typeOnly, `${relative(repoRoot, f)} imports values from src/index.ts: take them from the module it re-exports (await import in the handler)`);
        continue;
      }
      const names = api.get(target);
      assert.ok(names !== undefined, `${relative(repoRoot, f)} imports ${u.spec}, which src/index.ts does not re-export`);
      for (const n of u.names.split(',').map((x) => x.trim().replace(/^type\s+/, '').split(/\s*:\s*|\s+as\s+/)[0]!).filter((x) => x !== '')) {
        assert.ok(names.has(n), `${relative(repoRoot, f)} imports ${n} from ${u.spec}: src/index.ts does not export it from there`);
      }
    }
  }
});

/** The relative modules a file imports statically (import … from, export … from), type-only ones excluded. */
function valueImports(path: string): string[] {
  return [...code(path).matchAll(/^\s*(?:import|export)\s+(?!type\s)[^'"]*from\s+['"](\.[^'"]+)['"]/gm)].map((m) => join(path, '..', m[1]!.replace(/\.js$/, '.ts')));
}

// Start-up cost: `distill --help` or any command first compiles every module bin.ts reaches statically.
// Keep that to the CLI, the error type and the version constant; each command loads its part of the
// library when it runs.
test('start-up loads the CLI, the error type and the version, no command implementation', () => {
  const seen = new Set<string>();
  const todo = [join(src, 'cli', 'bin.ts')];
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    todo.push(...valueImports(f));
  }
  const library = [...seen].filter((f) => !f.startsWith(join(src, 'cli') + '/')).map((f) => relative(src, f)).sort();
  assert.deepEqual(library, ['errors.ts', 'version.ts']);
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
