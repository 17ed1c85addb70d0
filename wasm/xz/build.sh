#!/bin/sh
# Rebuilds wasm/xz.wasm byte for byte from pinned sources:
#   - XZ Utils 5.4.1, Debian's source package (xz-utils_5.4.1.orig.tar.xz, checked by sha256 below),
#     fetched from the Debian mirror the host's apt uses (or $DISTILL_DEBIAN_MIRROR; a file:// URL works),
#     or taken from $DISTILL_XZ_TARBALL — only liblzma's decoder sources are compiled;
#   - config.h (the build configuration ./configure would write: decoders only, no threads),
#     include/signal.h (wasi-libc has none) and shim.c (the exports distill calls);
#   - Debian bookworm's clang/lld 14 and wasi-libc (apt-get install clang lld wasi-libc).
# Usage: wasm/xz/build.sh [output.wasm]   (default: wasm/xz.wasm)
# Exit status: 0 built; 1 the source does not match its sha256; 2 the toolchain is missing or not the
# pinned one; 3 the source cannot be fetched.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../xz.wasm}
case $out in /*) ;; *) out=$(pwd)/$out ;; esac

TARBALL=xz-utils_5.4.1.orig.tar.xz
SHA256=5d9827aa1875b21c288f78864bb26d2650b436ea8d2cad364e4921eb6266a5a5
POOL=pool/main/x/xz-utils
. "$here/../common.sh"
check_toolchain xz:xz-utils

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

fetch_source "$TARBALL" "$POOL" "$SHA256" DISTILL_XZ_TARBALL

xz -dc "$work/$TARBALL" | tar -xf - -C "$work"
src=$work/xz-5.4.1
cp "$here/config.h" "$src/config.h"
cp "$here/shim.c" "$src/distill_shim.c"
mkdir "$src/distill_include"
cp "$here/include/signal.h" "$src/distill_include/signal.h"

# The decoder's sources: .xz streams, blocks and index, the LZMA/LZMA2, delta and BCJ filters, the
# CRC32/CRC64/SHA-256 checks.
L=src/liblzma
FILES="$L/common/common.c $L/common/stream_decoder.c $L/common/block_decoder.c $L/common/block_header_decoder.c
  $L/common/block_util.c $L/common/filter_common.c $L/common/filter_decoder.c $L/common/filter_flags_decoder.c
  $L/common/index_hash.c $L/common/stream_flags_common.c $L/common/stream_flags_decoder.c $L/common/vli_decoder.c
  $L/common/vli_size.c $L/check/check.c $L/check/crc32_fast.c $L/check/crc32_table.c $L/check/crc64_fast.c
  $L/check/crc64_table.c $L/check/sha256.c $L/lz/lz_decoder.c $L/lzma/lzma_decoder.c $L/lzma/lzma2_decoder.c
  $L/delta/delta_common.c $L/delta/delta_decoder.c $L/simple/simple_coder.c $L/simple/simple_decoder.c
  $L/simple/x86.c $L/simple/powerpc.c $L/simple/ia64.c $L/simple/arm.c $L/simple/armthumb.c $L/simple/arm64.c
  $L/simple/sparc.c distill_shim.c"

# Fixed flags; paths are relative to the source tree and remapped, so the output never names $work.
cd "$src"
CFLAGS="--target=wasm32-wasi --sysroot=$SYSROOT -Idistill_include -isystem /usr/include/wasm32-wasi -O2 -mbulk-memory -DHAVE_CONFIG_H -DNDEBUG -fno-ident -ffile-prefix-map=$src=. -I. -Isrc/common -I$L/api -I$L/common -I$L/check -I$L/lz -I$L/lzma -I$L/rangecoder -I$L/delta -I$L/simple -Wall"
objs=
for f in $FILES; do
  o="$work/$(basename "$f" .c).o"
  # shellcheck disable=SC2086
  clang $CFLAGS -c "$f" -o "$o"
  objs="$objs $o"
done
EXPORTS="-Wl,--export=distill_alloc -Wl,--export=distill_free -Wl,--export=distill_xz_new -Wl,--export=distill_xz_run -Wl,--export=distill_xz_in_left -Wl,--export=distill_xz_out_left -Wl,--export=distill_xz_end"
# shellcheck disable=SC2086
clang --target=wasm32-wasi -nostdlib -Wl,--no-entry -Wl,--strip-all -Wl,--gc-sections $EXPORTS \
  -Wl,--initial-memory=4194304 -Wl,--max-memory=1073741824 -Wl,-z,stack-size=65536 \
  -o "$work/xz.wasm" $objs "$WASI_LIBC"
cp "$work/xz.wasm" "$out.tmp"
mv "$out.tmp" "$out"
echo "$(sha256sum "$out" | cut -d' ' -f1)  $(basename "$out")"
