// /etc/passwd and /etc/group (passwd(5), group(5)) and the home directories that go with them, as
// distroless writes them: password field `x`, one line per entry, each ending in '\n'. Nothing here is
// read from the host: no useradd, no /etc/login.defs, no clock. Lines come out in the order given, not
// sorted by id: the defaults are in distroless's order, so the files match distroless's line for line
// (see passwdFile for the final newline), and a caller's order is kept as written. glibc reads the
// files line by line and does not care about order; with names and ids unique, no lookup depends on it.
import { DistillError } from '../../errors.js';
import type { UserSpec } from '../../definition/types.js';
import type { TreeEntry } from '../tree.js';
import { dirEntry, fileEntry } from './entries.js';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
  /** The GECOS (comment) field; the account name when absent, as distroless does. */
  gecos?: string;
}

export interface Group {
  name: string;
  gid: number;
  members?: string[];
}

/** A directory to create for the accounts, with an absolute path. */
export interface HomeDirectory {
  path: string;
  mode: number;
  uid: number;
  gid: number;
}

export const ROOT_ID = 0;
export const NONROOT_ID = 65532;
export const NOBODY_ID = 65534;

/** distroless's /etc/passwd, in its order. */
export const DEFAULT_ACCOUNTS: readonly Readonly<Account>[] = Object.freeze([
  Object.freeze({ name: 'root', uid: ROOT_ID, gid: ROOT_ID, home: '/root', shell: '/sbin/nologin' }),
  Object.freeze({ name: 'nobody', uid: NOBODY_ID, gid: NOBODY_ID, home: '/nonexistent', shell: '/sbin/nologin' }),
  Object.freeze({ name: 'nonroot', uid: NONROOT_ID, gid: NONROOT_ID, home: '/home/nonroot', shell: '/sbin/nologin' }),
]);

/** distroless's /etc/group, in its order. */
export const DEFAULT_GROUPS: readonly Readonly<Group>[] = Object.freeze([
  Object.freeze({ name: 'root', gid: ROOT_ID }),
  Object.freeze({ name: 'nobody', gid: NOBODY_ID }),
  Object.freeze({ name: 'tty', gid: 5 }),
  Object.freeze({ name: 'staff', gid: 50 }),
  Object.freeze({ name: 'nonroot', gid: NONROOT_ID }),
]);

/**
 * Homes that are a promise that no home exists (Debian's convention for system accounts, base-passwd's
 * README): never created.
 */
const NOT_CREATED = new Set(['/nonexistent', '/']);

/**
 * The rule useradd(8) gives as the portable one, `[a-z_][a-z0-9_-]*[$]?` (the final '$' is for Samba
 * machine accounts), at most 32 characters. Newer shadow-utils accepts more (upper case, dots) but
 * recommends this; every reader of /etc/passwd (glibc, busybox, musl, Go's os/user) handles it.
 */
const NAME = /^[a-z_][a-z0-9_-]*\$?$/;
const NAME_MAX = 32;
/** uid_t is 32 bits; (uid_t)-1 means "no change" to chown(2) and setreuid(2), never an account. */
const ID_MAX = 0xffff_fffe;

function fail(message: string, hint: string): never {
  throw new DistillError('GENERATE_FAILED', message, { hint });
}

function checkName(kind: string, name: string): void {
  if (typeof name !== 'string' || name.length > NAME_MAX || !NAME.test(name)) {
    fail(
      `${kind} name ${JSON.stringify(name)} is not a valid name`,
      `Use at most ${NAME_MAX} characters: a lower-case letter or "_", then lower-case letters, digits, "_" or "-" (useradd's rule).`,
    );
  }
}

function checkId(kind: string, owner: string, id: number): void {
  if (!Number.isSafeInteger(id) || id < 0 || id > ID_MAX) {
    fail(`${kind} of ${JSON.stringify(owner)} is ${String(id)}, not an integer from 0 to ${ID_MAX}`, 'Give a whole number; 65532 is the conventional non-root id.');
  }
}

/** An absolute, normalised path with no ':' or control characters (they would break the line format). */
function checkPath(what: string, owner: string, path: string): void {
  const bad =
    typeof path !== 'string' ||
    !path.startsWith('/') ||
    /[:\x00-\x1f\x7f]/.test(path) ||
    (path !== '/' && (path.endsWith('/') || path.split('/').slice(1).some((c) => c === '' || c === '.' || c === '..')));
  if (bad) {
    fail(`${what} of ${JSON.stringify(owner)} is ${JSON.stringify(path)}, not a normalised absolute path`, `Write it like "/home/${owner}": absolute, no "." or ".." parts, no ":".`);
  }
}

/** Check names, ids and fields; unique names and uids (GENERATE_FAILED otherwise). */
export function validateAccounts(accounts: readonly Account[]): void {
  const names = new Set<string>();
  const uids = new Map<number, string>();
  for (const a of accounts) {
    checkName('account', a.name);
    checkId('uid', a.name, a.uid);
    checkId('gid', a.name, a.gid);
    checkPath('home', a.name, a.home);
    checkPath('shell', a.name, a.shell);
    if (a.gecos !== undefined && (typeof a.gecos !== 'string' || /[:\x00-\x1f\x7f]/.test(a.gecos))) {
      fail(`the comment (GECOS) of ${JSON.stringify(a.name)} contains ":" or a control character`, 'Remove ":" and line breaks from the comment.');
    }
    if (names.has(a.name)) fail(`account ${JSON.stringify(a.name)} is defined twice`, 'Give each account once.');
    names.add(a.name);
    const other = uids.get(a.uid);
    if (other !== undefined) fail(`accounts ${JSON.stringify(other)} and ${JSON.stringify(a.name)} share uid ${a.uid}`, 'Give each account its own uid.');
    uids.set(a.uid, a.name);
  }
}

/** Check names, ids and member names; unique names and gids (GENERATE_FAILED otherwise). */
export function validateGroups(groups: readonly Group[]): void {
  const names = new Set<string>();
  const gids = new Map<number, string>();
  for (const g of groups) {
    checkName('group', g.name);
    checkId('gid', g.name, g.gid);
    const members = new Set<string>();
    for (const m of g.members ?? []) {
      checkName(`member of group ${JSON.stringify(g.name)}: account`, m);
      if (members.has(m)) fail(`group ${JSON.stringify(g.name)} lists member ${JSON.stringify(m)} twice`, 'List each member once.');
      members.add(m);
    }
    if (names.has(g.name)) fail(`group ${JSON.stringify(g.name)} is defined twice`, 'Give each group once.');
    names.add(g.name);
    const other = gids.get(g.gid);
    if (other !== undefined) fail(`groups ${JSON.stringify(other)} and ${JSON.stringify(g.name)} share gid ${g.gid}`, 'Give each group its own gid.');
    gids.set(g.gid, g.name);
  }
}

/**
 * Check accounts against groups: every primary gid names a group and every group member is an account
 * (a dangling gid shows as a bare number in `ls -l` and `id`, and is almost always a typo).
 */
export function validateAccountsAndGroups(accounts: readonly Account[], groups: readonly Group[]): void {
  validateAccounts(accounts);
  validateGroups(groups);
  const gids = new Set(groups.map((g) => g.gid));
  const names = new Set(accounts.map((a) => a.name));
  for (const a of accounts) {
    if (!gids.has(a.gid)) fail(`account ${JSON.stringify(a.name)} has primary gid ${a.gid}, which no group has`, `Add a group with gid ${a.gid}, or change the account's gid.`);
  }
  for (const g of groups) {
    for (const m of g.members ?? []) {
      if (!names.has(m)) fail(`group ${JSON.stringify(g.name)} lists ${JSON.stringify(m)}, which is not an account`, 'Add the account or remove the member.');
    }
  }
}

/**
 * /etc/passwd: `name:x:uid:gid:gecos:home:shell\n` per account, in the given order. rules_distroless's
 * passwd rule (as read) joins its lines without a final newline; ours always ends in one: POSIX text
 * files do, and a line appended later (useradd in a derived image, `echo >>`) would otherwise be merged
 * into the last account.
 */
export function passwdFile(accounts: readonly Account[]): string {
  validateAccounts(accounts);
  return accounts.map((a) => `${a.name}:x:${a.uid}:${a.gid}:${a.gecos ?? a.name}:${a.home}:${a.shell}\n`).join('');
}

/** /etc/group: `name:x:gid:member,member\n` per group, in the given order (distroless's). */
export function groupFile(groups: readonly Group[]): string {
  validateGroups(groups);
  return groups.map((g) => `${g.name}:x:${g.gid}:${(g.members ?? []).join(',')}\n`).join('');
}

export interface HomeDirectoryOptions {
  /**
   * Whether the image already has a directory at this absolute path (from its packages or layers).
   * Existing directories are left as they are, as `useradd -m` leaves an existing home: an account
   * whose home is /usr/sbin (Debian's daemon) or /var/www (www-data) must not make it 0700.
   */
  exists?: (path: string) => boolean;
}

/**
 * The directories to create: each account's home (mode 0700, owned by the account), and every missing
 * parent (0755, root) — so /root, /home and /home/nonroot for the defaults. /nonexistent and / are
 * never created, nor anything `opts.exists` reports. Sorted by path (parents first). Two accounts
 * cannot share a home that is created here: it would have two owners.
 */
export function homeDirectories(accounts: readonly Account[], opts: HomeDirectoryOptions = {}): HomeDirectory[] {
  validateAccounts(accounts);
  const exists = opts.exists ?? (() => false);
  const dirs = new Map<string, HomeDirectory & { owner?: string }>();
  for (const a of accounts) {
    if (NOT_CREATED.has(a.home) || exists(a.home)) continue;
    const prev = dirs.get(a.home);
    if (prev?.owner !== undefined) {
      fail(`accounts ${JSON.stringify(prev.owner)} and ${JSON.stringify(a.name)} share home ${a.home}, which would need two owners`, 'Give each account its own home, or create the directory in a layer of your own.');
    }
    dirs.set(a.home, { path: a.home, mode: 0o700, uid: a.uid, gid: a.gid, owner: a.name });
  }
  for (const home of [...dirs.keys()]) {
    const parts = home.split('/');
    for (let i = 2; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (!dirs.has(parent) && !exists(parent)) dirs.set(parent, { path: parent, mode: 0o755, uid: ROOT_ID, gid: ROOT_ID });
    }
  }
  return [...dirs.values()]
    .map(({ path, mode, uid, gid }) => ({ path, mode, uid, gid }))
    .sort((x, y) => Buffer.compare(Buffer.from(x.path), Buffer.from(y.path)));
}

/** A definition's `accounts:` (absent: distroless's defaults). */
export interface AccountsInput {
  users?: UserSpec[];
  groups?: { name: string; gid: number }[];
}

export const ACCOUNTS_OWNER = 'distill:accounts';

/**
 * The accounts generator: /etc/passwd, /etc/group and the home directories (absolute paths; `exists`
 * says which the image already has), as tree entries in that order. distroless's defaults unless the
 * definition gives users or groups; a user's home defaults to /root for uid 0, else /home/<name>, and
 * its shell to /sbin/nologin.
 */
export function accountEntries(spec: AccountsInput | undefined, mtime: number, exists: (path: string) => boolean): TreeEntry[] {
  const accounts: Account[] = spec?.users
    ? spec.users.map((u) => ({ name: u.name, uid: u.uid, gid: u.gid, home: u.home ?? (u.uid === 0 ? '/root' : `/home/${u.name}`), shell: u.shell ?? '/sbin/nologin' }))
    : DEFAULT_ACCOUNTS.map((a) => ({ ...a }));
  const groups: Group[] = spec?.groups ? spec.groups.map((g) => ({ ...g })) : DEFAULT_GROUPS.map((g) => ({ ...g }));
  return [
    fileEntry('etc/passwd', passwdFile(accounts), ACCOUNTS_OWNER, mtime),
    fileEntry('etc/group', groupFile(groups), ACCOUNTS_OWNER, mtime),
    ...homeDirectories(accounts, { exists }).map((d) => dirEntry(d.path, ACCOUNTS_OWNER, mtime, d.mode, d.uid, d.gid)),
  ];
}
