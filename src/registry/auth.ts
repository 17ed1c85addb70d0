// Registry authentication: anonymous, HTTP Basic, and bearer tokens as Docker's token authentication
// specification describes them (distribution docs/spec/auth/token.md, oauth.md): a 401 carries a
// `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` challenge (RFC 7235 syntax); the client
// asks the realm for a token covering `repository:<name>:pull,push` (plus `repository:<source>:pull`
// for a cross-repository mount) — with Basic credentials, or by POSTing an identity (refresh) token —
// and sends it as `Authorization: Bearer`. Tokens are cached by realm, service and set of scopes until
// shortly before they expire.
//
// Every challenge header and token response is attacker-controlled (any registry, or anything between
// us and it, writes them): the parser is strict and bounded, realms must be http(s) URLs without
// userinfo, plain-http realms are refused unless the registry itself may be reached over plain http
// (loopback or --insecure), and tokens must be printable header values. No message ever holds a
// password or token; they name the credentials by their source (credentials.ts).
import type { Dispatcher } from 'undici';
import { undici } from '../http/undici.js';
import { DistillError, messageOf } from '../errors.js';
import { TransientError, isTransientStatus, parseRetryAfter } from '../http/retry.js';
import { type Credential, describeCredential } from './credentials.js';

// ---- WWW-Authenticate (RFC 7235 §4.1, §2.1) ----

export interface Challenge {
  /** Lower-cased: 'bearer', 'basic', … */
  scheme: string;
  /** Parameter names lower-cased; values unquoted. */
  params: Record<string, string>;
  token68?: string;
}

const HEADER_CAP = 16 * 1024;
const PARAMS_CAP = 32;
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68_CHAR = /[A-Za-z0-9\-._~+/]/;

/**
 * Parse a WWW-Authenticate value (several headers joined by ", ") into challenges. Throws
 * REGISTRY_PROTOCOL on anything malformed, including a parameter given twice in one challenge
 * (which of the two a server meant is unknowable, so neither is trusted).
 */
export function parseChallenges(header: string): Challenge[] {
  if (header.length > HEADER_CAP) throw protocol(`a WWW-Authenticate header of ${header.length} characters`);
  const s = header;
  let i = 0;
  const malformed = (why: string): DistillError => protocol(`a malformed WWW-Authenticate header (${why} at offset ${i})`);
  const skipOws = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < s.length && TCHAR.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  const quoted = (): string => {
    // s[i] === '"'
    i++;
    let out = '';
    for (;;) {
      if (i >= s.length) throw malformed('an unterminated quoted string');
      const c = s[i]!;
      if (c === '"') {
        i++;
        return out;
      }
      if (c === '\\') {
        const next = s[i + 1];
        if (next === undefined) throw malformed('a dangling backslash');
        out += next;
        i += 2;
        continue;
      }
      // qdtext: HTAB, SP, visible ASCII but '"' and '\', obs-text; never control characters.
      if (c !== '\t' && (c < ' ' || c === '\x7f')) throw malformed('a control character in a quoted string');
      out += c;
      i++;
    }
  };

  /** Does `token BWS "=" BWS (token / quoted-string)` start here? Does not move. */
  const paramAhead = (): boolean => {
    const save = i;
    const name = token();
    skipOws();
    let ok = name !== '' && s[i] === '=';
    if (ok) {
      i++;
      skipOws();
      ok = i < s.length && (s[i] === '"' || TCHAR.test(s[i]!));
    }
    i = save;
    return ok;
  };

  const challenges: Challenge[] = [];
  for (;;) {
    // Empty list elements (", ,") are allowed by the #rule.
    while (i < s.length && (s[i] === ',' || s[i] === ' ' || s[i] === '\t')) i++;
    if (i >= s.length) break;
    const scheme = token();
    if (scheme === '') throw malformed('an expected auth-scheme');
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    if (i < s.length && s[i] !== ' ' && s[i] !== '\t' && s[i] !== ',') throw malformed('an unexpected character after the scheme');
    skipOws();
    if (i >= s.length || s[i] === ',') continue;
    if (!paramAhead()) {
      // token68 (e.g. Basic's or Negotiate's blob), then the end or the next challenge.
      let t = '';
      while (i < s.length && TOKEN68_CHAR.test(s[i]!)) t += s[i++];
      while (i < s.length && s[i] === '=') t += s[i++];
      if (t === '') throw malformed('an unexpected character after the scheme');
      challenge.token68 = t;
      skipOws();
      if (i < s.length && s[i] !== ',') throw malformed('an unexpected character after a token68');
      continue;
    }
    // #auth-param, until the next element is a new scheme.
    for (;;) {
      const pname = token();
      skipOws();
      i++; // '=' (paramAhead said so)
      skipOws();
      let value: string;
      if (s[i] === '"') {
        value = quoted();
      } else {
        value = token();
        if (value === '') throw malformed('an empty parameter value');
      }
      const key = pname.toLowerCase();
      if (Object.hasOwn(challenge.params, key)) throw malformed(`the parameter ${key} given twice`);
      if (Object.keys(challenge.params).length >= PARAMS_CAP) throw malformed('too many parameters');
      // defineProperty: a parameter named __proto__ is data, not a prototype change.
      Object.defineProperty(challenge.params, key, { value, enumerable: true, writable: true, configurable: true });
      skipOws();
      if (i >= s.length) break;
      if (s[i] !== ',') throw malformed('an expected comma');
      while (i < s.length && (s[i] === ',' || s[i] === ' ' || s[i] === '\t')) i++;
      if (i >= s.length || !paramAhead()) break;
    }
  }
  return challenges;
}

// ---- scopes ----

export type Access = 'pull' | 'pull,push';

export function repositoryScope(repository: string, access: Access): string {
  return `repository:${repository}:${access}`;
}

// ---- the authenticator ----

export interface AuthenticatorOptions {
  /** The registry as written in references, for messages. */
  registry: string;
  /** Looked up once, on the first challenge that needs credentials. */
  credential: () => Promise<Credential | undefined>;
  /** The registry's connection pool (made on first use). */
  dispatcher: () => Promise<Dispatcher>;
  timeoutMs: number;
  userAgent: string;
  /** Token realms may be plain http (the registry itself is reached over plain http). */
  allowHttpRealm: boolean;
}

type Scheme = { kind: 'anonymous' } | { kind: 'basic' } | { kind: 'bearer'; realm: URL; service: string | undefined };

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** A token response is small JSON; a few KiB in practice. */
const TOKEN_RESPONSE_CAP = 1024 * 1024;
const TOKEN_CAP = 64 * 1024;
const HEADER_VALUE = /^[\x21-\x7e]+$/;

export class Authenticator {
  private scheme: Scheme = { kind: 'anonymous' };
  private credentialPromise: Promise<Credential | undefined> | undefined;
  private credentialValue: Credential | undefined;
  private credentialLoaded = false;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<CachedToken>>();
  /** Token requests made to a realm so far (a command should make one per scope set). */
  tokenRequests = 0;
  /** The `error` parameter of the last bearer challenge (e.g. insufficient_scope). */
  lastChallengeError: string | undefined;

  constructor(private readonly opts: AuthenticatorOptions) {}

  /** What we authenticate with, for messages: 'no credentials', 'user alice from ~/.docker/config.json'. */
  describe(): string {
    return this.credentialLoaded ? describeCredential(this.credentialValue) : 'no credentials';
  }

  get hasCredential(): boolean {
    return this.credentialValue !== undefined;
  }

  /** Learn the scheme from the /v2/ ping (or any 401). Returns false when nothing usable was offered. */
  learn(wwwAuthenticate: string | string[] | undefined): boolean {
    const header = Array.isArray(wwwAuthenticate) ? wwwAuthenticate.join(', ') : wwwAuthenticate;
    if (header === undefined || header.trim() === '') return false;
    const challenges = parseChallenges(header);
    // Prefer bearer, as docker does: it scopes what a leaked header can do.
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer !== undefined) {
      const realm = this.checkRealm(bearer.params['realm']);
      this.lastChallengeError = bearer.params['error'];
      // Tokens stay cached under their realm and service: a challenge naming another realm (or
      // service) gets tokens of its own, and one naming the same again reuses what we have.
      this.scheme = { kind: 'bearer', realm, service: bearer.params['service'] };
      return true;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      this.scheme = { kind: 'basic' };
      return true;
    }
    return false;
  }

  /** The scopes a bearer challenge asks for (its `scope` parameter), if any. */
  static challengeScopes(wwwAuthenticate: string | string[] | undefined): string[] {
    const header = Array.isArray(wwwAuthenticate) ? wwwAuthenticate.join(', ') : wwwAuthenticate;
    if (header === undefined) return [];
    const bearer = parseChallenges(header).find((c) => c.scheme === 'bearer');
    const scope = bearer?.params['scope'];
    return scope === undefined ? [] : scope.split(' ').filter((x) => x !== '' && x.length <= 1024).slice(0, 16);
  }

  get schemeKind(): Scheme['kind'] {
    return this.scheme.kind;
  }

  /** The Authorization header for a request needing `scopes`, or undefined (anonymous). */
  async authorization(scopes: string[], refresh = false): Promise<string | undefined> {
    switch (this.scheme.kind) {
      case 'anonymous':
        return undefined;
      case 'basic': {
        const c = await this.credential();
        if (c === undefined || c.password === undefined) return undefined;
        return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
      }
      case 'bearer': {
        const t = await this.token(this.scheme, scopes, refresh);
        return t === '' ? undefined : `Bearer ${t}`;
      }
    }
  }

  private async credential(): Promise<Credential | undefined> {
    if (this.credentialPromise === undefined) {
      this.credentialPromise = this.opts.credential().then((c) => {
        this.credentialValue = c;
        this.credentialLoaded = true;
        return c;
      });
    }
    return this.credentialPromise;
  }

  private async token(scheme: Extract<Scheme, { kind: 'bearer' }>, scopes: string[], refresh: boolean): Promise<string> {
    const sorted = [...new Set(scopes)].sort();
    // One cache for every operation of a command: keyed by who issues the token and for what.
    const key = `${scheme.realm.href}\n${scheme.service ?? ''}\n${sorted.join(' ')}`;
    const cached = this.tokens.get(key);
    if (!refresh && cached !== undefined && cached.expiresAt > Date.now()) return cached.token;
    let p = this.pending.get(key);
    if (p === undefined) {
      p = this.fetchToken(scheme, sorted).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    const t = await p;
    this.tokens.set(key, t);
    return t.token;
  }

  /** GET realm?service=…&scope=… (Basic-authenticated when we have a password), or the OAuth2 POST for an identity token. */
  private async fetchToken(scheme: Extract<Scheme, { kind: 'bearer' }>, scopes: string[]): Promise<CachedToken> {
    this.tokenRequests++;
    const cred = await this.credential();
    const url = new URL(scheme.realm.href);
    const headers: Record<string, string> = { 'user-agent': this.opts.userAgent, accept: 'application/json' };
    let method: 'GET' | 'POST' = 'GET';
    let body: string | undefined;
    if (cred?.identityToken !== undefined) {
      method = 'POST';
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.identityToken, client_id: 'distill' });
      if (scheme.service !== undefined) form.set('service', scheme.service);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      body = form.toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else {
      if (scheme.service !== undefined) url.searchParams.set('service', scheme.service);
      for (const s of scopes) url.searchParams.append('scope', s);
      if (cred !== undefined && cred.password !== undefined) {
        headers['authorization'] = `Basic ${Buffer.from(`${cred.username}:${cred.password}`, 'utf8').toString('base64')}`;
      }
    }
    const where = `the token service ${url.origin} of ${this.opts.registry}`;
    let res: Dispatcher.ResponseData;
    try {
      const { request } = await undici();
      res = await request(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        dispatcher: await this.opts.dispatcher(),
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
      });
    } catch (e) {
      throw new TransientError(`${where}: ${messageOf(e)}`, undefined, e, 'the token service failed; retry later');
    }
    const text = await readSmall(res, TOKEN_RESPONSE_CAP, where, this.opts.timeoutMs);
    if (res.statusCode === 401) {
      throw new DistillError('REGISTRY_AUTH', `${where} refused ${describeCredential(cred)}`, {
        hint: cred === undefined ? 'log in (docker login), or pass --username and --password-stdin' : 'check the username and password',
      });
    }
    if (res.statusCode === 403) {
      throw new DistillError('REGISTRY_DENIED', `${where} denied ${describeCredential(cred)} access to ${scopes.join(' ')}`, {
        hint: 'ask for access to the repository, or use other credentials',
      });
    }
    if (isTransientStatus(res.statusCode)) {
      const ra = res.headers['retry-after'];
      throw new TransientError(`${where}: HTTP ${res.statusCode}`, parseRetryAfter(typeof ra === 'string' ? ra : undefined, Date.now()), undefined, 'the token service failed; retry later');
    }
    if (res.statusCode !== 200) throw protocol(`${where} answered HTTP ${res.statusCode}`);
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch (e) {
      throw protocol(`${where} answered something other than JSON`, e);
    }
    const token = typeof parsed.token === 'string' && parsed.token !== '' ? parsed.token : parsed.access_token;
    if (typeof token !== 'string') throw protocol(`${where} answered without a token`);
    // An anonymous token may legitimately be empty of grants but not of bytes; it must be a header value.
    if (token.length > TOKEN_CAP || !HEADER_VALUE.test(token)) throw protocol(`${where} answered a token that is not a valid header value`);
    // token.md: expires_in defaults to 60 seconds and is at least 60. Our clock, not issued_at: skew-proof.
    const seconds = typeof parsed.expires_in === 'number' && Number.isFinite(parsed.expires_in) ? Math.max(60, parsed.expires_in) : 60;
    return { token, expiresAt: Date.now() + Math.min(seconds * 1000 * 0.9, seconds * 1000 - 10_000) };
  }

  private checkRealm(realm: string | undefined): URL {
    if (realm === undefined || realm === '') throw protocol(`${this.opts.registry} sent a bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch (e) {
      throw protocol(`${this.opts.registry} sent a bearer realm that is not a URL: ${JSON.stringify(realm.slice(0, 200))}`, e);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw protocol(`${this.opts.registry} sent a bearer realm with the scheme ${url.protocol}`);
    if (url.username !== '' || url.password !== '') throw protocol(`${this.opts.registry} sent a bearer realm with credentials in it`);
    if (url.protocol === 'http:' && !this.opts.allowHttpRealm && !isLoopbackHost(url.hostname)) {
      throw new DistillError('REGISTRY_PROTOCOL', `${this.opts.registry} sent a plain-http token realm (${url.origin}); credentials are not sent in the clear`, {
        hint: 'use --insecure only if you trust the network path to this registry',
      });
    }
    return url;
  }
}

/** 127.0.0.0/8, ::1 and localhost: where plain http is allowed without --insecure. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  if (h.toLowerCase() === 'localhost' || h === '::1') return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return m !== null && m.slice(1).every((x) => Number(x) <= 255);
}

/** Read a small response body whole, under a cap (it is untrusted). */
export async function readSmall(res: Dispatcher.ResponseData, cap: number, what: string, deadlineMs?: number): Promise<string> {
  return (await readCappedBody(res, cap, what, deadlineMs)).toString('utf8');
}

/**
 * Stop reading a response and drop its connection. undici's body then errors with an AbortError that
 * nobody else listens for; it is expected here, so it is swallowed rather than left uncaught.
 */
export function discardBody(res: Dispatcher.ResponseData): void {
  res.body.on('error', () => {});
  res.body.destroy();
}

export async function readCappedBody(res: Dispatcher.ResponseData, cap: number, what: string, deadlineMs?: number): Promise<Buffer> {
  const len = res.headers['content-length'];
  if (typeof len === 'string' && Number(len) > cap) {
    discardBody(res);
    throw tooLarge(what, cap);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  // ATTACKER-CONTROLLED pace: undici's bodyTimeout is the longest pause between chunks, so a server
  // trickling a byte just inside it holds a small document (manifest, token, tag page) open without
  // end. `deadlineMs` bounds the whole read; the failure is transient (retried, within the policy).
  const timer = deadlineMs === undefined ? undefined : setTimeout(() => res.body.destroy(new Error(`the body was not complete after ${deadlineMs} ms`)), deadlineMs);
  try {
    for await (const c of res.body) {
      const b = c as Buffer;
      n += b.length;
      if (n > cap) {
        discardBody(res);
        throw tooLarge(what, cap);
      }
      chunks.push(b);
    }
  } catch (e) {
    if (e instanceof DistillError) throw e;
    throw new TransientError(`${what}: reading the response failed: ${messageOf(e)}`, undefined, e, 'the registry or network failed; retry later');
  } finally {
    clearTimeout(timer);
  }
  return Buffer.concat(chunks, n);
}

function tooLarge(what: string, cap: number): DistillError {
  return new DistillError('RESPONSE_TOO_LARGE', `${what}: the response is larger than the ${cap}-byte limit`, {
    hint: 'the registry sent something unexpected; check the registry address',
  });
}

function protocol(message: string, cause?: unknown): DistillError {
  return new DistillError('REGISTRY_PROTOCOL', message, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'the registry does not follow the distribution protocol; check the registry address',
  });
}
