// `npm run build`'s last step: the command line bundled from tsc's output (dist/src) with its
// dependencies, into dist/src/bundle/ — what package.json "bin" runs:
//   distill.js        the executable (src/cli/launch.ts): loads distill-cli.cjs with V8's code cache
//   distill-cli.cjs   the CLI (src/cli/main.ts), the library and yaml, yargs, undici's client: one script
//   stage-worker.js, gzip-worker.js   the worker threads' entry points, each one ES module
// A fresh process then reads and compiles four files instead of ~50 (`--help`) or ~240 (a build; yaml
// alone is 73 files): README, "Dependencies and decisions", has the measured start-up cost.
//
// The files sit three directories below the package root, as every module of dist/src does, so each
// `new URL('../../../wasm/…', import.meta.url)` finds the same file; stage-pool and gzip start their
// workers from `new URL('./stage-worker.js' | './gzip-worker.js', import.meta.url)`, which from the
// bundle is its sibling. The library (package.json "exports") is not bundled: it stays tsc's output,
// which `npm test` tests.
import { build } from 'esbuild';
import { chmodSync, writeFileSync } from 'node:fs';

const outdir = 'dist/src/bundle';
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
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
};

const esm = await build({
  ...common,
  entryPoints: { distill: 'dist/src/cli/launch.js', 'stage-worker': 'dist/src/build/stage-worker.js', 'gzip-worker': 'dist/src/layer/gzip-worker.js' },
  outdir,
  format: 'esm',
  // yaml and yargs' helpers are CommonJS: inside an ES module their require() of Node's built-ins needs one.
  banner: { js: "import { createRequire as __distillCreateRequire } from 'node:module'; const require = __distillCreateRequire(import.meta.url);" },
});
// A script, not a module, so that launch.ts can hand V8 its code cache (node:vm's Script; Node 20 has
// none for modules). import.meta.url is the script's own file URL.
const cjs = await build({
  ...common,
  entryPoints: { 'distill-cli': 'dist/src/cli/main.js' },
  outdir,
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  define: { 'import.meta.url': '__distillUrl' },
  // "use strict" first, so that it is the directive of the function launch.ts wraps the script in: the
  // library's ES modules were strict code and stay so.
  banner: { js: "'use strict'; const __distillUrl = require('node:url').pathToFileURL(__filename).href;" },
});
chmodSync(`${outdir}/distill.js`, 0o755);
if (process.env.DISTILL_BUNDLE_META !== undefined) writeFileSync(process.env.DISTILL_BUNDLE_META, JSON.stringify([esm.metafile, cjs.metafile]));
