// The layer compressions distill writes (their OCI media types are chosen in build/images.ts), and a
// decompressor that reads either (chosen by the stream's magic bytes, so a cached or fetched blob is
// read as what it is, not as what a record claims).
import { open } from 'node:fs/promises';
import type { Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { createUnzstd, ZSTD_MAGIC } from './zstd.js';

export type LayerCompression = 'gzip' | 'zstd';
export const LAYER_COMPRESSIONS: readonly LayerCompression[] = ['gzip', 'zstd'];
export const DEFAULT_COMPRESSION: LayerCompression = 'gzip';

/** The file suffix of a compressed layer. */
export function layerSuffix(c: LayerCompression): string {
  return c === 'zstd' ? '.tar.zst' : '.tar.gz';
}

/**
 * A decompressor for the layer blob in `file`: zstd if its first bytes are a zstd frame's magic number,
 * else gunzip (which refuses anything that is not gzip). The file may be hostile: a cached or fetched
 * blob; it is read as what it is, not as what a record claims.
 */
export async function layerDecompressorFor(file: string): Promise<Transform> {
  const head = Buffer.alloc(4);
  let bytesRead = 0;
  try {
    const fh = await open(file, 'r');
    try {
      ({ bytesRead } = await fh.read(head, 0, 4, 0));
    } finally {
      await fh.close();
    }
  } catch {
    // Unreadable (missing, a directory): the caller's own read of the file reports it, as before.
  }
  return bytesRead === 4 && head.equals(ZSTD_MAGIC) ? createUnzstd() : createGunzip();
}
