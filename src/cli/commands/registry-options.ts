// Flags shared by the commands that talk to a registry, and their mapping to library options.
import type { Argv } from 'yargs';
import { DistillError } from '../../errors.js';
import type { RegistryOptions } from '../../index.js';
import type { CliIo } from '../io.js';
import { progressRenderer } from '../progress.js';

export interface RegistryArgs {
  username?: string;
  'password-stdin': boolean;
  insecure: boolean;
  concurrency?: number;
  json: boolean;
}

export function registryFlags<T>(y: Argv<T>) {
  return y
    .option('username', { type: 'string', describe: 'registry user (else $DISTILL_REGISTRY_USERNAME, else ~/.docker/config.json)' })
    .option('password-stdin', { type: 'boolean', default: false, describe: 'read the password from standard input' })
    .option('insecure', { type: 'boolean', default: false, describe: 'allow plain http to a registry that is not on loopback' })
    .option('concurrency', { type: 'number', describe: 'blobs transferred at once (default 4)' })
    .option('json', { type: 'boolean', default: false, describe: 'machine-readable output on stdout' });
}

async function readPassword(io: CliIo): Promise<string> {
  if (!io.stdin) throw new DistillError('USAGE', '--password-stdin: no standard input', { hint: 'pipe the password in: echo "$PW" | distill push … --password-stdin' });
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of io.stdin) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(String(c));
    n += b.length;
    if (n > 64 * 1024) throw new DistillError('USAGE', '--password-stdin: more than 64 KiB on standard input');
    chunks.push(b);
  }
  // Decoded once, so a multi-byte character split across chunks survives.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export async function registryOptionsFrom(argv: RegistryArgs, io: CliIo): Promise<{ opts: RegistryOptions & { concurrency?: number }; done: () => void }> {
  if (argv['password-stdin'] && argv.username === undefined) {
    throw new DistillError('USAGE', '--password-stdin needs --username', { hint: 'distill push … --username alice --password-stdin' });
  }
  if (argv.concurrency !== undefined && (!Number.isInteger(argv.concurrency) || argv.concurrency < 1)) {
    throw new DistillError('USAGE', `--concurrency ${argv.concurrency} is not a whole number ≥ 1`);
  }
  const password = argv['password-stdin'] ? await readPassword(io) : undefined;
  const progress = progressRenderer(io, !argv.json);
  return {
    opts: {
      credentials: {
        ...(argv.username !== undefined ? { username: argv.username, explicitSource: '--username' } : {}),
        ...(password !== undefined ? { password } : {}),
        env: io.env,
      },
      insecure: argv.insecure,
      ...(argv.concurrency !== undefined ? { concurrency: argv.concurrency } : {}),
      onProgress: progress.onProgress,
    },
    done: progress.done,
  };
}
