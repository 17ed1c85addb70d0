// A small registry client for the OCI distribution specification 1.1 (spec.md: pull, push, content
// discovery), on undici. One instance talks to one registry; it authenticates as auth.ts describes,
// retries with the one policy of http/retry.ts (408, 429, 5xx, connection resets, timeouts;
// Retry-After honoured) around whole operations — an upload that breaks restarts with a new upload
// session and a freshly opened source, never a half-sent stream — and checks every digest:
// Docker-Content-Digest on every response that carries one against the bytes sent or received,
// manifests hashed as they are read, blobs verified while they stream (digest.ts VerifyingStream).
// Whatever is read into memory has a size cap (manifests 4 MiB, as distribution's own limit).
//
// Plain http only for loopback registries (127.0.0.0/8, ::1, localhost) or when `insecure` is set;
// https otherwise. Credentials go only to the registry's own origin and its token realm, never to
// a host a redirect or Location header names.
import { createWriteStream } from 'node:fs';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { VerifyingStream, sha256Hex, toDigest, type Digest } from '../digest.js';
import { DistillError, isDistillError, messageOf } from '../errors.js';
import { noProgress, type OnProgress } from '../events.js';
import { USER_AGENT } from '../http/open.js';
import { type RetryPolicy, TransientError, defaultRetryPolicy, isTransient, isTransientStatus, parseRetryAfter, withRetry } from '../http/retry.js';
import { type Access, Authenticator, isLoopbackHost, readCappedBody, repositoryScope } from './auth.js';
import { type CredentialOptions, resolveCredentials } from './credentials.js';
import { apiHost } from './reference.js';

export const MEDIA_TYPE_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MEDIA_TYPE_DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
/** What we read: OCI and Docker schema 2 images and indexes (never schema 1). */
export const MANIFEST_ACCEPT = [MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST, MEDIA_TYPE_DOCKER_MANIFEST];

/** distribution refuses manifests over 4 MiB; so do we, both ways. */
export const MANIFEST_CAP = 4 * 1024 * 1024;
const ERROR_BODY_CAP = 64 * 1024;
const TAGS_PAGE_CAP = 4 * 1024 * 1024;
const TAGS_PAGES_MAX = 1000;
const REDIRECTS_MAX = 5;
const MiB = 1024 * 1024;

export interface RegistryOptions {
  credentials?: CredentialOptions;
  /** Allow plain http to a registry that is not on loopback (the CLI's --insecure). */
  insecure?: boolean;
  /** Per request: connecting, waiting for response headers, and idle time while a body flows (default 60 s). */
  timeoutMs?: number;
  retry?: RetryPolicy;
  onProgress?: OnProgress;
  /** Blobs smaller than this go up in one PUT (default 8 MiB); larger ones in PATCH chunks. */
  monolithicMax?: number;
  /** The size of each PATCH of a chunked upload (default 8 MiB); streamed, never buffered. */
  chunkSize?: number;
  userAgent?: string;
}

export interface BlobRef {
  digest: string;
  size: number;
}

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: Digest;
}

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface SendOptions {
  method: Method;
  url: URL;
  scopes: string[];
  headers?: Record<string, string>;
  /** A Buffer (or nothing) can be sent again after a 401; a stream cannot. */
  body?: Buffer | Readable;
  what: string;
  followRedirects?: boolean;
}

const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)*$/;
const TAG_OR_DIGEST = /^(?:[\w][\w.-]{0,127}|sha256:[0-9a-f]{64})$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const NET_HINT = 'the registry or the network failed; retry later';

export class RegistryClient {
  /** The registry as written in references (docker.io, host:port). */
  readonly registry: string;
  /** scheme://host[:port] of its API. */
  readonly base: URL;
  private readonly agent: Agent;
  private readonly auth: Authenticator;
  private readonly policy: RetryPolicy;
  private readonly emit: OnProgress;
  private readonly timeoutMs: number;
  private readonly monolithicMax: number;
  private readonly chunkSize: number;
  private readonly userAgent: string;
  private readonly readAccess: Access;
  private pinged: Promise<void> | undefined;

  /** `access: 'push'` asks for pull,push tokens from the start, so one token serves a whole push. */
  constructor(registry: string, opts: RegistryOptions & { access?: 'pull' | 'push' } = {}) {
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
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.agent = new Agent({
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      connect: { timeout: this.timeoutMs },
    });
    this.policy = opts.retry ?? defaultRetryPolicy;
    this.emit = opts.onProgress ?? noProgress;
    this.monolithicMax = opts.monolithicMax ?? 8 * MiB;
    this.chunkSize = Math.max(1, opts.chunkSize ?? 8 * MiB);
    this.userAgent = opts.userAgent ?? USER_AGENT;
    this.readAccess = opts.access === 'push' ? 'pull,push' : 'pull';
    const credOpts = opts.credentials ?? {};
    this.auth = new Authenticator({
      registry,
      credential: () => resolveCredentials(registry, credOpts),
      dispatcher: this.agent,
      timeoutMs: this.timeoutMs,
      userAgent: this.userAgent,
      allowHttpRealm: plain,
    });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** Which credentials are in use, for messages. */
  describeCredentials(): string {
    return this.auth.describe();
  }

  // ---- blobs ----

  /** HEAD a blob: its size when present, undefined when not. */
  async headBlob(repository: string, digest: string): Promise<{ size: number } | undefined> {
    const what = `blob ${digest} in ${this.registry}/${repository}`;
    return this.retrying(`HEAD ${what}`, async () => {
      const res = await this.send({ method: 'HEAD', url: this.url(repository, 'blobs', digest), scopes: this.readScopes(repository), what, followRedirects: true });
      if (res.statusCode === 404) {
        await res.body.dump();
        return undefined;
      }
      if (res.statusCode !== 200) throw await this.failure(res, what);
      await res.body.dump();
      checkDigestHeader(res, digest, what);
      const len = Number(res.headers['content-length']);
      return { size: Number.isSafeInteger(len) ? len : -1 };
    });
  }

  /**
   * Download a blob to `file` (created or truncated), verified as it streams: a wrong size or digest
   * is REGISTRY_DIGEST_MISMATCH and the file holds unverified bytes (the caller removes it).
   */
  async downloadBlob(repository: string, blob: BlobRef, file: string, onBytes?: (bytes: number) => void): Promise<void> {
    const what = `blob ${blob.digest} from ${this.registry}/${repository}`;
    const hex = hexOf(blob.digest);
    await this.retrying(`download ${what}`, async () => {
      const res = await this.send({ method: 'GET', url: this.url(repository, 'blobs', blob.digest), scopes: this.readScopes(repository), what, followRedirects: true });
      if (res.statusCode !== 200) throw await this.failure(res, what);
      const len = res.headers['content-length'];
      try {
        checkDigestHeader(res, blob.digest, what);
        if (typeof len === 'string' && Number(len) !== blob.size) {
          throw mismatch(`${what}: the registry sends ${len} bytes, the descriptor says ${blob.size}`);
        }
      } catch (e) {
        res.body.destroy();
        throw e;
      }
      let seen = 0;
      const count = new Transform({
        transform(chunk: Buffer, _enc, cb: TransformCallback) {
          seen += chunk.length;
          onBytes?.(seen);
          cb(null, chunk);
        },
      });
      try {
        await pipeline(res.body, count, new VerifyingStream({ size: blob.size, sha256: hex, what }), createWriteStream(file));
      } catch (e) {
        if (isDistillError(e, 'BLOB_DIGEST_MISMATCH') || isDistillError(e, 'BLOB_SIZE_MISMATCH')) throw mismatch(e.message, e);
        if (e instanceof DistillError) throw e;
        if (isTransient(e)) throw new TransientError(`${what}: ${messageOf(e)}`, undefined, e, NET_HINT);
        throw new DistillError('CACHE_IO', `${what}: cannot write ${file}: ${messageOf(e)}`, { cause: e });
      }
    });
  }

  /**
   * Stream a blob, verified as it flows: the stream errors (REGISTRY_DIGEST_MISMATCH) on a wrong size
   * or digest, so a consumer that reaches its end without an error has exactly the bytes named. The
   * request (with its retries) happens before the stream is returned; a break mid-body is the
   * consumer's to retry by opening again.
   */
  async openBlob(repository: string, blob: BlobRef): Promise<Readable> {
    const what = `blob ${blob.digest} from ${this.registry}/${repository}`;
    const hex = hexOf(blob.digest);
    const res = await this.retrying(`GET ${what}`, async () => {
      const r = await this.send({ method: 'GET', url: this.url(repository, 'blobs', blob.digest), scopes: this.readScopes(repository), what, followRedirects: true });
      if (r.statusCode !== 200) throw await this.failure(r, what);
      const len = r.headers['content-length'];
      try {
        checkDigestHeader(r, blob.digest, what);
        if (typeof len === 'string' && Number(len) !== blob.size) {
          throw mismatch(`${what}: the registry sends ${len} bytes, the descriptor says ${blob.size}`);
        }
      } catch (e) {
        r.body.destroy();
        throw e;
      }
      return r;
    });
    const verify = new VerifyingStream({ size: blob.size, sha256: hex, what });
    // 1 MiB of buffer rather than 16 KiB: a copy streams this straight into an upload, and small
    // buffers turn into many small socket writes on the other side.
    const out = new PassThrough({ highWaterMark: MiB });
    pipeline(res.body, verify, out).catch((e: unknown) => {
      const err = isDistillError(e, 'BLOB_DIGEST_MISMATCH') || isDistillError(e, 'BLOB_SIZE_MISMATCH')
        ? mismatch(e.message, e)
        : e instanceof DistillError ? e : new TransientError(`${what}: ${messageOf(e)}`, undefined, e, NET_HINT);
      out.destroy(err);
    });
    return out;
  }

  /**
   * Make a blob present in `repository`: mount it from one of `mountFrom` (same registry) when the
   * registry agrees, else upload it from `open()` — one PUT under `monolithicMax`, PATCH chunks above.
   * The bytes are verified against `blob` as they are read, so a damaged local file is never pushed.
   */
  async uploadBlob(
    repository: string,
    blob: BlobRef,
    open: () => Readable,
    opts: { mountFrom?: string[]; onBytes?: (bytes: number) => void } = {},
  ): Promise<{ outcome: 'uploaded' | 'mounted'; from?: string }> {
    const what = `blob ${blob.digest} to ${this.registry}/${repository}`;
    const hex = hexOf(blob.digest);
    const push = repositoryScope(repository, 'pull,push');
    const uploads = this.url(repository, 'blobs', 'uploads/');
    return this.retrying(`upload ${what}`, async () => {
      let location: URL | undefined;
      const mounts = (opts.mountFrom ?? []).filter((r) => r !== repository);
      for (const [k, from] of mounts.entries()) {
        checkRepository(from);
        const u = new URL(uploads);
        u.searchParams.set('mount', blob.digest);
        u.searchParams.set('from', from);
        const res = await this.send({ method: 'POST', url: u, scopes: [push, repositoryScope(from, 'pull')], what: `mount ${what} from ${from}` });
        if (res.statusCode === 201) {
          await res.body.dump();
          checkDigestHeader(res, blob.digest, what);
          return { outcome: 'mounted', from };
        }
        if (res.statusCode !== 202) throw await this.failure(res, `mount ${what} from ${from}`);
        // 202: not mounted (unknown there, or not allowed); the registry opened an upload session instead.
        const loc = locationOf(res, u, this.base, what);
        await res.body.dump();
        if (k === mounts.length - 1) location = loc;
        else await this.abandon(loc, push);
      }
      if (location === undefined) {
        const res = await this.send({ method: 'POST', url: uploads, scopes: [push], what });
        if (res.statusCode !== 202) throw await this.failure(res, `start the upload of ${what}`);
        location = locationOf(res, uploads, this.base, what);
        await res.body.dump();
      }

      const source = verifiedSource(open, blob, hex, opts.onBytes);
      try {
        let res: Dispatcher.ResponseData;
        if (blob.size < this.monolithicMax) {
          const put = withDigest(location, blob.digest);
          res = await this.send({
            method: 'PUT',
            url: put,
            scopes: [push],
            headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
            body: source,
            what,
          });
        } else {
          const reader = new ChunkReader(source[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
          for (let offset = 0; offset < blob.size; ) {
            const len = Math.min(this.chunkSize, blob.size - offset);
            const patch = await this.send({
              method: 'PATCH',
              url: location,
              scopes: [push],
              headers: {
                'content-type': 'application/octet-stream',
                'content-length': String(len),
                'content-range': `${offset}-${offset + len - 1}`,
              },
              body: Readable.from(reader.take(len), { objectMode: false }),
              what,
            });
            if (patch.statusCode !== 202) throw await this.failure(patch, `upload ${what} (bytes ${offset}-${offset + len - 1})`);
            const range = patch.headers['range'];
            if (typeof range === 'string' && range !== `0-${offset + len - 1}` && range !== `bytes=0-${offset + len - 1}`) {
              await patch.body.dump();
              throw new DistillError('REGISTRY_PROTOCOL', `${what}: after bytes 0-${offset + len - 1} the registry reports the range ${JSON.stringify(range.slice(0, 100))}`);
            }
            location = locationOf(patch, location, this.base, what);
            await patch.body.dump();
            offset += len;
          }
          // The source must end exactly here; its end is where the local digest is checked.
          await reader.end();
          res = await this.send({
            method: 'PUT',
            url: withDigest(location, blob.digest),
            scopes: [push],
            headers: { 'content-length': '0' },
            body: Buffer.alloc(0),
            what,
          });
        }
        if (res.statusCode !== 201) throw await this.failure(res, `finish the upload of ${what}`);
        await res.body.dump();
        checkDigestHeader(res, blob.digest, what);
        return { outcome: 'uploaded' };
      } finally {
        source.destroy();
      }
    });
  }

  // ---- manifests ----

  /** HEAD a manifest by tag or digest: its digest, media type and size, or undefined when absent. */
  async headManifest(repository: string, reference: string): Promise<{ digest?: string; mediaType?: string; size?: number } | undefined> {
    const what = `manifest ${reference} in ${this.registry}/${repository}`;
    return this.retrying(`HEAD ${what}`, async () => {
      const res = await this.send({
        method: 'HEAD',
        url: this.url(repository, 'manifests', reference),
        scopes: this.readScopes(repository),
        headers: { accept: MANIFEST_ACCEPT.join(', ') },
        what,
      });
      if (res.statusCode === 404) {
        await res.body.dump();
        return undefined;
      }
      if (res.statusCode !== 200) throw await this.failure(res, what);
      await res.body.dump();
      if (DIGEST.test(reference)) checkDigestHeader(res, reference, what);
      const d = header(res, 'docker-content-digest');
      const t = header(res, 'content-type');
      const len = Number(header(res, 'content-length'));
      return {
        ...(d !== undefined && DIGEST.test(d) ? { digest: d } : {}),
        ...(t !== undefined ? { mediaType: t.split(';')[0]!.trim() } : {}),
        ...(Number.isSafeInteger(len) ? { size: len } : {}),
      };
    });
  }

  /** GET a manifest or index by tag or digest; its bytes are hashed and checked against what was asked and what the registry claims. */
  async getManifest(repository: string, reference: string, accept: string[] = MANIFEST_ACCEPT): Promise<FetchedManifest> {
    const what = `manifest ${reference} in ${this.registry}/${repository}`;
    return this.retrying(`GET ${what}`, async () => {
      const res = await this.send({
        method: 'GET',
        url: this.url(repository, 'manifests', reference),
        scopes: this.readScopes(repository),
        headers: { accept: accept.join(', ') },
        what,
        followRedirects: true,
      });
      if (res.statusCode !== 200) throw await this.failure(res, what);
      const bytes = await readCappedBody(res, MANIFEST_CAP, what);
      const digest = toDigest(sha256Hex(bytes));
      if (DIGEST.test(reference) && digest !== reference) throw mismatch(`${what}: the registry sent bytes whose digest is ${digest}`);
      checkDigestHeader(res, digest, what);
      let fromBody: unknown;
      try {
        fromBody = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown } | null)?.mediaType;
      } catch (e) {
        throw new DistillError('REGISTRY_PROTOCOL', `${what}: not JSON`, { cause: e });
      }
      const fromHeader = header(res, 'content-type')?.split(';')[0]?.trim();
      const mediaType = typeof fromBody === 'string' && fromBody !== '' ? fromBody : fromHeader;
      if (mediaType === undefined || !accept.includes(mediaType)) {
        throw new DistillError('REGISTRY_PROTOCOL', `${what}: unsupported media type ${JSON.stringify(String(mediaType).slice(0, 100))}`, {
          hint: `distill reads ${accept.join(', ')}`,
        });
      }
      return { bytes, mediaType, digest };
    });
  }

  /** PUT a manifest or index under a tag or its digest; returns its digest (checked against the registry's). */
  async putManifest(repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<Digest> {
    const what = `manifest ${reference} to ${this.registry}/${repository}`;
    if (bytes.length > MANIFEST_CAP) {
      throw new DistillError('OCI_INVALID', `${what}: ${bytes.length} bytes, more than registries accept (${MANIFEST_CAP})`);
    }
    const digest = toDigest(sha256Hex(bytes));
    if (DIGEST.test(reference) && reference !== digest) {
      throw new DistillError('OCI_INVALID', `${what}: the bytes have the digest ${digest}`);
    }
    return this.retrying(`PUT ${what}`, async () => {
      const res = await this.send({
        method: 'PUT',
        url: this.url(repository, 'manifests', reference),
        scopes: [repositoryScope(repository, 'pull,push')],
        headers: { 'content-type': mediaType },
        body: bytes,
        what,
      });
      if (res.statusCode !== 201) throw await this.failure(res, what);
      await res.body.dump();
      checkDigestHeader(res, digest, what);
      return digest;
    });
  }

  /**
   * GET /v2/<repository>/referrers/<digest> (OCI distribution spec 1.1, "Listing referrers"): the
   * index's bytes, or undefined when the registry has no referrers API (404, as distribution 2.8
   * answers; the caller then reads the `sha256-<hex>` fallback tag). The index is untrusted and capped.
   */
  async getReferrers(repository: string, digest: string): Promise<Buffer | undefined> {
    if (!DIGEST.test(digest)) throw new DistillError('REFERENCE_INVALID', `${JSON.stringify(digest)} is not a sha256 digest`);
    const what = `the referrers of ${digest} in ${this.registry}/${repository}`;
    const url = new URL(`/v2/${checkRepository(repository)}/referrers/${digest}`, this.base);
    return this.retrying(`GET ${what}`, async () => {
      const res = await this.send({ method: 'GET', url, scopes: this.readScopes(repository), headers: { accept: MEDIA_TYPE_OCI_INDEX }, what });
      if (res.statusCode === 404) {
        await res.body.dump();
        return undefined;
      }
      if (res.statusCode !== 200) throw await this.failure(res, what);
      return readCappedBody(res, MANIFEST_CAP, what);
    });
  }

  /** Every tag of a repository (following Link pagination, bounded). */
  async listTags(repository: string): Promise<string[]> {
    const what = `the tags of ${this.registry}/${repository}`;
    const tags: string[] = [];
    let url: URL | undefined = new URL(`/v2/${checkRepository(repository)}/tags/list`, this.base);
    for (let page = 0; url !== undefined; page++) {
      if (page >= TAGS_PAGES_MAX) throw new DistillError('REGISTRY_PROTOCOL', `${what}: more than ${TAGS_PAGES_MAX} pages`);
      const pageUrl: URL = url;
      const { names, next } = await this.retrying(`GET ${what}`, async () => {
        const res = await this.send({ method: 'GET', url: pageUrl, scopes: this.readScopes(repository), what });
        if (res.statusCode !== 200) throw await this.failure(res, what);
        const text = (await readCappedBody(res, TAGS_PAGE_CAP, what)).toString('utf8');
        let parsed: { tags?: unknown };
        try {
          parsed = JSON.parse(text) as { tags?: unknown };
        } catch (e) {
          throw new DistillError('REGISTRY_PROTOCOL', `${what}: not JSON`, { cause: e });
        }
        const list = parsed.tags === null || parsed.tags === undefined ? [] : parsed.tags;
        if (!Array.isArray(list) || list.some((t) => typeof t !== 'string')) throw new DistillError('REGISTRY_PROTOCOL', `${what}: "tags" is not a list of strings`);
        return { names: list as string[], next: nextLink(header(res, 'link'), pageUrl, this.base) };
      });
      tags.push(...names);
      url = next;
    }
    return tags;
  }

  // ---- plumbing ----

  private readScopes(repository: string): string[] {
    return [repositoryScope(repository, this.readAccess)];
  }

  private url(repository: string, kind: 'blobs' | 'manifests', reference: string): URL {
    checkRepository(repository);
    if (reference !== 'uploads/' && !TAG_OR_DIGEST.test(reference)) {
      throw new DistillError('REFERENCE_INVALID', `${JSON.stringify(reference)} is neither a tag nor a sha256 digest`);
    }
    return new URL(`/v2/${repository}/${kind}/${reference}`, this.base);
  }

  private retrying<T>(what: string, op: (attempt: number) => Promise<T>): Promise<T> {
    return withRetry(this.policy, op, {
      onRetry: (attempt, delayMs, e) => this.emit({ type: 'retry', what, attempt, delayMs, reason: messageOf(e) }),
    });
  }

  /** GET /v2/ once: learn whether and how the registry wants us to authenticate. Not retried itself: the calling operation is. */
  private ping(): Promise<void> {
    this.pinged ??= (async () => {
      const url = new URL('/v2/', this.base);
      const res = await this.request(url, 'GET', { 'user-agent': this.userAgent }, undefined, `${this.registry}/v2/`);
      await res.body.dump();
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
  private async send(o: SendOptions): Promise<Dispatcher.ResponseData> {
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
        await res.body.dump();
        throw new DistillError('REGISTRY_AUTH', `${o.what}: ${finalUrl.origin} (a redirect target) asked for authentication; distill sends credentials only to ${this.base.origin}`, {
          hint: 'the registry redirected to a host that wants credentials; this is refused on purpose',
        });
      }
      const challenge = res.headers['www-authenticate'];
      await res.body.dump();
      const before = this.auth.schemeKind;
      const learnt = this.auth.learn(challenge);
      const worthRetry = learnt && (tries === 0) && !(before === 'basic' && this.auth.schemeKind === 'basic' && this.auth.hasCredential);
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

  /** The request itself, following redirects for reads; credentials only ever go to the registry's origin. */
  private async sendOnce(o: SendOptions, scopes: string[], refresh: boolean): Promise<{ res: Dispatcher.ResponseData; url: URL }> {
    let url = o.url;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...o.headers };
      if (url.origin === this.base.origin) {
        const a = await this.auth.authorization(scopes, refresh && hop === 0);
        if (a !== undefined) headers['authorization'] = a;
      }
      const res = await this.request(url, o.method, headers, hop === 0 ? o.body : undefined, o.what);
      const loc = header(res, 'location');
      if (o.followRedirects !== true || ![301, 302, 303, 307, 308].includes(res.statusCode) || loc === undefined) return { res, url };
      await res.body.dump();
      if (hop >= REDIRECTS_MAX) throw new DistillError('REGISTRY_PROTOCOL', `${o.what}: more than ${REDIRECTS_MAX} redirects`);
      const next = new URL(loc, url);
      if (next.protocol !== 'https:' && !(next.protocol === 'http:' && url.protocol === 'http:')) {
        throw new DistillError('REGISTRY_PROTOCOL', `${o.what}: refusing a redirect from ${url.protocol} to ${next.protocol}`);
      }
      url = next;
    }
  }

  private async request(url: URL, method: Method, headers: Record<string, string>, body: SendOptions['body'], what: string): Promise<Dispatcher.ResponseData> {
    try {
      return await request(url, { method, headers, ...(body === undefined ? {} : { body }), dispatcher: this.agent });
    } catch (e) {
      // A body stream that failed (a local blob that does not match its digest) surfaces here as itself.
      if (e instanceof DistillError) throw e;
      if (isTransient(e)) throw new TransientError(`${what}: ${url.origin}: ${messageOf(e)}`, undefined, e, NET_HINT);
      throw new DistillError('FETCH_FAILED', `${what}: ${url.origin}: ${messageOf(e)}`, { cause: e, hint: 'check the registry address and the network' });
    }
  }

  /** Abandon an upload session we will not use (best effort: the registry purges stale sessions anyway). */
  private async abandon(location: URL, scope: string): Promise<void> {
    try {
      const { res } = await this.sendOnce({ method: 'DELETE', url: location, scopes: [scope], what: 'cancel an upload' }, [scope], false);
      await res.body.dump();
    } catch {
      // ignored
    }
  }

  /** The error for an unexpected status, with the registry's own error codes (spec.md "Error Codes"). */
  private async failure(res: Dispatcher.ResponseData, what: string): Promise<DistillError> {
    let summary = '';
    let codes: string[] = [];
    try {
      const text = (await readCappedBody(res, ERROR_BODY_CAP, what)).toString('utf8');
      const parsed = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] };
      if (Array.isArray(parsed.errors)) {
        codes = parsed.errors.map((x) => (typeof x?.code === 'string' ? x.code : '')).filter((x) => x !== '');
        summary = parsed.errors
          .slice(0, 3)
          .map((x) => [x?.code, x?.message].filter((v) => typeof v === 'string').join(': '))
          .join('; ');
      }
    } catch {
      res.body.destroy();
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

// ---- helpers ----

/** A Docker-Content-Digest that disagrees with what we sent or received is never accepted. */
function checkDigestHeader(res: Dispatcher.ResponseData, expected: string, what: string): void {
  const got = header(res, 'docker-content-digest');
  if (got !== undefined && got !== expected) {
    throw mismatch(`${what}: the registry reports the digest ${JSON.stringify(got.slice(0, 100))}, expected ${expected}`);
  }
}

function mismatch(message: string, cause?: unknown): DistillError {
  return new DistillError('REGISTRY_DIGEST_MISMATCH', message, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'the registry (or something between it and us) altered the content; do not trust it',
  });
}

function header(res: Dispatcher.ResponseData, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function retryAfter(res: Dispatcher.ResponseData): number | undefined {
  return parseRetryAfter(header(res, 'retry-after'), Date.now());
}

function hexOf(digest: string): string {
  if (!DIGEST.test(digest)) throw new DistillError('OCI_INVALID', `${JSON.stringify(digest)} is not a sha256 digest`);
  return digest.slice('sha256:'.length);
}

function checkRepository(repository: string): string {
  if (!REPOSITORY.test(repository) || repository.length > 255) {
    throw new DistillError('REFERENCE_INVALID', `${JSON.stringify(repository)} is not a repository name`, {
      hint: 'repository names are lower-case path components, e.g. distill/static',
    });
  }
  return repository;
}

/** An upload's Location (absolute or relative to the request), kept on http(s) and never downgraded. */
function locationOf(res: Dispatcher.ResponseData, requestUrl: URL, base: URL, what: string): URL {
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

function withDigest(location: URL, digest: string): URL {
  const u = new URL(location.href);
  u.searchParams.set('digest', digest);
  return u;
}

/** RFC 8288 Link: <url>; rel="next", resolved against the page and kept on the registry's origin. */
function nextLink(link: string | undefined, page: URL, base: URL): URL | undefined {
  if (link === undefined) return undefined;
  const m = /<([^>]*)>\s*;\s*rel="?next"?/.exec(link);
  if (m === null) return undefined;
  const next = new URL(m[1]!, page);
  if (next.origin !== base.origin) throw new DistillError('REGISTRY_PROTOCOL', `the tag list links to another origin (${next.origin})`);
  return next;
}

/** `open()` piped through a VerifyingStream (local bytes must match the descriptor) and a byte counter. */
function verifiedSource(open: () => Readable, blob: BlobRef, hex: string, onBytes: ((n: number) => void) | undefined): PassThrough {
  const out = new PassThrough({ highWaterMark: MiB });
  let seen = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      seen += chunk.length;
      onBytes?.(seen);
      cb(null, chunk);
    },
  });
  // A local read failure is LAYER_IO, not something to retry or blame on the network.
  const local = (e: unknown): DistillError =>
    e instanceof DistillError ? e : new DistillError('LAYER_IO', `cannot read the local blob ${blob.digest}: ${messageOf(e)}`, { cause: e });
  async function* read(): AsyncGenerator<Buffer> {
    let src: Readable;
    try {
      src = open();
    } catch (e) {
      throw local(e);
    }
    try {
      for await (const c of src) yield c as Buffer;
    } catch (e) {
      throw local(e);
    } finally {
      src.destroy();
    }
  }
  const verify = new VerifyingStream({ size: blob.size, sha256: hex, what: `the local blob ${blob.digest}` });
  pipeline(Readable.from(read(), { objectMode: false }), verify, count, out).catch(() => {
    // pipeline destroys `out` with the error; its reader (the request) reports it
  });
  return out;
}

/** Takes exact byte counts from a stream for PATCH chunks, without buffering more than one read. */
class ChunkReader {
  private leftover: Buffer | undefined;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  async *take(n: number): AsyncGenerator<Buffer> {
    let remaining = n;
    while (remaining > 0) {
      let b = this.leftover;
      this.leftover = undefined;
      if (b === undefined) {
        const r = await this.it.next();
        if (r.done === true) throw new DistillError('BLOB_SIZE_MISMATCH', `the local blob ended ${remaining} bytes early`);
        b = r.value;
      }
      if (b.length > remaining) {
        this.leftover = b.subarray(remaining);
        b = b.subarray(0, remaining);
      }
      remaining -= b.length;
      yield b;
    }
  }

  /** The stream must be at its end (which is when its digest is checked). */
  async end(): Promise<void> {
    if (this.leftover !== undefined && this.leftover.length > 0) throw new DistillError('BLOB_SIZE_MISMATCH', 'the local blob is longer than its descriptor says');
    const r = await this.it.next();
    if (r.done !== true) throw new DistillError('BLOB_SIZE_MISMATCH', 'the local blob is longer than its descriptor says');
  }
}
