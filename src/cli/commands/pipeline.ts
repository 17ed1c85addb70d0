// `distill pipeline`: flags → imageMatrix + one generator.
import type { Argv } from 'yargs';
import type { CliIo } from '../io.js';

interface PipelineArgs {
  dir: string;
  engine: string;
  out?: string;
  name?: string;
  'distill-package'?: string;
  root?: string;
}

export function pipelineCommand(io: CliIo) {
  return {
    command: 'pipeline <dir>',
    describe: 'Emit a CI pipeline that builds the images of DIR as per-platform workers and per-image joins, sharing only a registry',
    builder: (y: Argv) =>
      y
        .positional('dir', { type: 'string', describe: 'images/ (or one image directory), relative to the repository root' })
        .option('engine', { type: 'string', choices: ['tekton', 'github'], demandOption: true, describe: 'tekton (Tasks + Pipeline) or github (Actions workflow)' })
        .option('out', { type: 'string', describe: 'write to FILE (default: standard output)' })
        .option('root', { type: 'string', describe: 'the repository root the jobs check out; paths are relative to it (default: the current directory)' })
        .option('name', { type: 'string', describe: 'the Pipeline / workflow name' })
        .option('distill-package', { type: 'string', describe: 'npm spec the jobs install (default distill@<this version>)' })
        .example('$0 pipeline images --engine tekton --out tekton/distill.yaml', 'Tasks and a Pipeline for kubectl apply')
        .example('$0 pipeline images --engine github --out .github/workflows/distill.yml', 'a GitHub Actions workflow'),
    handler: async (argv: PipelineArgs) => {
      const [{ imageMatrix }, { tektonPipeline }, { githubWorkflow }, { writeFileAtomic }] = await Promise.all([
        import('../../pipeline/plan.js'),
        import('../../pipeline/tekton.js'),
        import('../../pipeline/github.js'),
        import('../../util/atomic-write.js'),
      ]);
      const matrix = await imageMatrix(argv.dir, argv.root ?? process.cwd());
      const opts = { ...(argv.name !== undefined ? { name: argv.name } : {}), ...(argv['distill-package'] !== undefined ? { distillPackage: argv['distill-package'] } : {}) };
      const text = argv.engine === 'tekton' ? tektonPipeline(matrix, opts) : githubWorkflow(matrix, opts);
      if (argv.out === undefined) {
        io.stdout.write(text);
        return;
      }
      await writeFileAtomic(argv.out, text, { code: 'USAGE', hint: 'check the directory exists and is writable' });
    },
  };
}
