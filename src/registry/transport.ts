// The registry transport: everything about talking HTTP to one registry that is not the distribution
// protocol itself (as go-containerregistry's pkg/v1/remote/transport is to remote/). One connection
// pool (undici Agent, keep-alive) per registry; the /v2/ ping that learns how to authenticate;
// authentication (auth.ts: Basic, or bearer tokens cached by realm, service and scope); one retry
// policy (http/retry.ts: 408, 429, 5xx, connection resets, timeouts, Retry-After honoured) wrapped
// around whole operations by the protocol modules; redirects (blob GETs are sent to storage elsewhere);
// and size caps on every response body the registry — or anything between it and us — writes.
//
// Credentials go only to the registry's own origin and its token realm: a redirect to another host
// is followed without the Authorization header, and that host's 401 is a refusal, never a challenge
// to learn from. Plain http only for loopback registries (127.0.0.0/8, ::1, localhost) or when
// `insecure` is set; https otherwise, and never a redirect from https down to http.
import type { Readable } from 'node:stream';
import type { Agent, Dispatcher } from 'undici';
import { undici } from '../http/undici.js';
import { DistillError, messageOf } from '../errors.js';
import { noProgress, type OnProgress } from '../events.js';
import { USER_AGENT } from '../http/open.js';
import { DEFAULT_LOW_SPEED, type LowSpeedLimit } from '../http/low-speed.js';
import { type RetryPolicy, TransientError, defaultRetryPolicy, isTransient, isTransientStatus, parseRetryAfter, withRetry } from '../http/retry.js';
import { type Access, Authenticator, discardBody, isLoopbackHost, readCappedBody, repositoryScope } from './auth.js';
import { type CredentialOptions, resolveCredentials } from './credentials.js';
import { apiHost } from './reference.js';

/** Size caps for what is read whole; each body is attacker-controlled until checked. */
export const CAPS = {
  /** distribution refuses manifests over 4 MiB; so do we, both ways (also referrers indexes). */
  manifest: 4 * 1024 * 1024,
  /** One page of a tag list. */
  tagsPage: 4 * 1024 * 1024,
  /** An error response's JSON, read for its error codes. */
  errorBody: 64 * 1024,
  /** Redirect, HEAD and other bodies we do not read are drained up to this, then the connection is dropped. */
  drain: 64 * 1024,
} as const;

export const REDIRECTS_MAX = 5;
export const NET_HINT = 'the registry or the network failed; retry later';

export interface TransportOptions {
  credentials?: CredentialOptions;
  /** Allow plain http to a registry that is not on loopback (the CLI's --insecure). */
  insecure?: boolean;
  /** Per request: connecting, waiting for response headers, and idle time while a body flows (default 60 s). */
  timeoutMs?: number;
  retry?: RetryPolicy;
  onProgress?: OnProgress;
  userAgent?: string;
  /** A blob body slower than this while its reader waits is cut and retried (default DEFAULT_LOW_SPEED). */
  lowSpeed?: LowSpeedLimit;
  /** Connections kept open per origin (default 16): enough for every blob of a copy in flight at once. */
  connections?: number;
  /** `push` asks for pull,push tokens from the start, so one token serves a whole push. */
  access?: 'pull' | 'push';
}

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface SendOptions {
  method: Method;
  url: URL;
  scopes: string[];
  headers?: Record<string, string>;
  /** A Buffer (or nothing) can be sent again after a 401; a stream cannot. */
  body?: Buffer | Readable;
  what: string;
  /** Follow 301/302/303/307/308 (reads: blob GETs are redirected to storage). */
  followRedirects?: boolean;
}

export type Response = Dispatcher.ResponseData;

const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)*$/;
const TAG_OR_DIGEST = /^(?:[\w][\w.-]{0,127}|sha256:[0-9a-f]{64})$/;
export const DIGEST = /^sha256:[0-9a-f]{64}$/;

export class Transport {
  /** The registry as written in references (docker.io, host:port). */
  readonly registry: string;
  /** scheme://host[:port] of its API. */
  readonly base: URL;
  readonly emit: OnProgress;
  private agent: Promise<Agent> | undefined;
  private readonly agentOptions: Agent.Options;
  /** The whole read of a small body (manifest, tag page, error) is bounded by this too, not only its pauses. */
  private readonly timeoutMs: number;
  /** How slow a blob body may be (blobs.ts watches it). */
  readonly lowSpeed: LowSpeedLimit;
  private readonly auth: Authenticator;
  private readonly policy: RetryPolicy;
  private readonly userAgent: string;
  private readonly readAccess: Access;
  private pinged: Promise<void> | undefined;

  constructor(registry: string, opts: TransportOptions = {}) {
    this.registry = registry;
    const host = apiHost(registry);
    let hostname: string;
    try {
      if (/[/?#@\\\s]/.test(host) || host === '') throw new Error('not a host[:port]');
      hostname = new URL(`http://${host}`).hostname;
    } catch (e) {
      throw new DistillError('REFERENCE_INVALID', `${JSON.stringify(registry)} is not a registry host`, { cause: e });
    }
    const plain = opts.insecure === true || isLoopbackHost(hostname);
    this.base = new URL(`${plain ? 'http' : 'https'}://${host}`);
    const timeoutMs = opts.timeoutMs ?? 60_000;
    this.timeoutMs = timeoutMs;
    this.lowSpeed = opts.lowSpeed ?? DEFAULT_LOW_SPEED;
    this.agentOptions = {
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      connect: { timeout: timeoutMs },
      connections: opts.connections ?? 16,
      keepAliveTimeout: 30_000,
    };
    this.policy = opts.retry ?? defaultRetryPolicy;
    this.emit = opts.onProgress ?? noProgress;
    this.userAgent = opts.userAgent ?? USER_AGENT;
    this.readAccess = opts.access === 'push' ? 'pull,push' : 'pull';
    const credOpts = opts.credentials ?? {};
    this.auth = new Authenticator({
      registry,
      credential: () => resolveCredentials(registry, credOpts),
      dispatcher: () => this.pool(),
      timeoutMs,
      userAgent: this.userAgent,
      allowHttpRealm: plain,
    });
  }

  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    if (agent !== undefined) await (await agent).close();
  }

  /** The connection pool, made on the first request (undici is loaded then: http/undici.ts). */
  private pool(): Promise<Agent> {
    return (this.agent ??= undici().then((u) => new u.Agent(this.agentOptions)));
  }

  /** Which credentials are in use, for messages. */
  describeCredentials(): string {
    return this.auth.describe();
  }

  /** How many token requests went to the realm (for tests and stats). */
  get tokenRequests(): number {
    return this.auth.tokenRequests;
  }

  /** The scopes for reading `repository` (pull, or pull,push for a client made to push). */
  readScopes(repository: string): string[] {
    return [repositoryScope(repository, this.readAccess)];
  }

  pushScope(repository: string): string {
    return repositoryScope(repository, 'pull,push');
  }

  /** /v2/<repository>/<kind>/<reference>, with the name and reference checked (they end up in a URL). */
  url(repository: string, kind: 'blobs' | 'manifests' | 'referrers' | 'tags', reference: string): URL {
    checkRepository(repository);
    if (kind === 'tags') return new URL(`/v2/${repository}/tags/list`, this.base);
    if (reference !== 'uploads/' && !TAG_OR_DIGEST.test(reference)) {
      throw new DistillError('REFERENCE_INVALID', `${JSON.stringify(reference)} is neither a tag nor a sha256 digest`);
    }
    return new URL(`/v2/${repository}/${kind}/${reference}`, this.base);
  }

  /** Run a whole operation under the retry policy (never a half-consumed stream: the operation starts over). */
  retrying<T>(what: string, op: (attempt: number) => Promise<T>): Promise<T> {
    return withRetry(this.policy, op, {
      onRetry: (attempt, delayMs, e) => this.emit({ type: 'retry', what, attempt, delayMs, reason: messageOf(e) }),
    });
  }

  /**
   * The /v2/ ping now rather than before the first request, so a caller can overlap it with other
   * work (a copy pings the destination while it reads the source). A failure is left for that first
   * request to meet again (and retry).
   */
  connect(): void {
    this.ping().catch(() => {});
  }

  /** GET /v2/ once: learn whether and how the registry wants us to authenticate. Not retried itself: the calling operation is. */
  private ping(): Promise<void> {
    this.pinged ??= (async () => {
      const url = new URL('/v2/', this.base);
      const res = await this.request(url, 'GET', { 'user-agent': this.userAgent }, undefined, `${this.registry}/v2/`);
      await drain(res);
      if (res.statusCode === 200) return;
      if (res.statusCode === 401) {
        this.auth.learn(res.headers['www-authenticate']);
        return;
      }
      if (isTransientStatus(res.statusCode)) {
        throw new TransientError(`${url.href}: HTTP ${res.statusCode}`, retryAfter(res), undefined, NET_HINT);
      }
      throw new DistillError('REGISTRY_PROTOCOL', `${url.href} answered HTTP ${res.statusCode}: not an OCI distribution registry`, {
        hint: 'check the registry address',
      });
    })().catch((e: unknown) => {
      this.pinged = undefined;
      throw e;
    });
    return this.pinged;
  }

  /** One request with authentication; on a 401, learn the challenge and try once more. */
  async send(o: SendOptions): Promise<Response> {
    await this.ping();
    const replayable = o.body === undefined || Buffer.isBuffer(o.body);
    let scopes = o.scopes;
    let refresh = false;
    for (let tries = 0; ; tries++) {
      const { res, url: finalUrl } = await this.sendOnce(o, scopes, refresh);
      if (res.statusCode !== 401) return res;
      // A challenge from another origin (a redirect target) must never teach us where to send the
      // user's credentials: it is a plain failure.
      if (finalUrl.origin !== this.base.origin) {
        await drain(res);
        throw new DistillError('REGISTRY_AUTH', `${o.what}: ${finalUrl.origin} (a redirect target) asked for authentication; distill sends credentials only to ${this.base.origin}`, {
          hint: 'the registry redirected to a host that wants credentials; this is refused on purpose',
        });
      }
      const challenge = res.headers['www-authenticate'];
      await drain(res);
      const before = this.auth.schemeKind;
      const learnt = this.auth.learn(challenge);
      const worthRetry = learnt && tries === 0 && !(before === 'basic' && this.auth.schemeKind === 'basic' && this.auth.hasCredential);
      if (!worthRetry) throw this.authError(o.what);
      scopes = [...new Set([...scopes, ...Authenticator.challengeScopes(challenge)])];
      refresh = true;
      if (!replayable) {
        // The body stream is spent: fail this attempt so the whole operation restarts (at once) with a fresh token.
        await this.auth.authorization(scopes, true);
        throw new TransientError(`${o.what}: the registry asked to authenticate again`, 0, undefined, NET_HINT);
      }
    }
  }

  private authError(what: string): DistillError {
    const creds = this.auth.describe();
    if (this.auth.schemeKind === 'bearer' && this.auth.lastChallengeError === 'insufficient_scope' && this.auth.hasCredential) {
      return new DistillError('REGISTRY_DENIED', `${this.registry} denied ${what} to ${creds}`, {
        hint: 'these credentials lack access to the repository; ask for access or use other credentials',
      });
    }
    return new DistillError('REGISTRY_AUTH', `${this.registry} refused ${what}: authentication failed with ${creds}`, {
      hint: this.auth.hasCredential
        ? 'check the username and password (or run docker login again)'
        : 'log in (docker login), pass --username and --password-stdin, or set DISTILL_REGISTRY_USERNAME and DISTILL_REGISTRY_PASSWORD',
    });
  }

  /** The request itself, following redirects when asked; credentials only ever go to the registry's origin. */
  private async sendOnce(o: SendOptions, scopes: string[], refresh: boolean): Promise<{ res: Response; url: URL }> {
    let url = o.url;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...o.headers };
      delete headers['authorization'];
      if (url.origin === this.base.origin) {
        const a = await this.auth.authorization(scopes, refresh && hop === 0);
        if (a !== undefined) headers['authorization'] = a;
      }
      const res = await this.request(url, o.method, headers, hop === 0 ? o.body : undefined, o.what);
      const loc = header(res, 'location');
      if (o.followRedirects !== true || ![301, 302, 303, 307, 308].includes(res.statusCode) || loc === undefined) return { res, url };
      await drain(res);
      if (hop >= REDIRECTS_MAX) throw new DistillError('REGISTRY_PROTOCOL', `${o.what}: more than ${REDIRECTS_MAX} redirects`);
      let next: URL;
      try {
        next = new URL(loc, url);
      } catch (e) {
        throw new DistillError('REGISTRY_PROTOCOL', `${o.what}: a redirect to something that is not a URL`, { cause: e });
      }
      if (next.protocol !== 'https:' && !(next.protocol === 'http:' && url.protocol === 'http:')) {
        throw new DistillError('REGISTRY_PROTOCOL', `${o.what}: refusing a redirect from ${url.protocol} to ${next.protocol}`);
      }
      if (next.username !== '' || next.password !== '') throw new DistillError('REGISTRY_PROTOCOL', `${o.what}: refusing a redirect with credentials in it`);
      url = next;
    }
  }

  private async request(url: URL, method: Method, headers: Record<string, string>, body: SendOptions['body'], what: string): Promise<Response> {
    try {
      const { request } = await undici();
      return await request(url, { method, headers, ...(body === undefined ? {} : { body }), dispatcher: await this.pool() });
    } catch (e) {
      // A body stream that failed (a local blob that does not match its digest) surfaces here as itself.
      if (e instanceof DistillError) throw e;
      if (isTransient(e)) throw new TransientError(`${what}: ${url.origin}: ${messageOf(e)}`, undefined, e, NET_HINT);
      throw new DistillError('FETCH_FAILED', `${what}: ${url.origin}: ${messageOf(e)}`, { cause: e, hint: 'check the registry address and the network' });
    }
  }

  /** A response body read whole, under `cap` (it is untrusted): RESPONSE_TOO_LARGE beyond it, without reading on. */
  readBody(res: Response, cap: number, what: string): Promise<Buffer> {
    return readCappedBody(res, cap, what, this.timeoutMs);
  }

  /** Abandon an upload session we will not use (best effort: the registry purges stale sessions anyway). */
  async abandon(location: URL, scope: string): Promise<void> {
    try {
      const { res } = await this.sendOnce({ method: 'DELETE', url: location, scopes: [scope], what: 'cancel an upload' }, [scope], false);
      await drain(res);
    } catch {
      // ignored
    }
  }

  /** The error for an unexpected status, with the registry's own error codes (spec.md "Error Codes"). */
  async failure(res: Response, what: string): Promise<DistillError> {
    let summary = '';
    let codes: string[] = [];
    try {
      const text = (await readCappedBody(res, CAPS.errorBody, what, this.timeoutMs)).toString('utf8');
      const parsed = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] };
      if (Array.isArray(parsed.errors)) {
        codes = parsed.errors.map((x) => (typeof x?.code === 'string' ? x.code : '')).filter((x) => x !== '');
        summary = parsed.errors
          .slice(0, 3)
          .map((x) => [x?.code, x?.message].filter((v) => typeof v === 'string').join(': '))
          .join('; ');
      }
    } catch {
      discardBody(res);
    }
    // The registry's words are untrusted: printable ASCII only, and short.
    summary = summary.replace(/[^\x20-\x7e]/g, '?').slice(0, 300);
    const detail = `HTTP ${res.statusCode}${summary === '' ? '' : ` (${summary})`}`;
    const status = res.statusCode;
    if (isTransientStatus(status)) return new TransientError(`${what}: ${detail}`, retryAfter(res), undefined, NET_HINT);
    if (status === 403) {
      return new DistillError('REGISTRY_DENIED', `${this.registry} denied ${what} to ${this.auth.describe()}: ${detail}`, {
        hint: 'these credentials lack access to the repository; ask for access or use other credentials',
      });
    }
    if (status === 404) {
      return new DistillError('REGISTRY_NOT_FOUND', `${what}: not found (${detail})`, {
        hint: 'check the repository name and tag',
      });
    }
    if (codes.includes('DIGEST_INVALID')) {
      return mismatch(`${what}: the registry says the bytes it received do not match the digest: ${detail}`);
    }
    return new DistillError('REGISTRY_PROTOCOL', `${what}: unexpected ${detail}`, {
      hint: 'the registry refused the request; the message above is its reason',
    });
  }
}

// ---- helpers shared by the protocol modules ----

/** Drain a body we do not need (so the connection is reused), up to CAPS.drain; past that the connection is dropped. */
export async function drain(res: Response): Promise<void> {
  try {
    await res.body.dump({ limit: CAPS.drain });
  } catch {
    discardBody(res);
  }
}

export function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function retryAfter(res: Response): number | undefined {
  return parseRetryAfter(header(res, 'retry-after'), Date.now());
}

/** A Docker-Content-Digest that disagrees with what we sent or received is never accepted. */
export function checkDigestHeader(res: Response, expected: string, what: string): void {
  const got = header(res, 'docker-content-digest');
  if (got !== undefined && got !== expected) {
    throw mismatch(`${what}: the registry reports the digest ${JSON.stringify(got.slice(0, 100))}, expected ${expected}`);
  }
}

export function mismatch(message: string, cause?: unknown): DistillError {
  return new DistillError('REGISTRY_DIGEST_MISMATCH', message, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'the registry (or something between it and us) altered the content; do not trust it',
  });
}

export function checkRepository(repository: string): string {
  if (!REPOSITORY.test(repository) || repository.length > 255) {
    throw new DistillError('REFERENCE_INVALID', `${JSON.stringify(repository)} is not a repository name`, {
      hint: 'repository names are lower-case path components, e.g. distill/static',
    });
  }
  return repository;
}

/** An upload's Location (absolute or relative to the request), kept on http(s) and never downgraded. */
export function locationOf(res: Response, requestUrl: URL, base: URL, what: string): URL {
  const loc = header(res, 'location');
  if (loc === undefined || loc === '') throw new DistillError('REGISTRY_PROTOCOL', `${what}: the registry sent no Location for the upload`);
  let url: URL;
  try {
    url = new URL(loc, requestUrl);
  } catch (e) {
    throw new DistillError('REGISTRY_PROTOCOL', `${what}: the upload Location is not a URL`, { cause: e });
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && base.protocol === 'http:')) {
    throw new DistillError('REGISTRY_PROTOCOL', `${what}: the upload Location uses ${url.protocol}`);
  }
  return url;
}

/** RFC 8288 Link: <url>; rel="next", resolved against the page and kept on the registry's origin. */
export function nextLink(link: string | undefined, page: URL, base: URL): URL | undefined {
  if (link === undefined) return undefined;
  const m = /<([^>]*)>\s*;\s*rel="?next"?/.exec(link);
  if (m === null) return undefined;
  const next = new URL(m[1]!, page);
  if (next.origin !== base.origin) throw new DistillError('REGISTRY_PROTOCOL', `the tag list links to another origin (${next.origin})`);
  return next;
}
