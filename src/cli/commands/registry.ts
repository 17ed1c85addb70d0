// `distill push`, `pull`, `copy`, `inspect`: flags → one library call each.
import type { Argv } from 'yargs';
import { DistillError } from '../../errors.js';
import { field, type CliIo } from '../io.js';
import { registryFlags, registryOptionsFrom, type RegistryArgs } from './registry-options.js';

const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;

export function pushCommand(io: CliIo) {
  return {
    command: 'push <layout> <repository>',
    describe: 'Push every ref of an OCI layout as a tag of REPOSITORY (blobs, then manifests, then tags)',
    builder: (y: Argv) =>
      registryFlags(y)
        .positional('layout', { type: 'string', describe: 'an OCI layout directory (distill build --out)' })
        .positional('repository', { type: 'string', describe: 'registry/repository, e.g. 127.0.0.1:5000/distill/python3' })
        .option('tag', { type: 'string', array: true, describe: 'REF=TAG: push layout ref REF as TAG (default: each ref name is its tag)' })
        .example('$0 push out/python3 registry.example/distill/python3', 'tags latest, nonroot, …, latest-amd64, …'),
    handler: async (argv: RegistryArgs & { layout: string; repository: string; tag?: string[] }) => {
      const tags: Record<string, string> = {};
      for (const t of argv.tag ?? []) {
        const i = t.indexOf('=');
        if (i <= 0) throw new DistillError('USAGE', `--tag ${t}: expected REF=TAG`, { hint: 'e.g. --tag latest=1.2.3' });
        tags[t.slice(0, i)] = t.slice(i + 1);
      }
      const { pushLayout } = await import('../../registry/push.js');
      const { opts, done } = await registryOptionsFrom(argv, io);
      let r;
      try {
        r = await pushLayout(argv.layout, argv.repository, { ...opts, ...(argv.tag ? { refs: Object.keys(tags), tags } : {}) });
      } finally {
        done();
      }
      if (argv.json) io.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else {
        for (const p of r.pushed) io.stdout.write(`${p.reference}\n`);
        io.stdout.write(`${r.blobsUploaded} blobs uploaded (${mb(r.bytesUploaded)}), ${r.blobsMounted} mounted, ${r.blobsSkipped} already there\n`);
      }
    },
  };
}

export function pullCommand(io: CliIo) {
  return {
    command: 'pull <reference>',
    describe: 'Pull an image or index into an OCI layout',
    builder: (y: Argv) =>
      registryFlags(y)
        .positional('reference', { type: 'string', describe: 'registry/repository:tag or @sha256:…' })
        .option('out', { type: 'string', demandOption: true, describe: 'the OCI layout directory to write' })
        .option('platform', { type: 'string', array: true, describe: 'only these platforms (amd64, linux/arm64/v8, …)' })
        .option('attachments', { type: 'boolean', default: true, describe: 'bring the cosign .sig/.att/.sbom tags and OCI referrers along as refs (--no-attachments to skip)' })
        .example('$0 pull 127.0.0.1:5000/distill/python3:latest --out python3', 'all platforms, with signatures and attestations'),
    handler: async (argv: RegistryArgs & { reference: string; out: string; platform?: string[]; attachments: boolean }) => {
      const { pullImage } = await import('../../registry/pull.js');
      const { opts, done } = await registryOptionsFrom(argv, io);
      let r;
      try {
        r = await pullImage(argv.reference, argv.out, { ...opts, attachments: argv.attachments, ...(argv.platform ? { platforms: argv.platform.flatMap((p) => p.split(',')) } : {}) });
      } finally {
        done();
      }
      if (argv.json) io.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else {
        const extra = [...(r.attachments.length ? [r.attachments.join(', ')] : []), ...(r.referrers.length ? [`${r.referrers.length} referrer${r.referrers.length > 1 ? 's' : ''}`] : [])];
        io.stdout.write(`${r.reference} → ${argv.out}:${r.refName} ${r.digest} (${r.manifests.length} manifests, ${mb(r.bytesDownloaded)} downloaded)${extra.length ? ` (+ ${extra.join(', ')})` : ''}\n`);
      }
    },
  };
}

export function copyCommand(io: CliIo) {
  return {
    command: 'copy <source> <destination>',
    describe: 'Copy an image or index between repositories or registries, with its signatures, attestations and SBOMs, keeping every digest; or from an OCI layout or image archive into a registry',
    builder: (y: Argv) =>
      registryFlags(y)
        .positional('source', { type: 'string', describe: 'registry/repository:tag, or oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG]' })
        .positional('destination', { type: 'string' })
        .option('attachments', { type: 'boolean', default: true, describe: 'copy the sha256-<hex>.sig/.att/.sbom tags too (--no-attachments to skip)' })
        .example('$0 copy reg.example/dev/app:1.2 reg.example/prod/app:1.2', 'promote with signatures')
        .example('$0 copy docker-archive:app.tar reg.example/dev/app:1.2', 'a docker save archive, streamed'),
    handler: async (argv: RegistryArgs & { source: string; destination: string; attachments: boolean }) => {
      const { copyImage } = await import('../../copy.js');
      const { opts, done } = await registryOptionsFrom(argv, io);
      let r;
      try {
        r = await copyImage(argv.source, argv.destination, { ...opts, attachments: argv.attachments });
      } finally {
        done();
      }
      if (argv.json) io.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else io.stdout.write(`${r.source} → ${r.destination}@${r.digest}${r.attachments.length ? ` (+ ${r.attachments.join(', ')})` : ''}${r.referrers.length ? ` (+ ${r.referrers.length} Sigstore bundle referrer${r.referrers.length > 1 ? 's' : ''})` : ''}\n`);
    },
  };
}

export function inspectCommand(io: CliIo) {
  return {
    command: 'inspect <target>',
    describe: 'Show platforms, digests, sizes, layers and the Debian packages (largest first) of an image from any source: an OCI layout, an image archive or a registry',
    builder: (y: Argv) =>
      registryFlags(y)
        .positional('target', { type: 'string', describe: 'an OCI layout (DIR, DIR:REF, oci:DIR[:REF]), an archive (FILE, oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG]) or registry/repository:tag (docker://…)' })
        .option('ref', { type: 'string', describe: 'only this ref of a layout or archive (e.g. latest)' })
        .example('$0 inspect out/python3 --ref latest', 'a local build')
        .example('$0 inspect docker-archive:python3.tar', 'a docker save / distill build --tar archive')
        .example('$0 inspect 127.0.0.1:5000/distill/python3:latest --json', 'a pushed image'),
    handler: async (argv: RegistryArgs & { target: string; ref?: string }) => {
      const [{ parseSourceSpec }, { inspectSource }] = await Promise.all([import('../../source.js'), import('../../inspect.js')]);
      const spec = parseSourceSpec(argv.target);
      let refs;
      if (spec.transport !== 'docker') {
        refs = await inspectSource(spec, { ...(argv.ref !== undefined ? { ref: argv.ref } : {}) });
      } else {
        // Read in place: manifests and configs fetched, each layer streamed once; nothing on disk.
        const { opts, done } = await registryOptionsFrom(argv, io);
        try {
          refs = await inspectSource(spec, opts);
        } finally {
          done();
        }
      }
      if (argv.json) {
        io.stdout.write(JSON.stringify(refs, null, 2) + '\n');
        return;
      }
      for (const r of refs) {
        io.stdout.write(`${field(r.name)}  ${r.digest}\n`);
        for (const img of r.images) {
          io.stdout.write(`  ${img.platform.padEnd(16)} ${img.digest}  ${mb(img.size)} in ${img.layers.length} layers\n`);
          for (const l of img.layers) io.stdout.write(`    layer ${l.digest}  ${mb(l.size)}\n`);
          if (img.packages.length > 0) {
            io.stdout.write(`    ${'package'.padEnd(28)} ${'version'.padEnd(28)} installed\n`);
            for (const p of img.packages) io.stdout.write(`    ${field(p.name).padEnd(28)} ${field(p.version).padEnd(28)} ${(p.installedSize / 1024).toFixed(1)} MiB\n`);
          }
        }
      }
    },
  };
}
