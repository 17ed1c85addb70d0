// `distill append`: flags → one appendImage call.
import type { Argv } from 'yargs';
import { DistillError } from '../../errors.js';
import type { CliIo } from '../io.js';
import { registryFlags, registryOptionsFrom, type RegistryArgs } from './registry-options.js';
import { signingKey } from './sign.js';

interface AppendArgs extends RegistryArgs {
  source: string;
  layer: string[];
  entrypoint?: string;
  cmd?: string;
  env?: string[];
  user?: string;
  workdir?: string;
  label?: string[];
  platform?: string[];
  chown?: string;
  out?: string;
  push?: string;
  'sign-key'?: string;
}

export function appendCommand(io: CliIo) {
  return {
    command: 'append <source>',
    describe: 'Add layers (directories, files, tars) and settings to an image or index, deterministically: FROM + COPY without a daemon',
    builder: (y: Argv) =>
      registryFlags(y)
        .positional('source', { type: 'string', describe: 'an OCI layout (DIR or DIR:REF), an image archive (FILE, oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG]) or registry/repository[:tag|@digest]' })
        .option('layer', { type: 'string', array: true, demandOption: true, describe: 'PATH[:/DEST]: a directory (contents under DEST, default /), a file (at DEST, default /NAME) or a .tar/.tar.gz; one layer each' })
        .option('entrypoint', { type: 'string', describe: 'a JSON list, e.g. ["/usr/bin/python3","/app/main.py"] (resets the base Cmd)' })
        .option('cmd', { type: 'string', describe: 'a JSON list' })
        .option('env', { type: 'string', array: true, describe: 'K=V (replaces the base value of K)' })
        .option('user', { type: 'string' })
        .option('workdir', { type: 'string' })
        .option('label', { type: 'string', array: true, describe: 'K=V' })
        .option('platform', { type: 'string', array: true, describe: 'only these platforms of an index (os/arch[/variant])' })
        .option('chown', { type: 'string', describe: 'UID:GID of every appended entry (default 0:0)' })
        .option('out', { type: 'string', describe: 'write an OCI layout: DIR or DIR:REF (default ref latest)' })
        .option('push', { type: 'string', describe: 'push to registry/repository[:tag]' })
        .option('sign-key', { type: 'string', describe: 'with --push: sign and attest provenance with this cosign key' })
        .example('$0 append 127.0.0.1:5000/distill/python3:latest --layer app:/app --entrypoint \'["/usr/bin/python3","/app/main.py"]\' --push 127.0.0.1:5000/me/app:1', 'a Python app on distill python3'),
    handler: async (argv: AppendArgs) => {
      const json = (flag: string, v: string | undefined): string[] | undefined => {
        if (v === undefined) return undefined;
        let parsed: unknown;
        try {
          parsed = JSON.parse(v);
        } catch {
          parsed = undefined;
        }
        if (!Array.isArray(parsed) || parsed.some((x) => typeof x !== 'string')) {
          throw new DistillError('USAGE', `--${flag} ${v}: not a JSON list of strings`, { hint: `e.g. --${flag} '["/usr/bin/python3","/app/main.py"]'` });
        }
        return parsed as string[];
      };
      const labels: Record<string, string> = {};
      for (const l of argv.label ?? []) {
        const i = l.indexOf('=');
        if (i <= 0) throw new DistillError('USAGE', `--label ${l}: expected K=V`);
        labels[l.slice(0, i)] = l.slice(i + 1);
      }
      let chown: { uid: number; gid: number } | undefined;
      if (argv.chown !== undefined) {
        const m = /^(\d+):(\d+)$/.exec(argv.chown);
        if (m === null) throw new DistillError('USAGE', `--chown ${argv.chown}: expected UID:GID`, { hint: 'e.g. --chown 65532:65532' });
        chown = { uid: Number(m[1]), gid: Number(m[2]) };
      }
      const epoch = io.env['SOURCE_DATE_EPOCH'];
      if (epoch !== undefined && !/^\d+$/.test(epoch)) throw new DistillError('USAGE', `SOURCE_DATE_EPOCH=${epoch} is not a whole number of seconds`);
      const entrypoint = json('entrypoint', argv.entrypoint);
      const cmd = json('cmd', argv.cmd);
      const signKey = argv['sign-key'] !== undefined ? (await signingKey(argv['sign-key'], io)).privateKey : undefined;
      const { appendImage } = await import('../../append.js');
      const { opts, done } = await registryOptionsFrom(argv, io);
      let r;
      try {
        r = await appendImage(argv.source, {
          ...opts,
          layers: argv.layer,
          ...(entrypoint !== undefined ? { entrypoint } : {}),
          ...(cmd !== undefined ? { cmd } : {}),
          ...(argv.env !== undefined ? { env: argv.env } : {}),
          ...(argv.user !== undefined ? { user: argv.user } : {}),
          ...(argv.workdir !== undefined ? { workdir: argv.workdir } : {}),
          ...(argv.label !== undefined ? { labels } : {}),
          ...(argv.platform !== undefined ? { platforms: argv.platform.flatMap((p) => p.split(',')) } : {}),
          ...(chown !== undefined ? { chown } : {}),
          ...(epoch !== undefined ? { sourceDateEpoch: Number(epoch) } : {}),
          ...(argv.out !== undefined ? { out: argv.out } : {}),
          ...(argv.push !== undefined ? { push: argv.push } : {}),
          ...(signKey !== undefined ? { signKey } : {}),
        });
      } finally {
        done();
      }
      if (argv.json) io.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else io.stdout.write(`${r.destination} ${r.digest} (${r.manifests.length} manifests, base ${r.base.name}@${r.base.digest})\n`);
    },
  };
}
