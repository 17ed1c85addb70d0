// `distill build`: flags → buildImage.
import type { Argv } from 'yargs';
import { DistillError } from '../../errors.js';
import type { ProgressEvent, SbomFormat } from '../../index.js';
import { attestedLine, FORMAT_OPTION, signedLine, signingKey } from './sign.js';
import { registryOptionsFrom } from './registry-options.js';
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
  organization?: string;
  'base-repository'?: string;
  'sbom-format': 'spdx' | 'cyclonedx' | 'both';
  format: string;
  concurrency?: number;
  'gzip-workers'?: number;
  compression?: 'gzip' | 'zstd';
  'layer-cache': boolean;
  push?: string;
  'sign-key'?: string;
  username?: string;
  'password-stdin': boolean;
  insecure: boolean;
  'per-platform': boolean;
  'cache-repo'?: string;
}

function sbomFormats(flag: 'spdx' | 'cyclonedx' | 'both'): SbomFormat[] {
  return flag === 'both' ? ['spdx', 'cyclonedx'] : [flag];
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
        .option('base-repository', { type: 'string', describe: 'where the base images are published (REGISTRY/PREFIX): base.name = PREFIX/<base>:<variant>; it changes the digests, --push never does' })
        .option('sbom-format', { choices: ['spdx', 'cyclonedx', 'both'] as const, default: 'both' as const, describe: 'SBOMs written (and attested with --sign-key): SPDX 2.3, CycloneDX 1.6, or both' })
        .option('organization', { type: 'string', describe: 'who publishes the image: the SBOMs name it as the image\'s supplier and as a creator' })
        .option('concurrency', { type: 'number', describe: 'packages unpacked at once (default 2)' })
        .option('compression', { choices: ['gzip', 'zstd'] as const, describe: 'layer compression: gzip (default; every runtime reads it) or zstd (tar+zstd: smaller, faster; needs a zstd-capable runtime)' })
        .option('gzip-workers', { type: 'number', describe: 'gzip threads (default: one per core; 0 = none); the bytes do not depend on it' })
        .option('push', { type: 'string', describe: 'then push every variant and platform to REPOSITORY (tags = ref names)' })
        .option('sign-key', { type: 'string', describe: 'with --push: sign every pushed index and platform manifest with this cosign key' })
        .option('format', { ...FORMAT_OPTION, describe: `with --sign-key: ${FORMAT_OPTION.describe}` })
        .option('username', { type: 'string', describe: 'registry user for --push' })
        .option('password-stdin', { type: 'boolean', default: false, describe: 'read the registry password from standard input' })
        .option('insecure', { type: 'boolean', default: false, describe: 'allow plain http to a registry that is not on loopback' })
        .option('per-platform', { type: 'boolean', default: false, describe: 'with --push: a scale-out worker: push only the <variant>-<arch> images (no index, no multi-arch tag; `distill index` joins them)' })
        .option('cache-repo', { type: 'string', describe: 'share finished layers through this registry repository (fetched, verified, when the local cache lacks them; stored after a build)' })
        .option('layer-cache', { type: 'boolean', default: true, describe: 'reuse and record finished layers in the cache (--no-layer-cache to turn off)' })
        .example('$0 build images/python3 --out out/python3', 'all four variants, amd64 and arm64')
        .example('$0 build images/static --tar static.tar --variant latest --platform amd64', 'one image for docker load')
        .example('$0 build images/python3 --push 127.0.0.1:5000/distill/python3', 'build and push every tag')
        .example('$0 build images/python3 --platform arm64 --per-platform --push 127.0.0.1:5000/distill/python3', 'a scale-out worker: the arm64 images only'),
    handler: async (argv: BuildArgs) => {
      const [{ findDefinitions }, { parseVariants }, { buildAndPublish }] = await Promise.all([
        import('../../definition/find.js'),
        import('../../definition/variants.js'),
        import('../../publish.js'),
      ]);
      const [file] = await findDefinitions([argv.definition]);
      const epoch = io.env['SOURCE_DATE_EPOCH'];
      if (epoch !== undefined && epoch !== '' && !/^\d+$/.test(epoch)) {
        throw new DistillError('USAGE', `SOURCE_DATE_EPOCH=${epoch} is not a whole number of seconds`, { hint: 'unset it or set it to e.g. $(git log -1 --format=%ct)' });
      }
      const variants = argv.variant !== undefined ? parseVariants(argv.variant) : undefined;
      if (argv.out === undefined && argv.tar === undefined && argv.push === undefined) {
        throw new DistillError('USAGE', 'nowhere to put the image', { hint: 'pass --out DIR, --tar FILE and/or --push REPOSITORY' });
      }
      if (argv['sign-key'] !== undefined && argv.push === undefined) {
        throw new DistillError('USAGE', '--sign-key signs what --push pushed', { hint: 'add --push REPOSITORY' });
      }
      if (argv['per-platform'] && argv.compression === 'zstd') {
        // The join (distill index) rebuilds each platform's manifest and provenance from the locks with gzip layers.
        throw new DistillError('USAGE', '--per-platform builds gzip layers only: `distill index` joins gzip images', { hint: 'drop --compression zstd, or build all platforms in one build' });
      }
      if (argv['per-platform'] && argv.push === undefined) {
        throw new DistillError('USAGE', '--per-platform is how a worker pushes', { hint: 'add --push REPOSITORY (and usually --platform P)' });
      }
      // Ask for the key's password before the build, not after minutes of work.
      const key = argv['sign-key'] !== undefined ? await signingKey(argv['sign-key'], io) : undefined;
      // Signing code loads only for a build that signs.
      let format;
      if (key) {
        const { checkFormat } = await import('../../sign/sign.js');
        format = checkFormat(argv.format);
      }
      if (argv['cache-repo'] !== undefined && !argv['layer-cache']) {
        throw new DistillError('USAGE', '--cache-repo shares the layer cache that --no-layer-cache turns off', { hint: 'drop one of them' });
      }
      const registry = argv.push !== undefined || argv['cache-repo'] !== undefined ? await registryOptionsFrom({ ...argv, json: argv.json }, io) : undefined;
      registry?.done();
      const { opts, done } = await lockOptionsFrom(argv, io);
      // Where every layer came from (built, local cache, registry cache), for --json.
      const layers: { image: string; arch: string; digest: string; source: string }[] = [];
      const onProgress = (e: ProgressEvent): void => {
        if (e.type === 'layer-written' && !layers.some((l) => l.digest === e.digest && l.arch === e.arch)) layers.push({ image: e.image, arch: e.arch, digest: e.digest, source: e.source ?? 'built' });
        opts.onProgress?.(e);
      };
      let result;
      try {
        result = await buildAndPublish(file!, {
          cacheDir: opts.cacheDir,
          mirrors: opts.mirrors!,
          ...(variants ? { variants } : {}),
          ...(argv.platform ? { platforms: argv.platform.flatMap((p) => p.split(',')) } : {}),
          ...(epoch ? { sourceDateEpoch: Number(epoch) } : {}),
          ...(argv.concurrency !== undefined ? { concurrency: argv.concurrency } : {}),
          ...(argv['gzip-workers'] !== undefined ? { gzipWorkers: argv['gzip-workers'] } : {}),
          ...(argv.compression !== undefined ? { compression: argv.compression } : {}),
          ...(argv['layer-cache'] ? {} : { noLayerCache: true }),
          ...(argv.organization !== undefined ? { organization: argv.organization } : {}),
          sbomFormats: sbomFormats(argv['sbom-format']),
          annotations: { ...(argv.source ? { source: argv.source } : {}), ...(argv.revision ? { revision: argv.revision } : {}), ...(argv['base-repository'] ? { baseRepository: argv['base-repository'] } : {}) },
          onProgress,
          ...(argv['cache-repo'] !== undefined ? { cacheRepository: argv['cache-repo'], cacheRegistry: registry!.opts } : {}),
          publish: {
            ...(argv.out !== undefined ? { layout: argv.out } : {}),
            ...(argv.tar !== undefined ? { archive: argv.tar } : {}),
            ...(argv.push !== undefined ? { registry: { ...registry!.opts, repository: argv.push, ...(argv['per-platform'] ? { perPlatform: true } : {}) } } : {}),
            ...(key ? { signer: { privateKey: key.privateKey, format } } : {}),
          },
        });
      } finally {
        done();
      }
      const { published, ...summary } = result;
      const pushed = published.pushed;
      const { signed, attested } = published;
      if (argv.json) {
        io.stdout.write(JSON.stringify({ ...summary, layers, ...(pushed ? { pushed, ...(key ? { signed, attested } : {}) } : {}) }, null, 2) + '\n');
        return;
      }
      for (const v of result.variants) {
        io.stdout.write(`${result.image}:${v.variant} ${v.index}\n`);
        for (const m of v.manifests) {
          const size = m.layers.reduce((n, l) => n + l.size, 0);
          io.stdout.write(`  ${v.variant}-${m.arch} ${m.digest} (${m.platform}, ${m.layers.length} layers, ${(size / 1e6).toFixed(1)} MB compressed)\n`);
          const sbom = result.sboms?.find((x) => x.variant === v.variant && x.arch === m.arch);
          if (sbom) io.stdout.write(`    SBOM: licences declared for ${sbom.licenses.declared}/${sbom.licenses.packages} Debian packages${sbom.licenses.undetermined.length ? ` (NOASSERTION: ${sbom.licenses.undetermined.join(', ')})` : ''}\n`);
        }
      }
      if (pushed) {
        for (const p of pushed.pushed) io.stdout.write(`pushed ${p.reference}\n`);
        io.stdout.write(`${pushed.blobsUploaded} blobs uploaded (${(pushed.bytesUploaded / 1e6).toFixed(1)} MB), ${pushed.blobsSkipped} already there\n`);
        for (const s of signed) io.stdout.write(signedLine(s, argv.format));
        for (const a of attested) io.stdout.write(attestedLine(a, argv.format));
      }
    },
  };
}
