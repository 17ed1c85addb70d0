/*
 * distill's entry points into libdeflate (MIT), compiled to WebAssembly by build.sh.
 *
 * One compressor per level is kept for the life of the instance; a wasm instance runs on one thread,
 * so the module-level state is never shared. Memory comes from wasi-libc's malloc: JavaScript asks for
 * the input and output buffers with distill_alloc, copies the block in, calls distill_deflate and reads
 * the result back. Nothing here reads a clock, the environment or a CPU feature: the output is a
 * function of libdeflate's source, this file, the compiler and the arguments only.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "libdeflate.h"

/* Set by distill_deflate; read by the patched libdeflate_deflate_compress (sync-flush.patch). */
extern int distill_sync_flush;

static struct libdeflate_compressor *compressors[13];

__attribute__((export_name("distill_alloc")))
void *distill_alloc(size_t n) { return malloc(n); }

__attribute__((export_name("distill_free")))
void distill_free(void *p) { free(p); }

/* Worst-case output size of one block: libdeflate's bound plus the 6 bytes a sync flush may add. */
__attribute__((export_name("distill_deflate_bound")))
size_t distill_deflate_bound(size_t n) {
	return libdeflate_deflate_compress_bound(NULL, n) + 6;
}

/*
 * Raw-deflates in[0..n) at `level` (1-12) into out. With last == 0 the deflate stream is left open and
 * byte-aligned: the final block is written with BFINAL = 0 and followed by an empty stored block
 * (00 00 ff ff), as zlib's Z_SYNC_FLUSH does, so blocks concatenate into one stream. With last != 0
 * the stream ends normally. Returns the number of bytes written, 0 on failure.
 */
__attribute__((export_name("distill_deflate")))
size_t distill_deflate(int level, const void *in, size_t n, void *out, size_t cap, int last) {
	if (level < 1 || level > 12)
		return 0;
	if (compressors[level] == NULL) {
		compressors[level] = libdeflate_alloc_compressor(level);
		if (compressors[level] == NULL)
			return 0;
	}
	distill_sync_flush = !last;
	return libdeflate_deflate_compress(compressors[level], in, n, out, cap);
}

__attribute__((export_name("distill_crc32")))
uint32_t distill_crc32(uint32_t crc, const void *p, size_t n) {
	return libdeflate_crc32(crc, p, n);
}
