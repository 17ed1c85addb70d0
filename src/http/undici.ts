// undici, loaded on first use: importing it costs ~0.1 s of CPU at every start, and most commands
// (a build from the cache or a file:// mirror, lock --check, diff of two locks) never open a socket.
import type * as Undici from 'undici';

let loading: Promise<typeof Undici> | undefined;

export function undici(): Promise<typeof Undici> {
  return (loading ??= import('undici'));
}
