// The distill command line: yargs maps flags to one library call per command. Exit status: 0 ok,
// 1 failure, 2 usage. Errors print as one line `distill: <what went wrong> [<CODE>]` plus a hint.
import yargs from 'yargs';
import { DistillError, isDistillError } from '../errors.js';
import { DISTILL_VERSION } from '../version.js';
import { appendCommand } from './commands/append.js';
import { buildCommand } from './commands/build.js';
import { fetchCommand } from './commands/fetch.js';
import { initCommand } from './commands/init.js';
import { rebuildCommand } from './commands/rebuild.js';
import { copyCommand, inspectCommand, pullCommand, pushCommand } from './commands/registry.js';
import { attestCommand, keyPairCommand, signCommand, triangulateCommand, verifyAttestationCommand, verifyCommand } from './commands/sign.js';
import { lockCommand } from './commands/lock.js';
import { pipelineCommand } from './commands/pipeline.js';
import { indexCommand } from './commands/index-join.js';
import { diffCommand } from './commands/diff.js';
import { terminalIo, type CliIo } from './io.js';

export async function main(args: readonly string[], io: CliIo): Promise<number> {
  // Everything printed passes through one filter: what reaches the terminal may come from an attacker.
  io = terminalIo(io);
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
    .middleware(checkFlags as never)
    .command(indexCommand(io) as never)
    .command(pipelineCommand(io) as never)
    .command(diffCommand(io) as never)
    .demandCommand(1, 'name a command')
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version('version', 'print distill\'s version', DISTILL_VERSION)
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

/** Counts that size a pool: a whole number in a sane range, or a USAGE error (0 workers is "inline"). */
const COUNT_FLAGS: Record<string, { min: number; max: number }> = {
  concurrency: { min: 1, max: 64 },
  'gzip-workers': { min: 0, max: 64 },
};

/**
 * Runs before every command: a flag that is not repeatable but given twice would reach the command as
 * an array (and a path glued from two with a comma) — refused; counts out of range — refused.
 */
function checkFlags(argv: Record<string, unknown>, y: { getOptions(): { array: string[] } }): void {
  const arrays = new Set(y.getOptions().array);
  for (const [k, v] of Object.entries(argv)) {
    if (k === '_' || k === '$0' || !Array.isArray(v)) continue;
    const kebab = k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    if (arrays.has(k) || arrays.has(kebab)) continue;
    throw new DistillError('USAGE', `--${kebab} is given ${v.length} times; it takes one value`, { hint: `pass --${kebab} once` });
  }
  for (const [flag, { min, max }] of Object.entries(COUNT_FLAGS)) {
    const v = argv[flag];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new DistillError('USAGE', `--${flag} ${String(v)} is not a whole number from ${min} to ${max}`, { hint: `e.g. --${flag} 2` });
    }
  }
}

/** Every error is printed with a hint; for one raised without, the file-system cause usually says it. */
function fallbackHint(e: DistillError): string {
  const errno = (e.cause as NodeJS.ErrnoException | undefined)?.code;
  if (errno === 'ENOSPC') return 'the disk is full; free space or write elsewhere';
  if (errno === 'EACCES' || errno === 'EPERM' || errno === 'EROFS') return 'the path is not writable; fix its permissions or write elsewhere';
  if (errno === 'ENOENT' || errno === 'ENOTDIR' || errno === 'EISDIR') return 'check the path';
  return `see README, "Hostile input and faults", for ${e.code}`;
}

export function reportError(e: unknown, io: CliIo): number {
  if (isDistillError(e)) {
    const [first, ...rest] = e.message.split('\n');
    io.stderr.write(`distill: ${first} [${e.code}]\n`);
    for (const r of rest) io.stderr.write(`  ${r}\n`);
    io.stderr.write(`hint: ${e.hint ?? fallbackHint(e)}\n`);
    return e.code === 'USAGE' ? 2 : 1;
  }
  // The last guard: no input may reach it (the hostile suite checks), and it still prints one line —
  // the stack only when DISTILL_DEBUG is set, for the report.
  const err = e instanceof Error ? e : new Error(String(e));
  const first = err.message.split('\n')[0];
  const stack = io.env?.['DISTILL_DEBUG'] ? `${err.stack ?? ''}\n` : '';
  io.stderr.write(`distill: internal error: ${first} [INTERNAL]\n${stack}hint: this is a bug in distill; please report it (with DISTILL_DEBUG=1 for the stack trace)\n`);
  return 1;
}

/**
 * For the executables' process-level guard (bin.ts, launch.ts): an error no one awaited — a bug —
 * is printed as every other error is, one filtered line and a hint, not as Node's raw stack trace
 * (whose message may carry hostile text straight to the terminal). Returns the exit status.
 */
export function reportUncaught(e: unknown, io: CliIo): number {
  // The reader of our output went away (`distill inspect … | head -1`): not a bug, nothing to say;
  // the status a C tool killed by SIGPIPE would have (Node ignores the signal and gets EPIPE instead).
  if ((e as NodeJS.ErrnoException | undefined)?.code === 'EPIPE') return 141;
  return reportError(e, terminalIo(io));
}

export { DistillError };
