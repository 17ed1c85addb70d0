// Writes one layer blob, streaming: TarWriter → sha256 (diffId) → gzip or zstd → sha256 (digest) → a temp file
// beside the target → fsync → rename. Nothing is held whole in memory; on any failure the temp file is
// removed and the target is untouched (absent if it was absent), as containerd's content store does.
// With gzip the tar is written in place into the compressor's blocks (block-sink.ts) and each
// compressed block goes from its block to the file: no stream machinery and no buffer per chunk.
import { createHash, randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DistillError, messageOf } from '../errors.js';
import { fsyncDir } from '../util/atomic-write.js';
import type { Digest } from '../digest.js';
import type { LayerCompression } from './compression.js';
import { HashingSink, StreamSink, type BlockSink } from './block-sink.js';
import { GzipWriter, type GzipOptions } from './gzip.js';
import { createZstd } from './zstd.js';
import { TarWriter } from './tar-writer.js';

export interface LayerResult {
  path: string;
  /** sha256 of the .tar.gz (or .tar.zst): the blob's digest in a manifest. */
  digest: Digest;
  /** sha256 of the uncompressed tar: the config's rootfs.diff_ids entry. */
  diffId: Digest;
  /** Bytes of the compressed blob. */
  size: number;
  /** Bytes of the tar. */
  uncompressedSize: number;
}

function ioError(what: string, e: unknown): DistillError {
  return new DistillError('LAYER_IO', `${what}: ${messageOf(e)}`, {
    cause: e,
    hint: 'check that the output directory exists, is writable and has free space',
  });
}

/**
 * Writes the tar that `fill` produces into `outFile` as a gzip- (default) or zstd-compressed layer. `fill` adds entries
 * (sorted, see TarWriter) and must not call finish(): writeLayer does.
 */
export async function writeLayer(
  outFile: string,
  fill: (tar: TarWriter) => Promise<void>,
  gzip?: GzipOptions,
  compression: LayerCompression = 'gzip',
): Promise<LayerResult> {
  const tmp = join(dirname(outFile), `.${basename(outFile)}.${randomBytes(6).toString('hex')}.tmp`);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'wx', 0o644).catch((e: unknown) => {
      throw ioError(`cannot create ${tmp}`, e);
    });
    const file = fh;
    const digestHash = createHash('sha256');
    let size = 0;
    // Called once per compressed block (gzip) or chunk (zstd), in order; the bytes are the
    // compressor's until this resolves.
    const output = async (bytes: Uint8Array): Promise<void> => {
      digestHash.update(bytes);
      size += bytes.length;
      try {
        // FileHandle.write may write less than asked; loop until the bytes are on their way to disk.
        for (let at = 0; at < bytes.length; ) at += (await file.write(bytes, at, bytes.length - at)).bytesWritten;
      } catch (e) {
        throw ioError(`cannot write ${tmp}`, e);
      }
    };
    const compressor: BlockSink = compression === 'zstd' ? new StreamSink(createZstd(), output) : new GzipWriter(gzip ?? {}, output);
    const diffHash = createHash('sha256');
    const tarBytes = new HashingSink(compressor, diffHash);
    const tar = new TarWriter(tarBytes);
    try {
      await fill(tar);
      await tar.finish();
    } catch (e) {
      await compressor.abort(); // nothing is written once this resolves
      throw e;
    }
    const uncompressedSize = tarBytes.size;
    await fh.sync().catch((e: unknown) => {
      throw ioError(`cannot fsync ${tmp}`, e);
    });
    const closing = fh;
    fh = undefined;
    await closing.close().catch((e: unknown) => {
      throw ioError(`cannot close ${tmp}`, e);
    });
    await rename(tmp, outFile).catch((e: unknown) => {
      throw ioError(`cannot rename ${tmp} to ${outFile}`, e);
    });
    await fsyncDir(dirname(outFile));
    return {
      path: outFile,
      digest: `sha256:${digestHash.digest('hex')}`,
      diffId: `sha256:${diffHash.digest('hex')}`,
      size,
      uncompressedSize,
    };
  } catch (e) {
    await fh?.close().catch(() => {});
    await rm(tmp, { force: true }).catch(() => {});
    // Errors from here are DistillErrors already; errors thrown by `fill` reach the caller unchanged.
    throw e;
  }
}
