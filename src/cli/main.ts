// The distill command line: yargs maps flags to one library call per command. Exit status: 0 ok,
// 1 failure, 2 usage. Errors print as one line `distill: <what went wrong> [<CODE>]` plus a hint.
import yargs from 'yargs';
import { DistillError, isDistillError } from '../index.js';
import { appendCommand } from './commands/append.js';
import { buildCommand } from './commands/build.js';
import { fetchCommand } from './commands/fetch.js';
import { initCommand } from './commands/init.js';
import { rebuildCommand } from './commands/rebuild.js';
import { copyCommand, inspectCommand, pullCommand, pushCommand } from './commands/registry.js';
import { attestCommand, keyPairCommand, signCommand, triangulateCommand, verifyAttestationCommand, verifyCommand } from './commands/sign.js';
import { lockCommand } from './commands/lock.js';
import type { CliIo } from './io.js';

export async function main(args: readonly string[], io: CliIo): Promise<number> {
  let usageError: string | undefined;
  let failure: unknown;
  const parser = yargs([...args])
    .scriptName('distill')
    .usage('$0 <command> [options]\n\nMinimal, reproducible container images from pinned Debian packages.')
    .command(lockCommand(io) as never)
    .command(fetchCommand(io) as never)
    .command(buildCommand(io) as never)
    .command(initCommand(io) as never)
    .command(pushCommand(io) as never)
    .command(pullCommand(io) as never)
    .command(copyCommand(io) as never)
    .command(appendCommand(io) as never)
    .command(inspectCommand(io) as never)
    .command(keyPairCommand(io) as never)
    .command(signCommand(io) as never)
    .command(verifyCommand(io) as never)
    .command(attestCommand(io) as never)
    .command(verifyAttestationCommand(io) as never)
    .command(triangulateCommand(io) as never)
    .command(rebuildCommand(io) as never)
    .demandCommand(1, 'name a command')
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, (io.stdout as { columns?: number }).columns ?? 100))
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) failure = err;
      else usageError = msg;
    });
  let helpText = '';
  try {
    await parser.parseAsync([...args], {}, (_err, _argv, output) => {
      helpText = output;
    });
  } catch (e) {
    failure ??= e;
  }
  if (usageError !== undefined) {
    io.stderr.write(`distill: ${usageError} [USAGE]\nhint: run \`distill --help\`\n`);
    return 2;
  }
  if (failure !== undefined) return reportError(failure, io);
  if (helpText !== '') io.stdout.write(helpText + '\n');
  return 0;
}

export function reportError(e: unknown, io: CliIo): number {
  if (isDistillError(e)) {
    const [first, ...rest] = e.message.split('\n');
    io.stderr.write(`distill: ${first} [${e.code}]\n`);
    for (const r of rest) io.stderr.write(`  ${r}\n`);
    if (e.hint) io.stderr.write(`hint: ${e.hint}\n`);
    return e.code === 'USAGE' ? 2 : 1;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  io.stderr.write(`distill: internal error: ${err.message} [INTERNAL]\n${err.stack ?? ''}\nhint: this is a bug in distill; please report it\n`);
  return 1;
}

export { DistillError };
