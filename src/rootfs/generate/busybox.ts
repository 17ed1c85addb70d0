// The debug variants' BusyBox at /busybox, as distroless lays it out: the binary at /busybox/busybox
// and one symlink per applet. The applet list is read from the binary itself — BusyBox keeps its
// applet names as one sorted NUL-separated table starting "[", "[[" — so it is right for whatever
// build the lock pins, on any architecture, without running the binary. The binary is attacker-
// controlled input: names are validated and the table is bounded.
import { DistillError } from '../../errors.js';
import type { TreeEntry } from '../tree.js';
import { dirEntry, fileEntry, symlinkEntry } from './entries.js';

const ANCHOR = Buffer.from('[\0[[\0', 'latin1');
const NAME = /^[a-z0-9_.+-]+$|^\[\[?$/;

export function busyboxApplets(binary: Buffer, what: string): string[] {
  for (let at = binary.indexOf(ANCHOR); at >= 0; at = binary.indexOf(ANCHOR, at + 1)) {
    const names: string[] = [];
    let j = at;
    while (j < binary.length && names.length < 2000) {
      const end = binary.indexOf(0, j);
      if (end < 0 || end === j) break;
      const name = binary.toString('latin1', j, end);
      if (!NAME.test(name) || name.length > 64) break;
      names.push(name);
      j = end + 1;
    }
    const sorted = names.every((n, i) => i === 0 || names[i - 1]! < n);
    if (names.length >= 3 && sorted && names.includes('sh')) return names.filter((n) => n !== 'busybox');
  }
  throw new DistillError('GENERATE_FAILED', `${what}: no BusyBox applet table with a shell found in the binary`, {
    hint: 'the debug packages must include a BusyBox build with the sh applet (busybox-static)',
  });
}

export const BUSYBOX_DIR = 'busybox';
export const BUSYBOX_OWNER = 'distill:debug';

/**
 * The BusyBox generator: /busybox (0755), the binary at /busybox/busybox (0755) and one symlink
 * /busybox/<applet> → busybox per applet of the binary's own table. `what` names the binary in errors.
 */
export function busyboxEntries(binary: Buffer, what: string, mtime: number): TreeEntry[] {
  return [
    dirEntry(BUSYBOX_DIR, BUSYBOX_OWNER, mtime),
    fileEntry(`${BUSYBOX_DIR}/busybox`, binary, BUSYBOX_OWNER, mtime, 0o755),
    ...busyboxApplets(binary, what).map((applet) => symlinkEntry(`${BUSYBOX_DIR}/${applet}`, 'busybox', BUSYBOX_OWNER, mtime)),
  ];
}
