#!/bin/sh
# Rebuilds wasm/libdeflate.wasm byte for byte from pinned sources:
#   - libdeflate 1.14, Debian's source package (libdeflate_1.14.orig.tar.gz, checked by sha256 below),
#     fetched from the Debian mirror the host's apt uses (or $DISTILL_DEBIAN_MIRROR; a file:// URL works),
#     or taken from $DISTILL_LIBDEFLATE_TARBALL;
#   - sync-flush.patch (lets a block end with a sync flush so blocks join into one deflate stream);
#   - shim.c (the exports distill calls);
#   - Debian bookworm's clang/lld 14 and wasi-libc (apt-get install clang lld wasi-libc).
# Usage: wasm/libdeflate/build.sh [output.wasm]   (default: wasm/libdeflate.wasm)
# Exit status: 0 built; 1 the source does not match its sha256; 2 the toolchain is missing or not the
# pinned one; 3 the source cannot be fetched.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../libdeflate.wasm}
case $out in /*) ;; *) out=$(pwd)/$out ;; esac

TARBALL=libdeflate_1.14.orig.tar.gz
SHA256=89e7df898c37c3427b0f39aadcf733731321a278771d20fc553f92da8d4808ac
POOL=pool/main/libd/libdeflate
. "$here/../common.sh"
check_toolchain

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

fetch_source "$TARBALL" "$POOL" "$SHA256" DISTILL_LIBDEFLATE_TARBALL

tar -xzf "$work/$TARBALL" -C "$work"
src=$work/libdeflate-1.14
(cd "$src" && patch -p1 --quiet < "$here/sync-flush.patch")
cp "$here/shim.c" "$src/distill_shim.c"

# Fixed flags; paths are relative to the source tree and remapped, so the output never names $work.
cd "$src"
CFLAGS="--target=wasm32-wasi --sysroot=$SYSROOT -isystem /usr/include/wasm32-wasi -O3 -msimd128 -DNDEBUG -fno-ident -ffile-prefix-map=$src=. -I. -Ilib -Wall -Wno-unused-function"
for f in lib/deflate_compress.c lib/crc32.c lib/utils.c distill_shim.c; do
  # shellcheck disable=SC2086
  clang $CFLAGS -c "$f" -o "$work/$(basename "$f" .c).o"
done
# shellcheck disable=SC2086
clang --target=wasm32-wasi -nostdlib -Wl,--no-entry -Wl,--strip-all -Wl,--gc-sections \
  -Wl,--initial-memory=4194304 -Wl,--max-memory=268435456 -Wl,-z,stack-size=65536 \
  -o "$work/libdeflate.wasm" \
  "$work/deflate_compress.o" "$work/crc32.o" "$work/utils.o" "$work/distill_shim.o" "$WASI_LIBC"
cp "$work/libdeflate.wasm" "$out.tmp"
mv "$out.tmp" "$out"
echo "$(sha256sum "$out" | cut -d' ' -f1)  $(basename "$out")"
