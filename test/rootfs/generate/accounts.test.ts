import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULT_ACCOUNTS,
  DEFAULT_GROUPS,
  groupFile,
  homeDirectories,
  passwdFile,
  validateAccountsAndGroups,
  type Account,
} from '../../../src/rootfs/generate/accounts.js';
import { ACCOUNTS_OWNER, accountEntries } from '../../../src/rootfs/generate/accounts.js';
import { stageCrafted, staging } from '../../helpers/stage-debs.js';

const failed = (e: unknown) => (e as { code?: string }).code === 'GENERATE_FAILED' && Boolean((e as { hint?: string }).hint);

test('defaults are distroless\'s /etc/passwd and /etc/group, line for line', () => {
  assert.equal(
    passwdFile(DEFAULT_ACCOUNTS),
    'root:x:0:0:root:/root:/sbin/nologin\n' +
      'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' +
      'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n',
  );
  assert.equal(groupFile(DEFAULT_GROUPS), 'root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n');
  validateAccountsAndGroups(DEFAULT_ACCOUNTS, DEFAULT_GROUPS);
});

test('default home directories: /home 0755, /home/nonroot 0700 as 65532, /root 0700; no /nonexistent', () => {
  assert.deepEqual(homeDirectories(DEFAULT_ACCOUNTS), [
    { path: '/home', mode: 0o755, uid: 0, gid: 0 },
    { path: '/home/nonroot', mode: 0o700, uid: 65532, gid: 65532 },
    { path: '/root', mode: 0o700, uid: 0, gid: 0 },
  ]);
});

test('extra accounts: order kept, gecos, members, nested homes get root-owned parents', () => {
  const accounts: Account[] = [...DEFAULT_ACCOUNTS, { name: 'app', uid: 1000, gid: 1000, home: '/srv/app/home', shell: '/bin/sh', gecos: 'App user,,,' }];
  assert.match(passwdFile(accounts), /\napp:x:1000:1000:App user,,,:\/srv\/app\/home:\/bin\/sh\n$/);
  assert.equal(groupFile([{ name: 'app', gid: 1000, members: ['nonroot', 'app'] }]), 'app:x:1000:nonroot,app\n');
  const dirs = homeDirectories(accounts);
  assert.deepEqual(dirs.map((d) => [d.path, d.mode.toString(8), d.uid]), [
    ['/home', '755', 0],
    ['/home/nonroot', '700', 65532],
    ['/root', '700', 0],
    ['/srv', '755', 0],
    ['/srv/app', '755', 0],
    ['/srv/app/home', '700', 1000],
  ]);
});

test('names follow useradd\'s rule', () => {
  const acct = (name: string): Account => ({ name, uid: 1, gid: 1, home: '/nonexistent', shell: '/sbin/nologin' });
  for (const ok of ['a', '_svc', 'web-1', 'machine$', 'x'.repeat(32)]) passwdFile([acct(ok)]);
  for (const bad of ['', 'Root', '-x', '1abc', '123', 'a.b', 'a b', 'a:b', 'x'.repeat(33), 'a$b', 'é']) {
    assert.throws(() => passwdFile([acct(bad)]), failed, JSON.stringify(bad));
  }
  assert.throws(() => groupFile([{ name: 'Staff', gid: 50 }]), failed);
  assert.throws(() => groupFile([{ name: 'g', gid: 50, members: ['Bad'] }]), failed);
});

test('duplicate names and ids, bad ids, paths and fields are GENERATE_FAILED', () => {
  const base: Account = { name: 'a', uid: 10, gid: 10, home: '/home/a', shell: '/bin/sh' };
  assert.throws(() => passwdFile([base, { ...base, uid: 11 }]), failed); // name twice
  assert.throws(() => passwdFile([base, { ...base, name: 'b' }]), failed); // uid twice
  assert.throws(() => groupFile([{ name: 'g', gid: 1 }, { name: 'h', gid: 1 }]), failed);
  assert.throws(() => groupFile([{ name: 'g', gid: 1 }, { name: 'g', gid: 2 }]), failed);
  assert.throws(() => groupFile([{ name: 'g', gid: 1, members: ['a', 'a'] }]), failed);
  for (const uid of [-1, 1.5, 4294967295, Number.NaN]) assert.throws(() => passwdFile([{ ...base, uid }]), failed, String(uid));
  assert.doesNotThrow(() => passwdFile([{ ...base, uid: 4294967294 }]));
  for (const home of ['home/a', '/home/a/', '/home//a', '/home/../etc', '/home/./a', '/home/a:b', '/home/a\nroot::0:0::/:/bin/sh']) {
    assert.throws(() => passwdFile([{ ...base, home }]), failed, home);
  }
  assert.throws(() => passwdFile([{ ...base, shell: 'sh' }]), failed);
  assert.throws(() => passwdFile([{ ...base, gecos: 'a:b' }]), failed);
  assert.throws(() => passwdFile([{ ...base, gecos: 'a\nb' }]), failed);
});

test('accounts against groups: dangling primary gid or member', () => {
  assert.throws(() => validateAccountsAndGroups([{ name: 'a', uid: 1, gid: 7, home: '/', shell: '/bin/sh' }], DEFAULT_GROUPS), failed);
  assert.throws(() => validateAccountsAndGroups(DEFAULT_ACCOUNTS, [...DEFAULT_GROUPS, { name: 'x', gid: 9, members: ['ghost'] }]), failed);
});

test('homes: existing directories are left alone, / is never created, a created home has one owner', () => {
  const a: Account = { name: 'a', uid: 10, gid: 10, home: '/srv/x', shell: '/bin/sh' };
  const daemon: Account = { name: 'daemon', uid: 1, gid: 1, home: '/usr/sbin', shell: '/usr/sbin/nologin' };
  const existing = new Set(['/usr', '/usr/sbin', '/srv']);
  assert.deepEqual(homeDirectories([a, daemon, { ...a, name: 'b', uid: 11, home: '/' }], { exists: (p) => existing.has(p) }), [
    { path: '/srv/x', mode: 0o700, uid: 10, gid: 10 },
  ]);
  assert.deepEqual(homeDirectories([daemon]).map((d) => d.path), ['/usr', '/usr/sbin']); // nothing known to exist
  assert.throws(() => homeDirectories([a, { ...a, name: 'b', uid: 11 }]), failed);
});

test('generator, against a crafted base-files .deb: passwd, group and only the homes the packages do not ship', async () => {
  // base-files ships /root (0700) and /home, as Debian's does.
  const [baseFiles] = await stageCrafted(staging(), [{ name: 'base-files', files: { 'etc/debian_version': '13.8\n' }, directories: { root: 0o700, home: 0o755, srv: 0o755 } }]);
  const paths = new Set(baseFiles!.entries.map((e) => e.path));
  const exists = (p: string): boolean => paths.has(p.replace(/^\/+/, ''));
  const mtime = 1_750_000_000;
  const defaults = accountEntries(undefined, mtime, exists);
  assert.deepEqual(defaults.map((e) => `${e.type} ${e.path} ${e.mode.toString(8)} ${e.uid}:${e.gid}`), [
    'file etc/passwd 644 0:0',
    'file etc/group 644 0:0',
    'dir home/nonroot 700 65532:65532',
  ]);
  assert.ok(defaults.every((e) => e.owner === ACCOUNTS_OWNER && e.mtime === mtime));
  const text = (i: number) => (defaults[i]!.body?.kind === 'bytes' ? defaults[i]!.body.data.toString() : '');
  assert.equal(text(0), passwdFile(DEFAULT_ACCOUNTS));
  assert.equal(text(1), groupFile(DEFAULT_GROUPS));
  // A definition's own accounts: a home under /srv (shipped) needs no parent; the defaults for home and shell.
  const own = accountEntries({ users: [{ name: 'root', uid: 0, gid: 0 }, { name: 'app', uid: 1000, gid: 1000, home: '/srv/app' }], groups: [{ name: 'root', gid: 0 }, { name: 'app', gid: 1000 }] }, mtime, exists);
  assert.deepEqual(own.map((e) => `${e.type} ${e.path} ${e.mode.toString(8)} ${e.uid}:${e.gid}`), ['file etc/passwd 644 0:0', 'file etc/group 644 0:0', 'dir srv/app 700 1000:1000']);
  assert.equal(own[0]!.body?.kind === 'bytes' ? own[0]!.body.data.toString() : '', 'root:x:0:0:root:/root:/sbin/nologin\napp:x:1000:1000:app:/srv/app:/sbin/nologin\n');
});
