// `distill init`: flags → scaffoldImage.
import type { Argv } from 'yargs';
import type { CliIo } from '../io.js';

interface InitArgs {
  name: string;
  from: string;
  images: string;
  json: boolean;
}

export function initCommand(io: CliIo) {
  return {
    command: 'init <name>',
    describe: 'Create images/<name>/image.yaml extending an existing image',
    builder: (y: Argv) =>
      y
        .positional('name', { type: 'string', describe: 'the new image' })
        .option('from', { type: 'string', demandOption: true, describe: 'the image it builds on (static, base, cc, python3, …)' })
        .option('images', { type: 'string', default: 'images', describe: 'the directory of image definitions' })
        .option('json', { type: 'boolean', default: false, describe: 'machine-readable output' })
        .example('$0 init myapp --from python3', 'scaffold images/myapp/image.yaml'),
    handler: async (argv: InitArgs) => {
      const { scaffoldImage } = await import('../../definition/scaffold.js');
      const file = await scaffoldImage(argv.images, argv.name, argv.from);
      io.stdout.write(argv.json ? JSON.stringify({ file }) + '\n' : `created ${file}\n`);
    },
  };
}
