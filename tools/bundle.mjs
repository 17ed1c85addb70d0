// `npm run build`'s last step: the CLI and the two worker entry points, each bundled from tsc's output
// (dist/src) into one ESM file with its dependencies, in dist/src/bundle/. A fresh `distill` process
// then reads and compiles three files instead of ~250 (yaml alone is 73 files, yargs ~30, undici's
// client ~40): README, "Dependencies and decisions", has the measured start-up cost.
//
// The bundles sit three directories below the package root, as every module of dist/src does, so each
// `new URL('../../../wasm/…', import.meta.url)` finds the same file; stage-pool and gzip start their
// workers from `new URL('./stage-worker.js' | './gzip-worker.js', import.meta.url)`, which from a
// bundle is its sibling bundle. The library (package.json "exports") is not bundled: it stays tsc's
// output, which `npm test` tests.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';

const entryPoints = {
  distill: 'dist/src/cli/bin.js',
  'stage-worker': 'dist/src/build/stage-worker.js',
  'gzip-worker': 'dist/src/layer/gzip-worker.js',
};

const result = await build({
  entryPoints,
  outdir: 'dist/src/bundle',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // yaml and yargs' helpers are CommonJS: inside an ES module their require() of Node's built-ins needs one.
  banner: { js: "import { createRequire as __distillCreateRequire } from 'node:module'; const require = __distillCreateRequire(import.meta.url);" },
  // Fewer bytes to scan and compile at start-up; identifiers keep their names (error names, stack frames).
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: process.env.DISTILL_BUNDLE_META !== undefined,
  plugins: [
    {
      // src/http/undici.ts loads undici's full index only should the three files it takes by path ever
      // move: left out of the bundle (the installed package), so that it does not weigh ~0.8 MB in it.
      name: 'undici-index-outside',
      setup(b) {
        b.onResolve({ filter: /^undici$/ }, () => ({ path: 'undici', external: true }));
      },
    },
  ],
});
chmodSync('dist/src/bundle/distill.js', 0o755);
if (result.metafile) (await import('node:fs')).writeFileSync(process.env.DISTILL_BUNDLE_META, JSON.stringify(result.metafile));
