// `distill index`: flags → joinPlatforms (the scale-out join).
import type { Argv } from 'yargs';
import { DistillError } from '../../errors.js';
import type { Variant } from '../../index.js';
import { signingKey } from './sign.js';
import { registryFlags, registryOptionsFrom, type RegistryArgs } from './registry-options.js';
import type { CliIo } from '../io.js';

interface IndexArgs extends RegistryArgs {
  definition: string;
  push: string;
  'sign-key'?: string;
  variant?: string[];
}

export function indexCommand(io: CliIo) {
  return {
    command: 'index <definition>',
    describe: "The scale-out join: check the workers' <variant>-<arch> images against the locks, then push, tag, sign and attest each variant's multi-arch index",
    builder: (y: Argv) =>
      registryFlags(y)
        .positional('definition', { type: 'string', describe: 'images/<name>/image.yaml or its directory' })
        .option('push', { type: 'string', demandOption: true, describe: 'the repository the workers pushed to' })
        .option('sign-key', { type: 'string', describe: "sign the indexes and attest the provenance (merging the workers', verified with this key)" })
        .option('variant', { type: 'string', array: true, describe: 'only these variants' })
        .example('$0 index images/python3 --push 127.0.0.1:5000/distill/python3 --sign-key cosign.key', 'after the amd64 and arm64 workers'),
    handler: async (argv: IndexArgs) => {
      const [{ findDefinitions }, { joinPlatforms }] = await Promise.all([import('../../definition/find.js'), import('../../scaleout/join.js')]);
      const [file] = await findDefinitions([argv.definition]);
      const epoch = io.env['SOURCE_DATE_EPOCH'];
      if (epoch !== undefined && epoch !== '' && !/^\d+$/.test(epoch)) {
        throw new DistillError('USAGE', `SOURCE_DATE_EPOCH=${epoch} is not a whole number of seconds`, { hint: 'use the value the workers built with' });
      }
      const variants = argv.variant?.flatMap((v) => v.split(',')) as Variant[] | undefined;
      const key = argv['sign-key'] !== undefined ? await signingKey(argv['sign-key'], io) : undefined;
      const registry = await registryOptionsFrom(argv, io);
      let result;
      try {
        result = await joinPlatforms(file!, argv.push, {
          ...registry.opts,
          ...(key ? { privateKey: key.privateKey } : {}),
          ...(epoch ? { sourceDateEpoch: Number(epoch) } : {}),
          ...(variants ? { variants } : {}),
        });
      } finally {
        registry.done();
      }
      if (argv.json) {
        io.stdout.write(JSON.stringify(result, null, 2) + '\n');
        return;
      }
      for (const v of result.variants) {
        io.stdout.write(`${result.image}:${v.variant} ${v.index}\n`);
        for (const m of v.manifests) io.stdout.write(`  ${v.variant}-${m.arch} ${m.digest} (${m.platform})\n`);
      }
      for (const p of result.pushed) io.stdout.write(`pushed ${p.reference}\n`);
      for (const s of result.signed) io.stdout.write(`${s.added ? 'signed' : 'already signed'} ${s.digest} → ${s.reference}\n`);
      for (const a of result.attested) io.stdout.write(`attested ${a.digest} (${a.predicateType}) → ${a.reference}\n`);
    },
  };
}
