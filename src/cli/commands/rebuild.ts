// `distill rebuild`: flags → rebuild.
import type { Argv } from 'yargs';
import { DistillError } from '../../errors.js';
import type { CliIo } from '../io.js';
import { commonOptions, lockOptionsFrom, type CommonArgs } from './common.js';

export function rebuildCommand(io: CliIo) {
  return {
    command: 'rebuild <target>',
    describe: 'Rebuild a published image from its signed provenance and compare digests (exit 1, naming the layer and files, when they differ)',
    builder: (y: Argv) =>
      commonOptions(y)
        .positional('target', { type: 'string', describe: 'registry/repository:tag (docker://…), an OCI layout (DIR, DIR:REF, oci:DIR[:REF]) or an image archive (FILE, oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG])' })
        .option('key', { type: 'string', describe: "the publisher's cosign.pub (required for a registry image)" })
        .option('provenance', { type: 'string', describe: 'the provenance statement of a local image that carries none (an archive): attestations/provenance.intoto.json' })
        .option('insecure', { type: 'boolean', default: false, describe: 'allow plain http to a registry that is not on loopback' })
        .example('$0 rebuild 127.0.0.1:5000/distill/python3:latest --key cosign.pub --mirror debian=… --mirror debian-security=…', '')
        .example('$0 rebuild python3.tar --provenance out/python3/attestations/provenance.intoto.json', 'a distill build --tar archive'),
    handler: async (argv: CommonArgs & { target: string; key?: string; insecure: boolean; provenance?: string }) => {
      const [{ loadPublicKey, readKeyFile }, { rebuild }] = await Promise.all([import('../../sign/keys.js'), import('../../rebuild.js')]);
      const publicKey = argv.key === undefined ? undefined : loadPublicKey(await readKeyFile(argv.key).catch((e: unknown) => {
        throw new DistillError('KEY_INVALID', `cannot read ${argv.key}: ${(e as Error).message}`, { cause: e });
      }), argv.key);
      const { opts, done } = await lockOptionsFrom(argv, io);
      let r;
      try {
        r = await rebuild(argv.target, {
          cacheDir: opts.cacheDir,
          mirrors: opts.mirrors!,
          insecure: argv.insecure,
          credentials: { env: io.env },
          ...(publicKey ? { publicKey } : {}),
          ...(argv.provenance !== undefined ? { provenance: argv.provenance } : {}),
          ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
        });
      } finally {
        done();
      }
      if (argv.json) io.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else io.stdout.write(r.report + '\n');
      if (!r.identical) {
        throw new DistillError('REBUILD_DIFFERS', `${r.subjects.filter((s) => !s.identical).length} of ${r.subjects.length} digests of ${r.image} differ from the published ones`, {
          hint: 'the report above names the first differing layer and files',
        });
      }
    },
  };
}
