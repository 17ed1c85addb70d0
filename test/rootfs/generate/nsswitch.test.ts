import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nsswitchConf } from '../../../src/rootfs/generate/nsswitch.js';

test('nsswitch.conf is distroless\'s file', () => {
  const text = nsswitchConf();
  const entries = text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(/:\s+/));
  assert.deepEqual(entries, [
    ['passwd', 'compat'],
    ['group', 'compat'],
    ['shadow', 'compat'],
    ['gshadow', 'files'],
    ['hosts', 'files dns'],
    ['networks', 'files'],
    ['protocols', 'db files'],
    ['services', 'db files'],
    ['ethers', 'db files'],
    ['rpc', 'db files'],
    ['netgroup', 'nis'],
  ]);
  // The exact bytes of GoogleContainerTools/distroless static/nsswitch.conf (497 bytes).
  assert.equal(Buffer.byteLength(text), 497);
  assert.ok(text.startsWith("# /etc/nsswitch.conf\n#\n# Example configuration of GNU Name Service Switch functionality.\n# If you have the `glibc-doc-reference' and `info' packages installed, try:\n# `info libc \"Name Service Switch\"' for information about this file.\n\npasswd:         compat\n"));
  assert.ok(text.endsWith('\nnetgroup:       nis\n'));
});
