// Blobs over the OCI distribution spec 1.1 (spec.md "Pulling blobs", "Pushing blobs", "Mounting a
// blob from another repository"): HEAD, GET (streamed, verified as it flows), and upload — a
// cross-repository mount when the registry agrees, else POST then one PUT with the whole body
// (monolithic) or PATCH chunks for large local files. Every byte is checked against the descriptor
// that names it, exactly once per copy: a stream this module verified carries a mark, and an upload
// of a marked stream does not hash it again (the stream still fails, and so aborts the upload, on a
// wrong size or digest). Docker-Content-Digest headers are checked on every response that has one.
import { createWriteStream } from 'node:fs';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash, type Hash } from 'node:crypto';
import { VerifyingStream } from '../digest.js';
import { DistillError, messageOf } from '../errors.js';
import { TransientError, isTransient } from '../http/retry.js';
import { type LowSpeedLimit, watchLowSpeed } from '../http/low-speed.js';
import { discardBody, repositoryScope } from './auth.js';
import { NET_HINT, type Response, type Transport, checkDigestHeader, checkRepository, drain, locationOf, mismatch } from './transport.js';

const MiB = 1024 * 1024;

export interface BlobRef {
  digest: string;
  size: number;
}

export interface UploadOptions {
  /** Blobs smaller than this go up in one PUT (default 8 MiB); larger ones in PATCH chunks. */
  monolithicMax: number;
  /** The size of each PATCH of a chunked upload (default 8 MiB); streamed, never buffered. */
  chunkSize: number;
}

export const defaultUploadOptions: UploadOptions = { monolithicMax: 8 * MiB, chunkSize: 8 * MiB };

// ---- the "already verified" mark ----

const verified = new WeakMap<Readable, string>();
const keyOf = (b: BlobRef): string => `${b.digest}/${b.size}`;

/**
 * Mark `stream` as one that errors unless it carries exactly the bytes of `blob` (it ends only after
 * checking them). A stream that merely forwards a marked one — errors included, and ending only when
 * it ends — may be marked too (blobStream).
 */
export function markVerified(stream: Readable, blob: BlobRef): Readable {
  verified.set(stream, keyOf(blob));
  return stream;
}

export function isVerified(stream: Readable, blob: BlobRef): boolean {
  return verified.get(stream) === keyOf(blob);
}

// ---- reading ----

export async function headBlob(t: Transport, repository: string, digest: string): Promise<{ size: number } | undefined> {
  const what = `blob ${digest} in ${t.registry}/${repository}`;
  return t.retrying(`HEAD ${what}`, async () => {
    const res = await t.send({ method: 'HEAD', url: t.url(repository, 'blobs', digest), scopes: t.readScopes(repository), what, followRedirects: true });
    if (res.statusCode === 404) {
      await drain(res);
      return undefined;
    }
    if (res.statusCode !== 200) throw await t.failure(res, what);
    await drain(res);
    checkDigestHeader(res, digest, what);
    const len = Number(res.headers['content-length']);
    return { size: Number.isSafeInteger(len) ? len : -1 };
  });
}

/** GET a blob (following a redirect to storage); the response is checked for a wrong length or digest header before its body is read. */
async function getBlob(t: Transport, repository: string, blob: BlobRef, what: string): Promise<Response> {
  hexOf(blob.digest);
  const res = await t.send({ method: 'GET', url: t.url(repository, 'blobs', blob.digest), scopes: t.readScopes(repository), what, followRedirects: true });
  if (res.statusCode !== 200) throw await t.failure(res, what);
  const len = res.headers['content-length'];
  try {
    checkDigestHeader(res, blob.digest, what);
    if (typeof len === 'string' && Number(len) !== blob.size) {
      throw mismatch(`${what}: the registry sends ${len} bytes, the descriptor says ${blob.size}`);
    }
  } catch (e) {
    discardBody(res);
    throw e;
  }
  return res;
}

/**
 * Stream a blob, verified as it flows: the stream errors (REGISTRY_DIGEST_MISMATCH) on a wrong size
 * or digest, so a consumer that reaches its end without an error has exactly the bytes named. The
 * request (with its retries) happens before the stream is returned; a break mid-body is the
 * consumer's to retry by opening again. The body is never more than the descriptor's size.
 */
export async function openBlob(t: Transport, repository: string, blob: BlobRef, onBytes?: (bytes: number) => void): Promise<Readable> {
  const what = `blob ${blob.digest} from ${t.registry}/${repository}`;
  const res = await t.retrying(`GET ${what}`, () => getBlob(t, repository, blob, what));
  const verify = new RegistryVerify(blob, what, onBytes);
  feed(res, verify, what, t.lowSpeed);
  return markVerified(verify, blob);
}

/**
 * The blob as a Readable at once (a model Layer's `open()` is synchronous), its GET made now: the
 * same verifying stream openBlob returns, fed when the response arrives, so it carries the same mark.
 */
export function blobStream(t: Transport, repository: string, blob: BlobRef): Readable {
  const what = `blob ${blob.digest} from ${t.registry}/${repository}`;
  const verify = new RegistryVerify(blob, what, undefined);
  // The GET may fail before the consumer (an upload's request) listens: the error must wait for it,
  // not crash the process. Consumers still see it (they read the stream, which is destroyed with it).
  verify.on('error', () => {});
  t.retrying(`GET ${what}`, () => getBlob(t, repository, blob, what)).then(
    (res) => {
      if (verify.destroyed) discardBody(res);
      else feed(res, verify, what, t.lowSpeed);
    },
    (e: unknown) => verify.destroy(e as Error),
  );
  return markVerified(verify, blob);
}

/** Pipe a response body into its verifier; a network error mid-body is transient (the consumer opens again). */
function feed(res: Response, verify: RegistryVerify, what: string, lowSpeed: LowSpeedLimit): void {
  res.body.on('error', (e: unknown) => verify.destroy(e instanceof DistillError ? e : new TransientError(`${what}: ${messageOf(e)}`, undefined, e, NET_HINT)));
  verify.on('close', () => discardBody(res));
  // A registry (attacker-controlled) that sends a byte now and then never trips the idle timeout.
  watchLowSpeed(res.body, verify, lowSpeed, () => slow(what, lowSpeed));
  res.body.pipe(verify);
}

function slow(what: string, l: LowSpeedLimit): TransientError {
  return new TransientError(`${what}: the registry sent under ${l.bytes} bytes in ${l.windowMs / 1000} s`, undefined, undefined, NET_HINT);
}

/**
 * Download a blob to `file` (created or truncated), verified as it streams: a wrong size or digest
 * is REGISTRY_DIGEST_MISMATCH and the file holds unverified bytes (the caller removes it).
 */
export async function downloadBlob(t: Transport, repository: string, blob: BlobRef, file: string, onBytes?: (bytes: number) => void): Promise<void> {
  const what = `blob ${blob.digest} from ${t.registry}/${repository}`;
  await t.retrying(`download ${what}`, async () => {
    const res = await getBlob(t, repository, blob, what);
    try {
      const verify = new RegistryVerify(blob, what, onBytes);
      watchLowSpeed(res.body, verify, t.lowSpeed, () => slow(what, t.lowSpeed));
      await pipeline(res.body, verify, createWriteStream(file));
    } catch (e) {
      if (e instanceof DistillError) throw e;
      if (isTransient(e)) throw new TransientError(`${what}: ${messageOf(e)}`, undefined, e, NET_HINT);
      throw new DistillError('CACHE_IO', `${what}: cannot write ${file}: ${messageOf(e)}`, { cause: e });
    }
  });
}

/** Hashes and counts a registry's bytes; errors the moment there are too many, and at the end on a wrong size or digest. */
class RegistryVerify extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private seen = 0;
  private readonly hex: string;

  /** Told the running byte count; settable by whoever consumes the stream (an upload's progress). */
  onBytes: ((n: number) => void) | undefined;

  constructor(private readonly blob: BlobRef, private readonly what: string, onBytes: ((n: number) => void) | undefined) {
    // 1 MiB of buffer rather than 16 KiB: a copy streams this straight into an upload, and small
    // buffers turn into many small socket writes on the other side.
    super({ readableHighWaterMark: MiB });
    this.hex = hexOf(blob.digest);
    this.onBytes = onBytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.blob.size) {
      cb(mismatch(`${this.what}: more than the ${this.blob.size} bytes the descriptor says`));
      return;
    }
    this.hash.update(chunk);
    this.onBytes?.(this.seen);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.seen !== this.blob.size) {
      cb(mismatch(`${this.what}: ${this.seen} bytes, the descriptor says ${this.blob.size}`));
      return;
    }
    const got = this.hash.digest('hex');
    cb(got === this.hex ? null : mismatch(`${this.what}: the bytes have the digest sha256:${got}`));
  }
}

// ---- writing ----

/**
 * Make a blob present in `repository`: mount it from one of `mountFrom` (same registry) when the
 * registry agrees, else upload it from `open()` — one PUT under `monolithicMax`, PATCH chunks above.
 * The bytes are verified against `blob` as they are read (once: a stream already verified by
 * openBlob is not hashed again), so damaged bytes are never pushed.
 */
export async function uploadBlob(
  t: Transport,
  repository: string,
  blob: BlobRef,
  open: () => Readable,
  opts: { mountFrom?: string[]; onBytes?: (bytes: number) => void } & Partial<UploadOptions> = {},
): Promise<{ outcome: 'uploaded' | 'mounted'; from?: string }> {
  const what = `blob ${blob.digest} to ${t.registry}/${repository}`;
  const hex = hexOf(blob.digest);
  const push = t.pushScope(repository);
  const uploads = t.url(repository, 'blobs', 'uploads/');
  const monolithicMax = opts.monolithicMax ?? defaultUploadOptions.monolithicMax;
  const chunkSize = Math.max(1, opts.chunkSize ?? defaultUploadOptions.chunkSize);
  return t.retrying(`upload ${what}`, async () => {
    let location: URL | undefined;
    const mounts = (opts.mountFrom ?? []).filter((r) => r !== repository);
    // Nothing to mount from: this is an upload. Open the source now, so that its first bytes (in a
    // copy, the source registry's GET) are on their way while the registry opens the upload session,
    // instead of one round trip after it.
    const early = mounts.length === 0 ? uploadBody(open, blob, hex, opts.onBytes) : undefined;
    try {
      for (const [k, from] of mounts.entries()) {
        checkRepository(from);
        const u = new URL(uploads);
        u.searchParams.set('mount', blob.digest);
        u.searchParams.set('from', from);
        const res = await t.send({ method: 'POST', url: u, scopes: [push, repositoryScope(from, 'pull')], what: `mount ${what} from ${from}` });
        if (res.statusCode === 201) {
          await drain(res);
          checkDigestHeader(res, blob.digest, what);
          return { outcome: 'mounted', from };
        }
        if (res.statusCode !== 202) throw await t.failure(res, `mount ${what} from ${from}`);
        // 202: not mounted (unknown there, or not allowed); the registry opened an upload session instead.
        const loc = locationOf(res, u, t.base, what);
        await drain(res);
        if (k === mounts.length - 1) location = loc;
        else await t.abandon(loc, push);
      }
      if (location === undefined) {
        const res = await t.send({ method: 'POST', url: uploads, scopes: [push], what });
        if (res.statusCode !== 202) throw await t.failure(res, `start the upload of ${what}`);
        location = locationOf(res, uploads, t.base, what);
        await drain(res);
      }
    } catch (e) {
      early?.destroy();
      throw e;
    }

    const source = early ?? uploadBody(open, blob, hex, opts.onBytes);
    try {
      let res: Response;
      if (blob.size < monolithicMax) {
        try {
          res = await t.send({
            method: 'PUT',
            url: withDigest(location, blob.digest),
            scopes: [push],
            headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
            body: source,
            what,
          });
        } catch (e) {
          throw localFailure(source) ?? e;
        }
      } else {
        const reader = new ChunkReader(source[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
        for (let offset = 0; offset < blob.size; ) {
          const len = Math.min(chunkSize, blob.size - offset);
          const patch = await t.send({
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
          if (patch.statusCode !== 202) throw await t.failure(patch, `upload ${what} (bytes ${offset}-${offset + len - 1})`);
          const range = patch.headers['range'];
          if (typeof range === 'string' && range !== `0-${offset + len - 1}` && range !== `bytes=0-${offset + len - 1}`) {
            await drain(patch);
            throw new DistillError('REGISTRY_PROTOCOL', `${what}: after bytes 0-${offset + len - 1} the registry reports the range ${JSON.stringify(range.slice(0, 100))}`);
          }
          location = locationOf(patch, location, t.base, what);
          await drain(patch);
          offset += len;
        }
        // The source must end exactly here; its end is where the local digest is checked.
        await reader.end();
        res = await t.send({
          method: 'PUT',
          url: withDigest(location, blob.digest),
          scopes: [push],
          headers: { 'content-length': '0' },
          body: Buffer.alloc(0),
          what,
        });
      }
      if (res.statusCode !== 201) {
        // Every byte went out before the local digest check failed, so the registry may answer
        // DIGEST_INVALID first (or cut the connection): the local fault is the one to report.
        const local = localFailure(source);
        if (local !== undefined) {
          await drain(res);
          throw local;
        }
        throw await t.failure(res, `finish the upload of ${what}`);
      }
      await drain(res);
      checkDigestHeader(res, blob.digest, what);
      return { outcome: 'uploaded' };
    } finally {
      source.destroy();
    }
  });
}

// ---- helpers ----

export function hexOf(digest: string): string {
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new DistillError('OCI_INVALID', `${JSON.stringify(digest)} is not a sha256 digest`);
  return digest.slice('sha256:'.length);
}

function withDigest(location: URL, digest: string): URL {
  const u = new URL(location.href);
  u.searchParams.set('digest', digest);
  return u;
}

/**
 * The body of an upload: `open()` checked against the descriptor (unless the stream is one already
 * verified as it flows) and counted. A local read failure is LAYER_IO, not something to retry or blame
 * on the network.
 */
function uploadBody(open: () => Readable, blob: BlobRef, hex: string, onBytes: ((n: number) => void) | undefined): Readable {
  const local = (e: unknown): DistillError =>
    e instanceof DistillError ? e : new DistillError('LAYER_IO', `cannot read the local blob ${blob.digest}: ${messageOf(e)}`, { cause: e });
  let src: Readable;
  try {
    src = open();
  } catch (e) {
    throw local(e);
  }
  // A registry blob streaming in (a copy): already verified, and it counts its own bytes — it goes
  // out as it is, with no stream hop in between.
  if (isVerified(src, blob) && src instanceof RegistryVerify && (onBytes === undefined || src.onBytes === undefined)) {
    if (onBytes !== undefined) src.onBytes = onBytes;
    return src;
  }
  const stages: Transform[] = [];
  if (!isVerified(src, blob)) stages.push(new VerifyingStream({ size: blob.size, sha256: hex, what: `the local blob ${blob.digest}` }));
  if (onBytes !== undefined || stages.length > 0) {
    // Counts, and gives the request 1 MiB of buffer to read from (a file's 64 KiB reads otherwise
    // turn into small socket writes).
    let seen = 0;
    stages.push(new Transform({
      readableHighWaterMark: MiB,
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        seen += chunk.length;
        onBytes?.(seen);
        cb(null, chunk);
      },
    }));
  }
  const out = stages.at(-1);
  if (out === undefined) return src;
  // The source's own error is mapped (and wins: this listener runs before the pipeline's).
  src.once('error', (e) => out.destroy(local(e)));
  pipeline([src, ...stages]).catch(() => {
    // pipeline destroys the last stage with the error; its reader (the request) reports it
  });
  out.once('close', () => src.destroy());
  return out;
}

/** The error a local upload body failed with (a digest or size mismatch, a read error), if any. */
function localFailure(body: Readable): DistillError | undefined {
  const e = body.errored;
  return e instanceof DistillError ? e : undefined;
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

