// Real registries for the registry tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1 with
// a free port and a temp storage directory — open, behind htpasswd Basic auth, or behind Docker token
// auth with a token issuer run here in-process (ES256 JWTs whose `kid` is the libtrust key ID of a
// self-signed certificate given to the registry as its rootcertbundle) — plus a fault-injecting
// proxy (resets, 5xx, 429 + Retry-After, stalls, a rewritten Docker-Content-Digest, oversized bodies,
// "kill everything after N requests"). Everything listens on 127.0.0.1, every wait is bounded, and
// every process and server is stopped by whoever started it (and the registry on process exit).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { createReadStream, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { sha256Hex, toDigest } from '../../src/digest.js';
import { imageConfig, imageManifest } from '../../src/oci/image.js';
import { MEDIA_TYPE_LAYER_TAR } from '../../src/oci/media-types.js';
import { writeOciLayout } from '../../src/sinks/oci-layout.js';
import * as tar from 'tar-stream';
import { CREATED, makeIndex } from './make-layer.js';
import { tempDir } from './tmp.js';

// ---- the registry ----

export type RegistryAuth =
  | { kind: 'none' }
  /** `lines`: ready-made htpasswd lines, added to those made for `users`. */
  | { kind: 'htpasswd'; users: Record<string, string>; lines?: string[] }
  | { kind: 'token'; users: Record<string, { password: string; actions: string[] }> };

export interface RunningRegistry {
  /** 127.0.0.1:PORT, as written in references. */
  host: string;
  port: number;
  storage: string;
  token?: TokenIssuer;
  stop(): Promise<void>;
}

export function registryBinary(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v docker-registry'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** A test option: run, or skip saying why. */
export function needsRegistry(): { skip: string | false } {
  return { skip: registryBinary() === undefined ? 'docker-registry (distribution) is not installed' : false };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export async function startRegistry(auth: RegistryAuth = { kind: 'none' }): Promise<RunningRegistry> {
  const bin = registryBinary();
  if (bin === undefined) throw new Error('docker-registry is not installed');
  const dir = tempDir('distill-registry-');
  const storage = join(dir, 'storage');
  let token: TokenIssuer | undefined;
  let authYaml = '';
  if (auth.kind === 'htpasswd') {
    const lines = [...Object.entries(auth.users).map(([u, p]) => htpasswdLine(u, p)), ...(auth.lines ?? [])];
    writeFileSync(join(dir, 'htpasswd'), lines.join(''));
    authYaml = `auth:\n  htpasswd:\n    realm: distill-test\n    path: ${join(dir, 'htpasswd')}\n`;
  } else if (auth.kind === 'token') {
    token = await startTokenIssuer(dir, auth.users);
    authYaml =
      `auth:\n  token:\n    realm: ${token.realm}\n    service: ${token.service}\n    issuer: ${token.issuer}\n` +
      `    rootcertbundle: ${token.certFile}\n`;
  }
  // Each attempt takes a fresh port: another process may grab the one we picked before we bind it.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const config = join(dir, 'config.yml');
    writeFileSync(
      config,
      `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n` +
        `storage:\n  filesystem:\n    rootdirectory: ${storage}\n  delete:\n    enabled: true\n` +
        `  maintenance:\n    uploadpurging:\n      enabled: false\n` +
        `http:\n  addr: 127.0.0.1:${port}\n  secret: ${randomBytes(16).toString('hex')}\n` +
        authYaml,
    );
    const child = spawn(bin, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(child);
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString('utf8')).slice(-4000);
    });
    let exited = false;
    const exit = new Promise<void>((r) => child.once('exit', () => {
      exited = true;
      live.delete(child);
      r();
    }));
    const ready = await waitForV2(port, () => exited, 10_000);
    if (ready) {
      const stop = async (): Promise<void> => {
        if (!exited) {
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 3000);
          await exit;
          clearTimeout(t);
        }
        await token?.stop();
        rmSync(dir, { recursive: true, force: true });
      };
      return { host: `127.0.0.1:${port}`, port, storage, ...(token ? { token } : {}), stop };
    }
    child.kill('SIGKILL');
    await exit;
    if (attempt >= 3) {
      await token?.stop();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`docker-registry did not start: ${stderr}`);
    }
  }
}

async function waitForV2(port: number, gone: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !gone()) {
    const status = await new Promise<number>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/v2/', timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
      req.on('timeout', () => req.destroy());
      req.end();
    });
    if (status === 200 || status === 401) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/**
 * A bcrypt htpasswd line (distribution accepts only bcrypt): `htpasswd -Bbn` from apache2-utils, or,
 * without it, libxcrypt's bcrypt through perl's crypt().
 */
export function htpasswdLine(user: string, password: string, useTool = hasCommand('htpasswd')): string {
  if (useTool) return execFileSync('htpasswd', ['-Bbn', user, password], { encoding: 'utf8' }).trim() + '\n';
  const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const salt = [...randomBytes(21)].map((b) => alphabet[b & 63]).join('') + '.Oeu'[randomBytes(1)[0]! & 3];
  const hash = execFileSync('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, `$2b$10$${salt}`], { encoding: 'utf8' });
  if (!hash.startsWith('$2b$10$')) throw new Error('cannot make a bcrypt hash: install apache2-utils (htpasswd)');
  return `${user}:${hash}\n`;
}

function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$0"', name], { stdio: 'ignore' }).status === 0;
}

// ---- the token issuer (Docker token auth spec) ----

export interface TokenIssuer {
  realm: string;
  service: string;
  issuer: string;
  certFile: string;
  /** Every token request: the user it authenticated (or '' for anonymous, 'REFUSED' for a bad password) and the scopes asked. */
  requests: { user: string; scopes: string[] }[];
  stop(): Promise<void>;
}

async function startTokenIssuer(dir: string, users: Record<string, { password: string; actions: string[] }>): Promise<TokenIssuer> {
  const keyFile = join(dir, 'token.key');
  const certFile = join(dir, 'token.crt');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=distill-test-token',
  ], { stdio: 'ignore' });
  const key = createPrivateKey(readFileSync(keyFile));
  const kid = libtrustKeyId(createPublicKey(key));
  const service = 'distill-test-registry';
  const issuer = 'distill-test-issuer';
  const requests: TokenIssuer['requests'] = [];

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/token' || req.method !== 'GET') {
      res.writeHead(404).end();
      return;
    }
    const scopes = url.searchParams.getAll('scope');
    let user = '';
    const authz = req.headers.authorization;
    if (authz !== undefined) {
      const m = /^Basic (.+)$/.exec(authz);
      const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
      const colon = decoded.indexOf(':');
      const u = decoded.slice(0, colon);
      const entry = colon > 0 && Object.hasOwn(users, u) ? users[u] : undefined;
      if (entry === undefined || entry.password !== decoded.slice(colon + 1)) {
        requests.push({ user: 'REFUSED', scopes });
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"incorrect username or password"}');
        return;
      }
      user = u;
    }
    requests.push({ user, scopes });
    const allowed = user === '' ? [] : users[user]!.actions;
    const access = scopes.flatMap((s) => {
      const m = /^repository:([^:]+):(.+)$/.exec(s);
      if (m === null) return [];
      const actions = m[2]!.split(',').filter((a) => allowed.includes(a));
      return actions.length === 0 ? [] : [{ type: 'repository', name: m[1]!, actions }];
    });
    const now = Math.floor(Date.now() / 1000);
    const token = jwtES256(
      { typ: 'JWT', alg: 'ES256', kid },
      { iss: issuer, sub: user, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access },
      key,
    );
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date(now * 1000).toISOString() }));
  });
  const port = await listen(server);
  return { realm: `http://127.0.0.1:${port}/token`, service, issuer, certFile, requests, stop: () => close(server) };
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

function jwtES256(header: object, claims: object, key: KeyObject): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(sig)}`;
}

/**
 * libtrust's key ID, which distribution 2.8 uses to find a token's signing key among the
 * rootcertbundle's keys: SHA-256 of the DER SubjectPublicKeyInfo, first 240 bits, base32 without
 * padding, in 12 colon-separated groups of 4.
 */
export function libtrustKeyId(pub: KeyObject): string {
  const der = pub.export({ type: 'spki', format: 'der' });
  const b32 = base32(createHash('sha256').update(der).digest().subarray(0, 30));
  return b32.match(/.{4}/g)!.join(':');
}

function base32(b: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of b) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

// ---- the fault-injecting proxy ----

export type Fault =
  /** Destroy the connection without answering. */
  | { kind: 'reset' }
  /** Answer this status (with Retry-After or WWW-Authenticate when given), without forwarding. */
  | { kind: 'status'; status: number; retryAfter?: string; wwwAuthenticate?: string }
  /** Never answer (until the client gives up, the proxy stops, or 30 s pass). */
  | { kind: 'stall' }
  /** Forward the request, then destroy the connection instead of answering: the registry did the work. */
  | { kind: 'drop-response' }
  /** Forward, but answer with this Docker-Content-Digest. */
  | { kind: 'rewrite-digest'; digest: string }
  /** Answer 307 to `origin` + the same path (blob storage elsewhere, as S3-backed registries do). */
  | { kind: 'redirect'; origin: string }
  /** Answer 200 with a body of this many bytes (a manifest response far too large). */
  | { kind: 'oversize'; bytes: number };

export interface FaultRule {
  method?: string;
  /** Matched against the path and query. */
  path?: RegExp;
  fault: Fault;
  /** How many matching requests get the fault (then the rule is spent). */
  times: number;
}

export interface ProxiedRequest {
  method: string;
  path: string;
  fault?: Fault['kind'];
  status?: number;
}

export interface FaultProxy {
  host: string;
  port: number;
  rules: FaultRule[];
  log: ProxiedRequest[];
  /** When set, every request after this many is reset. */
  killAfter: number | undefined;
  /** Rewrite absolute Location headers to origin-relative ones (registries may send either). */
  relativeLocations: boolean;
  stop(): Promise<void>;
}

export async function startFaultProxy(targetPort: number, rules: FaultRule[] = []): Promise<FaultProxy> {
  const sockets = new Set<Socket>();
  const proxy: FaultProxy = { host: '', port: 0, rules, log: [], killAfter: undefined, relativeLocations: false, stop: async () => {} };
  const server = createServer((req, res) => handle(req, res));
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  function pick(req: IncomingMessage): Fault | undefined {
    if (proxy.killAfter !== undefined && proxy.log.length > proxy.killAfter) return { kind: 'reset' };
    for (const r of proxy.rules) {
      if (r.times <= 0) continue;
      if (r.method !== undefined && r.method !== req.method) continue;
      if (r.path !== undefined && !r.path.test(req.url ?? '')) continue;
      r.times--;
      return r.fault;
    }
    return undefined;
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const entry: ProxiedRequest = { method: req.method ?? '', path: req.url ?? '' };
    proxy.log.push(entry);
    const fault = pick(req);
    if (fault !== undefined) entry.fault = fault.kind;
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'status') {
      req.resume();
      entry.status = fault.status;
      res.writeHead(fault.status, {
        'content-type': 'application/json',
        ...(fault.retryAfter !== undefined ? { 'retry-after': fault.retryAfter } : {}),
        ...(fault.wwwAuthenticate !== undefined ? { 'www-authenticate': fault.wwwAuthenticate } : {}),
      });
      res.end('{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}');
      return;
    }
    if (fault?.kind === 'redirect') {
      req.resume();
      entry.status = 307;
      res.writeHead(307, { location: `${fault.origin}${req.url ?? '/'}` }).end();
      return;
    }
    if (fault?.kind === 'stall') {
      req.resume();
      const t = setTimeout(() => req.socket.destroy(), 30_000);
      req.socket.once('close', () => clearTimeout(t));
      return;
    }
    if (fault?.kind === 'oversize') {
      req.resume();
      entry.status = 200;
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let left = fault.bytes;
      const pump = (): void => {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          left -= n;
          if (!res.write(chunk.subarray(0, n))) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      res.on('error', () => {});
      pump();
      return;
    }
    const up = httpRequest({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      entry.status = ur.statusCode;
      if (fault?.kind === 'drop-response') {
        ur.resume();
        req.socket.destroy();
        return;
      }
      const headers = { ...ur.headers };
      if (fault?.kind === 'rewrite-digest') headers['docker-content-digest'] = fault.digest;
      if (proxy.relativeLocations && typeof headers.location === 'string') headers.location = headers.location.replace(/^https?:\/\/[^/]+/, '');
      res.writeHead(ur.statusCode ?? 502, headers);
      ur.pipe(res);
    });
    up.on('error', () => req.socket.destroy());
    req.pipe(up);
  }

  proxy.port = await listen(server);
  proxy.host = `127.0.0.1:${proxy.port}`;
  proxy.stop = async () => {
    for (const s of sockets) s.destroy();
    await close(server);
  };
  return proxy;
}

// ---- a small layout to push ----

/** A layout with `latest` (a two-platform index) and `latest-amd64` (one image), from make-layer.ts. */
export async function makeTestLayout(dir: string, work: string): Promise<{ index: string; amd64: string; blobs: string[] }> {
  const idx = await makeIndex(work);
  const amd64 = idx.images.find((i) => i.platform.architecture === 'amd64')!;
  await writeOciLayout(dir, [
    { name: 'latest', target: idx },
    { name: 'latest-amd64', target: amd64 },
  ]);
  const blobs = idx.images.flatMap((i) => [i.config.descriptor.digest, ...i.layers.map((l) => l.descriptor.digest)]);
  return { index: idx.index.descriptor.digest, amd64: amd64.manifest.descriptor.digest, blobs: [...new Set(blobs)] };
}

/**
 * A one-image layout (ref `big`) whose one layer is an uncompressed tar holding `bytes` random bytes:
 * big enough to need chunked uploads, and incompressible so its size is what it says.
 */
export async function makeBigLayout(dir: string, work: string, bytes: number): Promise<{ manifest: string; layer: string; size: number }> {
  const pack = tar.pack();
  const parts: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) parts.push(c as Buffer);
  })();
  pack.entry({ name: 'random.bin', type: 'file', mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: new Date(0) }, randomBytes(bytes));
  pack.finalize();
  await done;
  const tarBytes = Buffer.concat(parts);
  const path = join(work, 'big.tar');
  writeFileSync(path, tarBytes);
  const digest = toDigest(sha256Hex(tarBytes));
  const layer = { descriptor: { mediaType: MEDIA_TYPE_LAYER_TAR, digest, size: tarBytes.length }, open: () => createReadStream(path) };
  const config = imageConfig({
    platform: { os: 'linux', architecture: 'amd64' },
    created: CREATED,
    env: [],
    user: '0',
    workingDir: '/',
    diffIds: [digest],
    history: [],
  });
  const manifest = imageManifest(config.descriptor, [layer.descriptor]);
  await writeOciLayout(dir, [{ name: 'big', target: { manifest, config, layers: [layer], platform: { os: 'linux', architecture: 'amd64' } } }]);
  return { manifest: manifest.descriptor.digest, layer: digest, size: tarBytes.length };
}

// ---- small server plumbing ----

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? a.port : 0);
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
