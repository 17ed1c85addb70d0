// What a root image needs that no package ships and no maintainer script makes here: /etc/nsswitch.conf
// (distroless's, see nsswitch.ts) and a world-writable, sticky /tmp (mode 1777, as base-files' postinst
// would leave it and as distroless ships it). Written into the root image's layer only.
import type { TreeEntry } from '../tree.js';
import { dirEntry, fileEntry } from './entries.js';
import { nsswitchConf } from './nsswitch.js';

export const SYSTEM_OWNER = 'distill:system';

/** The system files' tree entries, in this order: /etc/nsswitch.conf, /tmp. */
export function systemEntries(mtime: number): TreeEntry[] {
  return [fileEntry('etc/nsswitch.conf', nsswitchConf(), SYSTEM_OWNER, mtime), dirEntry('tmp', SYSTEM_OWNER, mtime, 0o1777)];
}
