// `distill fetch`: flags → fetchImages.
import type { Argv } from 'yargs';
import type { CliIo } from '../io.js';
import { commonOptions, lockOptionsFrom, type CommonArgs } from './common.js';

interface FetchArgs extends CommonArgs {
  definitions: string[];
  concurrency: number;
  arch?: string[];
}

export function fetchCommand(io: CliIo) {
  return {
    command: 'fetch <definitions..>',
    describe: 'Download every .deb the locks pin into the content-addressed cache, verifying size and sha256',
    builder: (y: Argv) =>
      commonOptions(y)
        .positional('definitions', { type: 'string', array: true, describe: 'image.yaml files, image directories, or images/' })
        .option('concurrency', { type: 'number', default: 4, describe: 'parallel downloads' })
        .option('arch', { type: 'string', array: true, describe: 'only these architectures' })
        .example('$0 fetch images/python3 --mirror debian=file:///srv/snapshot/debian', 'fill the cache for python3'),
    handler: async (argv: FetchArgs) => {
      const [{ findDefinitions }, { fetchImages }] = await Promise.all([import('../../definition/find.js'), import('../../fetch/images.js')]);
      const files = await findDefinitions(argv.definitions);
      const { opts, done } = await lockOptionsFrom(argv, io);
      let s;
      try {
        s = await fetchImages(files, {
          cacheDir: opts.cacheDir,
          mirrors: opts.mirrors!,
          concurrency: argv.concurrency,
          ...(argv.arch ? { architectures: argv.arch } : {}),
          ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
        });
      } finally {
        done();
      }
      if (argv.json) io.stdout.write(JSON.stringify({ cache: opts.cacheDir, ...s }, null, 2) + '\n');
      else io.stdout.write(`${s.files} .debs (${(s.bytes / 1e6).toFixed(1)} MB) in ${opts.cacheDir}: ${s.downloaded} downloaded (${(s.downloadedBytes / 1e6).toFixed(1)} MB), ${s.files - s.downloaded} already cached\n`);
    },
  };
}
