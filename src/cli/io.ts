// What a CLI command may touch of the outside world, passed in so that main() is testable.
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface CliIo {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  env: Record<string, string | undefined>;
  /** For --password-stdin. */
  stdin?: AsyncIterable<unknown>;
}

export function defaultCacheDir(env: CliIo['env']): string {
  const xdg = env['XDG_CACHE_HOME'];
  return join(xdg && xdg !== '' ? xdg : join(env['HOME'] ?? homedir(), '.cache'), 'distill');
}
