// `distill lock`: flags → lockImages (or explain, or a freshness check).
import type { Argv } from 'yargs';
import { DistillError } from '../../errors.js';
import type { DiffResult } from '../../index.js';
import type { CliIo } from '../io.js';
import { commonOptions, lockOptionsFrom, type CommonArgs } from './common.js';

interface LockArgs extends CommonArgs {
  definitions: string[];
  explain?: string;
  check: boolean;
  changelogs: boolean;
}

export function lockCommand(io: CliIo) {
  return {
    command: 'lock <definitions..>',
    describe: 'Resolve image definitions against the signed Debian archive and write image.lock.json beside each',
    builder: (y: Argv) =>
      commonOptions(y)
        .positional('definitions', { type: 'string', array: true, describe: 'image.yaml files, image directories, or images/' })
        .option('explain', { type: 'string', describe: 'after locking, show why PKG is in the closure' })
        .option('check', { type: 'boolean', default: false, describe: 'write nothing; exit 1 if any lock is missing or would change, printing what would change (as distill diff)' })
        .option('changelogs', { type: 'boolean', default: true, describe: "with --check: read the upgrades' Debian changelogs for the CVEs they fix (--no-changelogs: versions only)" })
        .example('$0 lock images/python3/image.yaml --allow-expired --mirror debian=file:///srv/snapshot/debian', 'lock one image')
        .example('$0 lock images/ --explain libssl3t64', 'lock every image and say why libssl3t64 is in each'),
    handler: async (argv: LockArgs) => {
      const [{ findDefinitions }, { checkLocks }, { lockImages }, { explain }, { lockPathFor, readLock }, { formatDiffText }] = await Promise.all([
        import('../../definition/find.js'),
        import('../../diff/check.js'),
        import('../../lock/lock.js'),
        import('../../lock/explain.js'),
        import('../../lock/lockfile.js'),
        import('../../diff/format.js'),
      ]);
      const files = await findDefinitions(argv.definitions);
      const { opts, done } = await lockOptionsFrom(argv, io);
      let results;
      let diff: DiffResult | undefined;
      try {
        if (argv.check) ({ results, diff } = await checkLocks(files, { ...opts, changelogs: argv.changelogs }));
        else results = await lockImages(files, opts);
      } finally {
        done();
      }
      const explanations = [];
      if (argv.explain !== undefined) {
        const byPath = new Map(results.map((r) => [r.path, r.lock]));
        for (const r of results.filter((x) => files.includes(x.definition.file))) {
          const chain = [];
          for (let d: typeof r.definition | undefined = r.definition; d !== undefined; d = d.base) {
            const p = lockPathFor(d.file);
            chain.push(byPath.get(p) ?? (await readLock(p)).lock);
          }
          explanations.push({ image: r.lock.image, explain: explain(chain, argv.explain) });
        }
      }
      if (argv.explain !== undefined && explanations.every((e) => e.explain.length === 0)) {
        throw new DistillError('EXPLAIN_NOT_IN_CLOSURE', `${argv.explain} is in none of the locked closures`, { hint: 'check the package name' });
      }
      if (argv.json) {
        io.stdout.write(
          JSON.stringify(
            {
              locks: results.map((r) => ({
                image: r.lock.image,
                path: r.path,
                changed: r.changed,
                architectures: Object.fromEntries(Object.entries(r.lock.architectures).map(([a, v]) => [a, v.packages.length])),
              })),
              ...(argv.explain !== undefined ? { explain: explanations } : {}),
              ...(diff !== undefined ? { diff } : {}),
            },
            null,
            2,
          ) + '\n',
        );
      } else {
        for (const r of results) {
          const counts = Object.entries(r.lock.architectures).map(([a, v]) => `${a}: ${v.packages.length}`).join(', ');
          const state = argv.check ? (r.changed ? 'out of date' : 'up to date') : r.changed ? 'written' : 'unchanged';
          io.stdout.write(`${r.lock.image}: ${r.path} (${counts} packages) ${state}\n`);
        }
        if (diff !== undefined && diff.images.length > 0) io.stdout.write(formatDiffText(diff));
        for (const e of explanations) {
          for (const x of e.explain) {
            const how = x.requested ? 'requested' : x.chain.join(' → ');
            const layer = x.image === e.image ? '' : ` (from base image ${x.image})`;
            io.stdout.write(`${e.image} ${x.arch}: ${x.package} ${x.version}${layer}: ${how}${x.dependents.length ? `; needed by ${x.dependents.join(', ')}` : ''}\n`);
          }
        }
      }
      if (argv.check && results.some((r) => r.changed)) {
        throw new DistillError('LOCK_STALE', `${results.filter((r) => r.changed).map((r) => r.path).join(', ')} would change`, { hint: 'run `distill lock` and commit the result' });
      }
    },
  };
}
