// `distill diff OLD NEW`: flags → diffImages.
import type { Argv } from 'yargs';
import { DistillError } from '../../errors.js';
import { defaultCacheDir, type CliIo } from '../io.js';
import { progressRenderer } from '../progress.js';
import { registryFlags, registryOptionsFrom, type RegistryArgs } from './registry-options.js';

interface DiffArgs extends RegistryArgs {
  old: string;
  new: string;
  markdown: boolean;
  changelogs: boolean;
  key?: string;
  mirror: string[];
  cache?: string;
  'exit-code': boolean;
}

export function diffCommand(io: CliIo) {
  return {
    command: 'diff <old> <new>',
    describe: 'What changed between two locks or images: packages added, removed, upgraded, downgraded, and the CVEs the upgrades fix',
    builder: (y: Argv) =>
      registryFlags(y)
        .positional('old', { type: 'string', describe: 'a lockfile, an image directory, images/, an OCI layout from distill build --out, or a registry image' })
        .positional('new', { type: 'string', describe: 'the same kinds as OLD' })
        .option('markdown', { type: 'boolean', default: false, describe: 'a pull-request body on stdout' })
        .option('changelogs', { type: 'boolean', default: true, describe: "read the upgrades' Debian changelogs (--no-changelogs: versions only, no .deb read)" })
        .option('key', { type: 'string', describe: "the publisher's cosign.pub: verifies a registry image's provenance (required for one)" })
        .option('mirror', { type: 'string', array: true, default: [] as string[], describe: 'NAME=URL of a named archive, to fetch .debs missing from the cache (repeatable)' })
        .option('cache', { type: 'string', describe: 'content-addressed cache directory (default $XDG_CACHE_HOME/distill)' })
        .option('exit-code', { type: 'boolean', default: false, describe: 'exit 1 when any package changed (as git diff --exit-code)' })
        .example('$0 diff old/images/python3 images/python3', 'what a relock changed in python3, with the CVEs it fixes')
        .example('$0 diff old-images/ images/ --markdown > body.md', 'a pull-request body for every image')
        .example('$0 diff registry.example/distill/base:v1 registry.example/distill/base:v2 --key cosign.pub', 'two published images'),
    handler: async (argv: DiffArgs) => {
      const [{ diffImages }, { formatDiffMarkdown, formatDiffText }, { loadPublicKey, readKeyFile }, { parseMirrorFlags }] = await Promise.all([
        import('../../diff/diff.js'),
        import('../../diff/format.js'),
        import('../../sign/keys.js'),
        import('../../debian/mirrors.js'),
      ]);
      if (argv.json && argv.markdown) throw new DistillError('USAGE', '--json and --markdown cannot be combined', { hint: 'pick one output format' });
      const publicKey = argv.key === undefined ? undefined : loadPublicKey(await readKeyFile(argv.key).catch((e: unknown) => {
        throw new DistillError('KEY_INVALID', `cannot read ${argv.key}: ${(e as Error).message}`, { cause: e });
      }), argv.key);
      const { opts, done } = await registryOptionsFrom(argv, io);
      // Progress on stderr only for a terminal; warnings are in the result and printed with it.
      const progress = progressRenderer(io, !argv.json && !argv.markdown);
      let r;
      try {
        r = await diffImages(argv.old, argv.new, {
          ...opts,
          cacheDir: argv.cache ?? defaultCacheDir(io.env),
          mirrors: { flags: parseMirrorFlags(argv.mirror), env: io.env },
          changelogs: argv.changelogs,
          ...(publicKey ? { publicKey } : {}),
          onProgress: (e) => {
            if (e.type !== 'warning') progress.onProgress(e);
          },
        });
      } finally {
        progress.done();
        done();
      }
      if (argv.json) io.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else if (argv.markdown) io.stdout.write(formatDiffMarkdown(r));
      else io.stdout.write(formatDiffText(r));
      if (argv['exit-code'] && r.summary.changed) {
        throw new DistillError('LOCK_STALE', `${argv.old} and ${argv.new} differ`, { hint: 'the summary above says how (--exit-code asked for a failure on any change)' });
      }
    },
  };
}
