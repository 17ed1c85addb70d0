// The system files generator (/etc/nsswitch.conf, /tmp), alone and in a root layer assembled from a
// crafted base-files .deb whose own /tmp it replaces.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assembleImageLayer, CertificateSource, Slots } from '../../../src/build/assemble.js';
import { nsswitchConf } from '../../../src/rootfs/generate/nsswitch.js';
import { SYSTEM_OWNER, systemEntries } from '../../../src/rootfs/generate/system-files.js';
import { lockCrafted, stageCrafted, staging, syntheticImage } from '../../helpers/stage-debs.js';

test('generator: nsswitch.conf 0644 and /tmp 1777, root-owned, at the layer\'s timestamp', () => {
  const [ns, tmp, ...more] = systemEntries(1_750_000_000);
  assert.equal(more.length, 0);
  assert.deepEqual([ns!.type, ns!.path, ns!.mode, ns!.uid, ns!.gid, ns!.owner, ns!.mtime], ['file', 'etc/nsswitch.conf', 0o644, 0, 0, SYSTEM_OWNER, 1_750_000_000]);
  assert.equal(ns!.body?.kind === 'bytes' ? ns!.body.data.toString() : '', nsswitchConf());
  assert.deepEqual([tmp!.type, tmp!.path, tmp!.mode, tmp!.uid, tmp!.gid], ['dir', 'tmp', 0o1777, 0, 0]);
});

test('in a root layer: the generated /tmp and nsswitch.conf replace what base-files ships; an upper layer gets neither', async () => {
  const s = staging();
  const base = { name: 'base-files', files: { 'etc/nsswitch.conf': 'passwd: files\n', 'etc/debian_version': '13.8\n' }, directories: { tmp: 0o755 } };
  const pkg = await lockCrafted(s, base);
  const li = syntheticImage({ name: 'static', packages: [pkg] });
  const ctx = { store: s.store, stageDir: s.stageDir, slots: new Slots(1) };
  const staged = await stageCrafted(s, [base]);
  const tree = await assembleImageLayer({ li, arch: 'amd64', staged, lower: new Map(), mtime: 1_750_000_000, isRoot: true, accountsChanged: false, certificates: CertificateSource.forChain([li], 'amd64', ctx) }, ctx);
  assert.equal(tree.get('tmp')!.mode, 0o1777);
  assert.equal(tree.get('etc/nsswitch.conf')!.owner, SYSTEM_OWNER);
  const upper = await assembleImageLayer({ li: syntheticImage({ name: 'app', packages: [] }), arch: 'amd64', staged: [], lower: new Map([...tree.values()].map((e) => [e.path, e])), mtime: 1_750_000_000, isRoot: false, accountsChanged: false, certificates: CertificateSource.forChain([li], 'amd64', ctx) }, ctx);
  assert.equal(upper.get('tmp'), undefined);
  assert.equal(upper.get('etc/nsswitch.conf'), undefined);
});
