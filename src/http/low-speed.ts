// A server that sends a byte now and then never trips an idle timeout (undici's bodyTimeout restarts
// with every chunk): the slow-loris case, which would hold a lock or a build forever. As curl's
// --speed-limit/--speed-time: a body that delivers fewer than `bytes` in a `windowMs` window while its
// reader is waiting for more is cut with `onSlow()`'s error (a transient one: the retry policy bounds
// what follows). Time spent with the reader not reading (its buffer full) does not count against the
// server. The server is attacker-controlled input here: mirrors and registries are not trusted.
import { Transform, type Readable, type TransformCallback } from 'node:stream';

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
  let seen = 0;
  const guard = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      seen += chunk.length;
      cb(null, chunk);
    },
  });
  const timer = setInterval(() => {
    const readerWaiting = guard.readableLength < guard.readableHighWaterMark;
    if (readerWaiting && seen < limit.bytes) guard.destroy(onSlow());
    seen = 0;
  }, limit.windowMs);
  timer.unref();
  const stop = (): void => clearInterval(timer);
  guard.once('close', () => {
    stop();
    body.destroy(); // a refused or abandoned body closes its connection
  });
  guard.once('end', stop);
  // Once the server has sent the whole body it is not slow, however long the reader takes over the
  // rest: a reader busy elsewhere (a disk that stalls under the cache's fsync) holding the body's tail,
  // under the high-water mark, must not be judged as a server that stopped sending.
  body.once('end', stop);
  body.once('error', (e) => guard.destroy(e));
  body.pipe(guard);
  return guard;
}
