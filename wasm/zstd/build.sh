#!/bin/sh
# Rebuilds wasm/zstd.wasm byte for byte from pinned sources:
#   - zstd 1.5.4, Debian bookworm's source package (libzstd_1.5.4+dfsg2.orig.tar.xz, the sha256 below is
#     the one in libzstd_1.5.4+dfsg2-5.dsc), fetched from the Debian mirror the host's apt uses (or
#     $DISTILL_DEBIAN_MIRROR; a file:// URL works), or taken from $DISTILL_ZSTD_TARBALL;
#   - shim.c (the exports distill calls);
#   - Debian bookworm's clang/lld 14 and wasi-libc (apt-get install clang lld wasi-libc).
# The compressor and the decompressor are built, single-threaded (no ZSTD_MULTITHREAD), without assembly.
# Usage: wasm/zstd/build.sh [output.wasm]   (default: wasm/zstd.wasm)
# Exit status: 0 built; 1 the source does not match its sha256; 2 the toolchain is missing or not the
# pinned one; 3 the source cannot be fetched.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../zstd.wasm}
case $out in /*) ;; *) out=$(pwd)/$out ;; esac

TARBALL=libzstd_1.5.4+dfsg2.orig.tar.xz
SHA256=8cf4bbb65e77ec348d052c8d6230eba66d435bddf64c8b5be2fcb16880c19953
POOL=pool/main/libz/libzstd
. "$here/../common.sh"
check_toolchain xz:xz-utils

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

fetch_source "$TARBALL" "$POOL" "$SHA256" DISTILL_ZSTD_TARBALL

tar -xJf "$work/$TARBALL" -C "$work"
src=$work/zstd-1.5.4
cp "$here/shim.c" "$src/lib/distill_shim.c"

# Fixed flags and a fixed file list, in this order; paths are relative to the source tree and remapped,
# so the output never names $work.
cd "$src/lib"
CFLAGS="--target=wasm32-wasi --sysroot=$SYSROOT -isystem /usr/include/wasm32-wasi -O3 -DNDEBUG -DZSTD_DISABLE_ASM -DZSTD_NO_TRACE -DZSTD_LEGACY_SUPPORT=0 -DXXH_NAMESPACE=ZSTD_ -fno-ident -ffile-prefix-map=$src=. -I. -Icommon -Wall -Wno-unused-function"
objs=
for f in common/debug.c common/entropy_common.c common/error_private.c common/fse_decompress.c common/pool.c \
         common/threading.c common/xxhash.c common/zstd_common.c \
         compress/fse_compress.c compress/hist.c compress/huf_compress.c compress/zstd_compress.c \
         compress/zstd_compress_literals.c compress/zstd_compress_sequences.c compress/zstd_compress_superblock.c \
         compress/zstd_double_fast.c compress/zstd_fast.c compress/zstd_lazy.c compress/zstd_ldm.c \
         compress/zstd_opt.c compress/zstdmt_compress.c \
         decompress/huf_decompress.c decompress/zstd_ddict.c decompress/zstd_decompress.c \
         decompress/zstd_decompress_block.c distill_shim.c; do
  o=$work/$(echo "$f" | tr / _ | sed 's/\.c$/.o/')
  # shellcheck disable=SC2086
  clang $CFLAGS -c "$f" -o "$o"
  objs="$objs $o"
done
# shellcheck disable=SC2086
clang --target=wasm32-wasi -nostdlib -Wl,--no-entry -Wl,--strip-all -Wl,--gc-sections \
  -Wl,--initial-memory=4194304 -Wl,--max-memory=268435456 -Wl,-z,stack-size=131072 \
  -o "$work/zstd.wasm" $objs "$WASI_LIBC"
cp "$work/zstd.wasm" "$out.tmp"
mv "$out.tmp" "$out"
echo "$(sha256sum "$out" | cut -d' ' -f1)  $(basename "$out")"
