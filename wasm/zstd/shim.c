/*
 * distill's entry points into zstd (BSD-3-Clause or GPL-2.0; distill uses it under BSD), compiled to
 * WebAssembly by build.sh, single-threaded (no ZSTD_MULTITHREAD): the compressor, and the decompressor
 * that checks cached layers.
 *
 * One compression context per stream, created with fixed parameters: level 3 (zstd's default), a
 * content checksum, no dictionary, no pledged size. JavaScript copies input into wasm memory and calls
 * distill_zstd_compress repeatedly (ZSTD_compressStream2) until the input is consumed, then with
 * ZSTD_e_end and empty input until nothing is left to flush. Given only ZSTD_e_continue for data and one
 * ZSTD_e_end on empty input, zstd buffers input into whole blocks itself, so the frame does not depend
 * on how the input was chunked (test/layer/zstd.test.ts checks that). Nothing here reads a clock, the
 * environment or a CPU feature.
 */
#include <stddef.h>
#include <stdlib.h>
#define ZSTD_STATIC_LINKING_ONLY
#include "zstd.h"

__attribute__((export_name("distill_alloc")))
void *distill_alloc(size_t n) { return malloc(n); }

__attribute__((export_name("distill_free")))
void distill_free(void *p) { free(p); }

/* A context with distill's fixed parameters, or NULL. */
__attribute__((export_name("distill_zstd_create")))
ZSTD_CCtx *distill_zstd_create(int level) {
	ZSTD_CCtx *c = ZSTD_createCCtx();
	if (c == NULL)
		return NULL;
	if (ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_dictIDFlag, 0))) {
		ZSTD_freeCCtx(c);
		return NULL;
	}
	return c;
}

__attribute__((export_name("distill_zstd_destroy")))
void distill_zstd_destroy(ZSTD_CCtx *c) { ZSTD_freeCCtx(c); }

/*
 * One ZSTD_compressStream2 call. pos[0] is the input position, pos[1] the output position; both are
 * updated. end != 0 means ZSTD_e_end. Returns zstd's result: 0 when a flush or end is complete, a hint
 * > 0 otherwise, or an error code (test with distill_zstd_is_error).
 */
__attribute__((export_name("distill_zstd_compress")))
size_t distill_zstd_compress(ZSTD_CCtx *c, const void *in, size_t n, void *out, size_t cap, size_t *pos, int end) {
	ZSTD_inBuffer ib = { in, n, pos[0] };
	ZSTD_outBuffer ob = { out, cap, pos[1] };
	size_t r = ZSTD_compressStream2(c, &ob, &ib, end ? ZSTD_e_end : ZSTD_e_continue);
	pos[0] = ib.pos;
	pos[1] = ob.pos;
	return r;
}

__attribute__((export_name("distill_zstd_is_error")))
int distill_zstd_is_error(size_t r) { return ZSTD_isError(r); }

/* Decompression, for checking cached layers: a context whose window is capped at 2^27 bytes (zstd's
 * default limit; the input is a cached or fetched blob, so an attacker may control it). */
__attribute__((export_name("distill_unzstd_create")))
ZSTD_DCtx *distill_unzstd_create(void) {
	ZSTD_DCtx *d = ZSTD_createDCtx();
	if (d == NULL)
		return NULL;
	if (ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 27))) {
		ZSTD_freeDCtx(d);
		return NULL;
	}
	return d;
}

__attribute__((export_name("distill_unzstd_destroy")))
void distill_unzstd_destroy(ZSTD_DCtx *d) { ZSTD_freeDCtx(d); }

/* One ZSTD_decompressStream call, positions as for distill_zstd_compress. Returns 0 at the end of a
 * frame, a hint > 0 otherwise, or an error code. */
__attribute__((export_name("distill_unzstd")))
size_t distill_unzstd(ZSTD_DCtx *d, const void *in, size_t n, void *out, size_t cap, size_t *pos) {
	ZSTD_inBuffer ib = { in, n, pos[0] };
	ZSTD_outBuffer ob = { out, cap, pos[1] };
	size_t r = ZSTD_decompressStream(d, &ob, &ib);
	pos[0] = ib.pos;
	pos[1] = ob.pos;
	return r;
}

__attribute__((export_name("distill_zstd_out_size")))
size_t distill_zstd_out_size(void) { return ZSTD_CStreamOutSize(); }
