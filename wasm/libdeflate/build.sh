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
CLANG_VERSION='Debian clang version 14.0.6'
SYSROOT=/usr
WASI_LIBC=/usr/lib/wasm32-wasi/libc.a

command -v clang >/dev/null || { echo "build.sh: clang is missing (apt-get install clang lld wasi-libc)" >&2; exit 2; }
command -v wasm-ld >/dev/null || command -v wasm-ld-14 >/dev/null || { echo "build.sh: wasm-ld is missing (apt-get install lld)" >&2; exit 2; }
[ -f "$WASI_LIBC" ] || { echo "build.sh: wasi-libc is missing (apt-get install wasi-libc)" >&2; exit 2; }
clang --version | head -n 1 | grep -q "^$CLANG_VERSION" || {
  echo "build.sh: need $CLANG_VERSION (Debian bookworm), found: $(clang --version | head -n 1)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

if [ -n "${DISTILL_LIBDEFLATE_TARBALL:-}" ]; then
  cp "$DISTILL_LIBDEFLATE_TARBALL" "$work/$TARBALL"
else
  mirror=${DISTILL_DEBIAN_MIRROR:-}
  if [ -z "$mirror" ]; then
    # The first Debian archive the host's apt uses (deb822 "URIs:" or one-line "deb URL suite").
    mirror=$( (cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}';
               cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) {print $i; break}}') |
             grep -v -e '-security' -e 'security\.' | head -n 1)
  fi
  [ -n "$mirror" ] || { echo "build.sh: no Debian mirror (set DISTILL_DEBIAN_MIRROR)" >&2; exit 3; }
  # Exit 3: the source could not be fetched (the test reports that as a skip, not as a difference).
  curl -fsSL --retry 3 -o "$work/$TARBALL" "${mirror%/}/$POOL/$TARBALL" || {
    echo "build.sh: cannot fetch $POOL/$TARBALL from the mirror (set DISTILL_DEBIAN_MIRROR or DISTILL_LIBDEFLATE_TARBALL)" >&2; exit 3; }
fi
echo "$SHA256  $work/$TARBALL" | sha256sum -c --quiet - || { echo "build.sh: $TARBALL does not match its pinned sha256" >&2; exit 1; }

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
