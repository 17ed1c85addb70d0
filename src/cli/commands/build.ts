// `distill build`: flags → buildImage.
import type { Argv } from 'yargs';
import { buildImage, DistillError, findDefinitions, type Variant } from '../../index.js';
import type { CliIo } from '../io.js';
import { commonOptions, lockOptionsFrom, type CommonArgs } from './common.js';

interface BuildArgs extends CommonArgs {
  definition: string;
  out?: string;
  tar?: string;
  variant?: string[];
  platform?: string[];
  source?: string;
  revision?: string;
  concurrency?: number;
  'gzip-workers'?: number;
  'layer-cache': boolean;
}

export function buildCommand(io: CliIo) {
  return {
    command: 'build <definition>',
    describe: 'Build an image (every variant and architecture) from its lock into an OCI layout and/or a docker archive',
    builder: (y: Argv) =>
      commonOptions(y)
        .positional('definition', { type: 'string', describe: 'images/<name>/image.yaml or its directory' })
        .option('out', { type: 'string', describe: 'write an OCI layout to DIR' })
        .option('tar', { type: 'string', describe: 'write a docker archive (docker load / podman load) to FILE' })
        .option('variant', { type: 'string', array: true, describe: 'only these variants: latest, nonroot, debug, debug-nonroot' })
        .option('platform', { type: 'string', array: true, describe: 'only these architectures (amd64, linux/arm64/v8, …)' })
        .option('source', { type: 'string', describe: 'org.opencontainers.image.source annotation' })
        .option('revision', { type: 'string', describe: 'org.opencontainers.image.revision annotation' })
        .option('concurrency', { type: 'number', describe: 'packages unpacked at once (default 2)' })
        .option('gzip-workers', { type: 'number', describe: 'gzip threads (default: one per core; 0 = none); the bytes do not depend on it' })
        .option('layer-cache', { type: 'boolean', default: true, describe: 'reuse and record finished layers in the cache (--no-layer-cache to turn off)' })
        .example('$0 build images/python3 --out out/python3', 'all four variants, amd64 and arm64')
        .example('$0 build images/static --tar static.tar --variant latest --platform amd64', 'one image for docker load'),
    handler: async (argv: BuildArgs) => {
      const [file] = await findDefinitions([argv.definition]);
      const epoch = io.env['SOURCE_DATE_EPOCH'];
      if (epoch !== undefined && epoch !== '' && !/^\d+$/.test(epoch)) {
        throw new DistillError('USAGE', `SOURCE_DATE_EPOCH=${epoch} is not a whole number of seconds`, { hint: 'unset it or set it to e.g. $(git log -1 --format=%ct)' });
      }
      const variants = argv.variant?.flatMap((v) => v.split(',')) as Variant[] | undefined;
      for (const v of variants ?? []) {
        if (!['latest', 'nonroot', 'debug', 'debug-nonroot'].includes(v)) throw new DistillError('USAGE', `--variant ${v}: unknown variant`, { hint: 'latest, nonroot, debug or debug-nonroot' });
      }
      const { opts, done } = lockOptionsFrom(argv, io);
      let result;
      try {
        result = await buildImage(file!, {
          cacheDir: opts.cacheDir,
          mirrors: opts.mirrors!,
          ...(argv.out !== undefined ? { outDir: argv.out } : {}),
          ...(argv.tar !== undefined ? { tarFile: argv.tar } : {}),
          ...(variants ? { variants } : {}),
          ...(argv.platform ? { platforms: argv.platform.flatMap((p) => p.split(',')) } : {}),
          ...(epoch ? { sourceDateEpoch: Number(epoch) } : {}),
          ...(argv.concurrency !== undefined ? { concurrency: argv.concurrency } : {}),
          ...(argv['gzip-workers'] !== undefined ? { gzipWorkers: argv['gzip-workers'] } : {}),
          ...(argv['layer-cache'] ? {} : { noLayerCache: true }),
          annotations: { ...(argv.source ? { source: argv.source } : {}), ...(argv.revision ? { revision: argv.revision } : {}) },
          ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
        });
      } finally {
        done();
      }
      if (argv.json) {
        io.stdout.write(JSON.stringify(result, null, 2) + '\n');
        return;
      }
      for (const v of result.variants) {
        io.stdout.write(`${result.image}:${v.variant} ${v.index}\n`);
        for (const m of v.manifests) {
          const size = m.layers.reduce((n, l) => n + l.size, 0);
          io.stdout.write(`  ${v.variant}-${m.arch} ${m.digest} (${m.platform}, ${m.layers.length} layers, ${(size / 1e6).toFixed(1)} MB compressed)\n`);
        }
      }
    },
  };
}
