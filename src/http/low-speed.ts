// A server that sends a byte now and then never trips an idle timeout (undici's bodyTimeout restarts
// with every chunk): the slow-loris case, which would hold a lock or a build forever. As curl's
// --speed-limit/--speed-time: a body that delivers fewer than `bytes` in a `windowMs` window while its
// reader is waiting for more is cut with `onSlow()`'s error (a transient one: the retry policy bounds
// what follows). Time spent with the reader not reading (its buffer full) does not count against the
// server. The server is attacker-controlled input here: mirrors and registries are not trusted.
import { PassThrough, type Readable } from 'node:stream';

export interface LowSpeedLimit {
  bytes: number;
  windowMs: number;
}

/**
 * 16 KiB in 30 s (~0.5 KiB/s): far below any real mirror or registry, far above a drip. With the retry
 * policy's 4 attempts a dripping server costs about two minutes, then FETCH_FAILED.
 */
export const DEFAULT_LOW_SPEED: LowSpeedLimit = { bytes: 16 * 1024, windowMs: 30_000 };

export function guardLowSpeed(body: Readable, limit: LowSpeedLimit, onSlow: () => Error): Readable {
  const guard = new PassThrough();
  watchLowSpeed(body, guard, limit, onSlow);
  guard.once('close', () => body.destroy()); // a refused or abandoned body closes its connection
  body.once('error', (e) => guard.destroy(e));
  body.pipe(guard);
  return guard;
}

/**
 * Watch `body` (a response body already flowing into `reader`): when it delivers under `limit` in a
 * window while `reader` has room for more, destroy `reader` with `onSlow()`. Used where a stream
 * already sits after the body (a registry blob's verifier), so no extra stream hop is added.
 */
export function watchLowSpeed(body: Readable, reader: Readable, limit: LowSpeedLimit, onSlow: () => Error): void {
  let seen = 0;
  const count = (chunk: Buffer): void => {
    seen += chunk.length;
  };
  body.on('data', count);
  const timer = setInterval(() => {
    const readerWaiting = reader.readableLength < reader.readableHighWaterMark;
    if (readerWaiting && seen < limit.bytes) reader.destroy(onSlow());
    seen = 0;
  }, limit.windowMs);
  timer.unref();
  const stop = (): void => {
    clearInterval(timer);
    body.off('data', count);
  };
  // Once the server has sent the whole body it is not slow, however long the reader takes over the
  // rest: a reader busy elsewhere (a disk that stalls under the cache's fsync) holding the body's tail,
  // under the high-water mark, must not be judged as a server that stopped sending.
  body.once('end', stop);
  body.once('close', stop);
  reader.once('close', stop);
}
