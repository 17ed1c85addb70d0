/* The exports distill calls (src/compress/xz.ts): one streaming .xz decoder per handle, liblzma's own
 * lzma_stream_decoder with LZMA_CONCATENATED (as `xz -dc` reads concatenated streams) and a memory
 * limit. Nothing here reads a clock, the environment or a file. */
#include <stdlib.h>
#include <stdint.h>
#include "lzma.h"

typedef struct {
	lzma_stream strm;
	uint32_t in_left;
	uint32_t out_left;
} distill_xz;

void *distill_alloc(uint32_t n) { return malloc(n); }
void distill_free(void *p) { free(p); }

/* A new decoder, or 0 (out of memory, or liblzma refused the options). */
distill_xz *distill_xz_new(uint32_t memlimit) {
	distill_xz *d = calloc(1, sizeof *d);
	if (d == 0) return 0;
	lzma_stream init = LZMA_STREAM_INIT;
	d->strm = init;
	if (lzma_stream_decoder(&d->strm, memlimit, LZMA_CONCATENATED) != LZMA_OK) {
		free(d);
		return 0;
	}
	return d;
}

/* Decodes from in[0..in_len) into out[0..out_cap); `finish` says no input follows. Returns liblzma's
 * lzma_ret (0 LZMA_OK, 1 LZMA_STREAM_END, else an error); how much is left of each buffer is read with
 * distill_xz_in_left / distill_xz_out_left. */
int distill_xz_run(distill_xz *d, const uint8_t *in, uint32_t in_len, uint8_t *out, uint32_t out_cap, int finish) {
	d->strm.next_in = in;
	d->strm.avail_in = in_len;
	d->strm.next_out = out;
	d->strm.avail_out = out_cap;
	lzma_ret r = lzma_code(&d->strm, finish ? LZMA_FINISH : LZMA_RUN);
	d->in_left = (uint32_t)d->strm.avail_in;
	d->out_left = (uint32_t)d->strm.avail_out;
	return (int)r;
}

uint32_t distill_xz_in_left(const distill_xz *d) { return d->in_left; }
uint32_t distill_xz_out_left(const distill_xz *d) { return d->out_left; }

void distill_xz_end(distill_xz *d) {
	lzma_end(&d->strm);
	free(d);
}
