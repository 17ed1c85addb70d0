// Flags shared by the commands that reach a mirror, and their mapping to library options.
import type { Argv } from 'yargs';
import type { LockOptions } from '../../index.js';
import { defaultCacheDir, type CliIo } from '../io.js';
import { progressRenderer } from '../progress.js';

export interface CommonArgs {
  mirror: string[];
  keyring?: string;
  'allow-expired': boolean;
  cache?: string;
  json: boolean;
}

export function commonOptions<T>(y: Argv<T>) {
  return y
    .option('mirror', { type: 'string', array: true, default: [] as string[], describe: 'NAME=URL of a named archive (repeatable); else $DISTILL_MIRROR_<NAME>, the definition, or the host apt sources' })
    .option('keyring', { type: 'string', describe: 'OpenPGP keyring to verify InRelease with (default: the Debian archive keyring)' })
    .option('allow-expired', { type: 'boolean', default: false, describe: "accept a Release past its Valid-Until (apt's check-valid-until=no), for snapshot mirrors" })
    .option('cache', { type: 'string', describe: 'content-addressed cache directory (default $XDG_CACHE_HOME/distill)' })
    .option('json', { type: 'boolean', default: false, describe: 'machine-readable output on stdout' });
}

export async function lockOptionsFrom(argv: CommonArgs, io: CliIo): Promise<{ opts: LockOptions; done: () => void }> {
  const { parseMirrorFlags } = await import('../../debian/mirrors.js');
  const progress = progressRenderer(io, !argv.json);
  return {
    opts: {
      cacheDir: argv.cache ?? defaultCacheDir(io.env),
      mirrors: { flags: parseMirrorFlags(argv.mirror), env: io.env },
      ...(argv.keyring !== undefined ? { keyring: argv.keyring } : {}),
      allowExpired: argv['allow-expired'],
      onProgress: progress.onProgress,
    },
    done: progress.done,
  };
}
