// Opening a URL as a byte stream: http(s) through undici, file:// from disk. Every mirror access goes
// through here. Bodies read whole (InRelease, index files) are size-capped; everything else streams.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { undici } from './undici.js';
import { DistillError, messageOf } from '../errors.js';
import { TransientError, isTransientStatus, parseRetryAfter } from './retry.js';
import { DEFAULT_LOW_SPEED, guardLowSpeed, type LowSpeedLimit } from './low-speed.js';

export const USER_AGENT = 'distill (+reproducible distroless images)';

export interface Opened {
  body: Readable;
  /** From Content-Length or the file size, when known. */
  length: number | undefined;
}

/**
 * Open `url` for reading. 404 and a missing file are NOT_FOUND_IN_MIRROR; transient failures throw
 * TransientError, and so does an http(s) body slower than `lowSpeed` (see low-speed.ts).
 */
export async function openUrl(url: string, what: string, lowSpeed: LowSpeedLimit = DEFAULT_LOW_SPEED): Promise<Opened> {
  const u = new URL(url);
  if (u.protocol === 'file:') {
    let path: string;
    try {
      path = fileURLToPath(u);
    } catch (e) {
      // A mirror from a flag, the environment or a definition (file://host/x, an encoded slash): no local path.
      throw new DistillError('MIRROR_INVALID', `${what}: ${url} is not a local file URL: ${messageOf(e)}`, { cause: e, hint: 'write file:///path/to/mirror (three slashes, no host)' });
    }
    try {
      const st = await stat(path);
      if (!st.isFile()) throw new DistillError('NOT_FOUND_IN_MIRROR', `${what}: ${path} is not a file`);
      return { body: createReadStream(path), length: st.size };
    } catch (e) {
      if (e instanceof DistillError) throw e;
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new DistillError('NOT_FOUND_IN_MIRROR', `${what} not found in mirror: ${path}`, {
          cause: e,
          hint: 'the mirror does not hold this file; check the mirror URL, or relock against a mirror that has it',
        });
      }
      throw new DistillError('FETCH_FAILED', `${what}: cannot read ${path}: ${messageOf(e)}`, { cause: e });
    }
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new DistillError('MIRROR_INVALID', `${what}: unsupported URL scheme ${u.protocol}`, {
      hint: 'mirrors are http://, https:// or file:// URLs',
    });
  }
  let res;
  try {
    const { request } = await undici();
    res = await request(url, {
      method: 'GET',
      headers: { 'user-agent': USER_AGENT },
      maxRedirections: 5,
      headersTimeout: 30_000,
      bodyTimeout: 60_000,
    });
  } catch (e) {
    throw new TransientError(`${what}: ${url}: ${messageOf(e)}`, undefined, e);
  }
  if (res.statusCode === 200) {
    const len = res.headers['content-length'];
    const slow = (): Error => new TransientError(`${what}: ${url}: the server sent under ${lowSpeed.bytes} bytes in ${lowSpeed.windowMs / 1000} s`);
    return { body: guardLowSpeed(res.body, lowSpeed, slow), length: typeof len === 'string' ? Number(len) : undefined };
  }
  res.body.resume(); // drain so the connection is reused
  if (res.statusCode === 404 || res.statusCode === 410) {
    throw new DistillError('NOT_FOUND_IN_MIRROR', `${what} not found in mirror: ${url} (HTTP ${res.statusCode})`, {
      hint: 'the mirror does not hold this file; check the mirror URL, or relock against a mirror that has it',
    });
  }
  if (isTransientStatus(res.statusCode)) {
    const ra = res.headers['retry-after'];
    throw new TransientError(`${what}: ${url}: HTTP ${res.statusCode}`, parseRetryAfter(typeof ra === 'string' ? ra : undefined, Date.now()));
  }
  if ([301, 302, 303, 307, 308].includes(res.statusCode) && res.headers['location'] !== undefined) {
    // undici followed five redirects and was sent on again: a loop, or a mirror without the file. (A 3xx
    // it could not follow — no Location, 300, 304 — is not a loop: it is the plain HTTP error below.)
    throw new DistillError('FETCH_FAILED', `${what}: ${url}: more than 5 redirects (the last HTTP ${res.statusCode})`, {
      hint: 'the mirror redirects in a loop; check the mirror URL',
    });
  }
  throw new DistillError('FETCH_FAILED', `${what}: ${url}: HTTP ${res.statusCode}`);
}

/** Read a whole body, refusing more than `maxBytes` (the body is untrusted until verified). */
export async function readCapped(body: Readable, maxBytes: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body) {
      const b = c as Buffer;
      n += b.length;
      if (n > maxBytes) {
        body.destroy();
        throw new DistillError('RESPONSE_TOO_LARGE', `${what}: larger than the ${maxBytes}-byte limit`, {
          hint: 'the mirror served something unexpected; check the mirror URL',
        });
      }
      chunks.push(b);
    }
  } catch (e) {
    if (e instanceof DistillError) throw e;
    throw new TransientError(`${what}: read failed: ${messageOf(e)}`, undefined, e);
  }
  return Buffer.concat(chunks, n);
}

/** Fetch a small file whole (size-capped). */
export async function fetchSmall(url: string, maxBytes: number, what: string, lowSpeed?: LowSpeedLimit): Promise<Buffer> {
  const { body } = await openUrl(url, what, lowSpeed);
  return readCapped(body, maxBytes, what);
}
