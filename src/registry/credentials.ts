// Where registry credentials come from, in order: explicit options (the CLI's --username and
// --password-stdin), the DISTILL_REGISTRY_USERNAME / DISTILL_REGISTRY_PASSWORD entries of an
// environment record the caller passes (the library never reads process.env), then Docker's
// config.json (docker/cli's configfile format: `credHelpers[host]`, else `credsStore`, else
// `auths[host]` with `auth` = base64 "user:pass" or an `identitytoken`), with credential helpers run
// as docker-credential-helpers' protocol: `docker-credential-<name> get`, the server on stdin, JSON
// {Username, Secret} on stdout.
//
// A Credential carries a `source` so errors can say which credentials were tried ("user alice from
// ~/.docker/config.json") — secrets are never part of any message.
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { DistillError, messageOf } from '../errors.js';
import { DOCKER_HUB } from './reference.js';

export interface Credential {
  username: string;
  password?: string;
  /** An OAuth2 refresh token (docker login's identity token): exchanged for bearer tokens by POST. */
  identityToken?: string;
  /** Where it came from, for messages: '--username', 'DISTILL_REGISTRY_USERNAME', '~/.docker/config.json', … */
  source: string;
}

export interface CredentialOptions {
  /** Explicit credentials; they win over everything else. */
  username?: string;
  password?: string;
  /** Names the explicit credentials in messages (default 'the username option'; the CLI passes '--username'). */
  explicitSource?: string;
  /**
   * An environment record (the CLI passes process.env): DISTILL_REGISTRY_USERNAME/PASSWORD,
   * DOCKER_CONFIG (the directory holding config.json), PATH (where credential helpers are looked for).
   */
  env?: Record<string, string | undefined>;
  /** Docker's config.json; default $DOCKER_CONFIG/config.json, else ~/.docker/config.json. False: do not read it. */
  dockerConfig?: string | false;
  /** Home directory for the default config path (default os.homedir()). */
  home?: string;
  /** A credential helper may take this long (default 30 s). */
  helperTimeoutMs?: number;
}

/** 'user alice from ~/.docker/config.json', or 'no credentials'. */
export function describeCredential(c: Credential | undefined): string {
  if (c === undefined) return 'no credentials';
  if (c.identityToken !== undefined) return `an identity token${c.username !== '' && c.username !== '<token>' ? ` for ${c.username}` : ''} from ${c.source}`;
  return `user ${JSON.stringify(c.username).slice(1, -1)} from ${c.source}`;
}

/** The credentials for `registry` (as written in references: docker.io, host:port), or undefined. */
export async function resolveCredentials(registry: string, opts: CredentialOptions = {}): Promise<Credential | undefined> {
  if (opts.username !== undefined || opts.password !== undefined) {
    if (!opts.username || opts.password === undefined) {
      throw new DistillError('USAGE', 'registry credentials need both a username and a password', {
        hint: 'pass --username together with --password-stdin',
      });
    }
    return { username: opts.username, password: opts.password, source: opts.explicitSource ?? 'the username option' };
  }
  const env = opts.env ?? {};
  const eu = env['DISTILL_REGISTRY_USERNAME'];
  const ep = env['DISTILL_REGISTRY_PASSWORD'];
  if (eu !== undefined && eu !== '') {
    if (ep === undefined) {
      throw new DistillError('USAGE', 'DISTILL_REGISTRY_USERNAME is set but DISTILL_REGISTRY_PASSWORD is not', {
        hint: 'set both, or neither',
      });
    }
    return { username: eu, password: ep, source: 'DISTILL_REGISTRY_USERNAME' };
  }
  if (opts.dockerConfig === false) return undefined;
  const dockerDir = env['DOCKER_CONFIG'];
  const path = opts.dockerConfig ?? (dockerDir ? join(dockerDir, 'config.json') : join(opts.home ?? homedir(), '.docker', 'config.json'));
  const shown = opts.dockerConfig === undefined && !dockerDir ? '~/.docker/config.json' : path;
  return fromDockerConfig(registry, path, shown, opts);
}

// ---- Docker's config.json ----

/** config.json is small; anything bigger is not one. */
const CONFIG_CAP = 4 * 1024 * 1024;
/** Docker keys Docker Hub's credentials by this URL. */
const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

async function fromDockerConfig(registry: string, path: string, shown: string, opts: CredentialOptions): Promise<Credential | undefined> {
  let text: string;
  try {
    const st = await stat(path);
    if (!st.isFile() || st.size > CONFIG_CAP) return undefined;
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DistillError('REGISTRY_AUTH', `cannot read ${shown}: ${messageOf(e)}`, { cause: e });
  }
  let config: DockerConfig;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    config = parsed as DockerConfig;
  } catch (e) {
    throw new DistillError('REGISTRY_AUTH', `${shown} is not valid JSON: ${messageOf(e)}`, {
      cause: e,
      hint: 'fix or remove the file, or pass credentials explicitly',
    });
  }

  const helperKey = findKey(config.credHelpers, registry);
  const helper = helperKey !== undefined ? config.credHelpers?.[helperKey] : config.credsStore;
  if (typeof helper === 'string' && helper !== '') {
    const fromHelper = await runHelper(helper, registry, opts);
    if (fromHelper !== undefined) return fromHelper;
    // docker falls back to the file's auths when a store has nothing for this host; so do we.
  }

  const key = findKey(config.auths, registry);
  const entry = key === undefined ? undefined : config.auths?.[key];
  if (entry === undefined || entry === null || typeof entry !== 'object') return undefined;
  let username = typeof entry.username === 'string' ? entry.username : '';
  let password = typeof entry.password === 'string' ? entry.password : undefined;
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) {
      throw new DistillError('REGISTRY_AUTH', `${shown}: the auth entry for ${registry} is not base64 of user:password`, {
        hint: 'run docker login again, or pass credentials explicitly',
      });
    }
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') {
    return { username, identityToken: entry.identitytoken, source: shown };
  }
  if (username === '' || password === undefined) return undefined;
  return { username, password, source: shown };
}

/**
 * The key of `map` naming `registry`: exact, or as docker writes them (a scheme, a /v1/ or /v2/
 * suffix); Docker Hub under its legacy URL.
 */
function findKey(map: Record<string, unknown> | undefined, registry: string): string | undefined {
  if (map === undefined || map === null || typeof map !== 'object') return undefined;
  const wanted = registry === DOCKER_HUB ? new Set([DOCKER_HUB, 'index.docker.io', 'registry-1.docker.io']) : new Set([registry]);
  if (registry === DOCKER_HUB && Object.hasOwn(map, DOCKER_HUB_CONFIG_KEY)) return DOCKER_HUB_CONFIG_KEY;
  for (const k of Object.keys(map)) {
    if (wanted.has(k)) return k;
  }
  for (const k of Object.keys(map)) {
    const host = k.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    if (wanted.has(host)) return k;
  }
  return undefined;
}

// ---- credential helpers ----

const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const HELPER_OUTPUT_CAP = 1024 * 1024;

/** Run `docker-credential-<name> get`; undefined when the helper is absent or has nothing for the host. */
async function runHelper(name: string, registry: string, opts: CredentialOptions): Promise<Credential | undefined> {
  // The name comes from a file: never let it become a path or an option.
  if (!HELPER_NAME.test(name)) {
    throw new DistillError('REGISTRY_AUTH', `credential helper name ${JSON.stringify(name)} is not valid`);
  }
  const exe = `docker-credential-${name}`;
  const resolved = opts.env?.['PATH'] !== undefined ? await findOnPath(exe, opts.env['PATH']) : exe;
  if (resolved === undefined) return undefined;
  const server = registry === DOCKER_HUB ? DOCKER_HUB_CONFIG_KEY : registry;
  const source = exe;
  const { code, stdout, missing } = await runWithInput(resolved, ['get'], server, opts.helperTimeoutMs ?? 30_000, exe);
  if (missing) return undefined;
  if (code !== 0) {
    // "credentials not found in native keychain" and the like: nothing stored for this host.
    if (/not found/i.test(stdout)) return undefined;
    throw new DistillError('REGISTRY_AUTH', `${exe} get failed for ${registry} (exit status ${code})`, {
      hint: `check the credential helper (try: echo ${server} | ${exe} get)`,
    });
  }
  let parsed: { Username?: unknown; Secret?: unknown };
  try {
    parsed = JSON.parse(stdout) as { Username?: unknown; Secret?: unknown };
  } catch (e) {
    // Never echo the output: it may hold the secret.
    throw new DistillError('REGISTRY_AUTH', `${exe} get printed something other than JSON`, { cause: e });
  }
  if (typeof parsed.Secret !== 'string' || parsed.Secret === '') return undefined;
  const username = typeof parsed.Username === 'string' ? parsed.Username : '';
  // docker-credential-helpers' convention: the user "<token>" means the secret is an identity token.
  if (username === '<token>') return { username, identityToken: parsed.Secret, source };
  return { username, password: parsed.Secret, source };
}

async function findOnPath(exe: string, path: string): Promise<string | undefined> {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, exe);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

function runWithInput(cmd: string, args: string[], input: string, timeoutMs: number, what: string): Promise<{ code: number; stdout: string; missing: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'ignore'], timeout: timeoutMs });
    const chunks: Buffer[] = [];
    let size = 0;
    child.stdout.on('data', (c: Buffer) => {
      size += c.length;
      if (size > HELPER_OUTPUT_CAP) child.kill('SIGKILL');
      else chunks.push(c);
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') resolve({ code: -1, stdout: '', missing: true });
      else reject(new DistillError('REGISTRY_AUTH', `cannot run ${what}: ${messageOf(e)}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      if (signal !== null) {
        reject(new DistillError('REGISTRY_AUTH', `${what} was stopped (${signal}): it took longer than ${timeoutMs} ms or printed too much`));
        return;
      }
      resolve({ code: code ?? -1, stdout: Buffer.concat(chunks).toString('utf8'), missing: false });
    });
    child.stdin.on('error', () => {
      // a helper that exits without reading its input; its exit status says what happened
    });
    child.stdin.end(input);
  });
}
