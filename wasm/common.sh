# Shared by wasm/*/build.sh (sourced, POSIX sh): the pinned toolchain check and the fetch of a pinned
# Debian source tarball into $work. Never names a mirror: it comes from $DISTILL_DEBIAN_MIRROR or the
# host's apt sources (a file:// URL works).
CLANG_VERSION='Debian clang version 14.0.6'
SYSROOT=/usr
WASI_LIBC=/usr/lib/wasm32-wasi/libc.a

# Exit 2 when the toolchain is missing or not the pinned one; extra commands may be named (e.g. xz).
check_toolchain() {
  command -v clang >/dev/null || { echo "build.sh: clang is missing (apt-get install clang lld wasi-libc)" >&2; exit 2; }
  command -v wasm-ld >/dev/null || command -v wasm-ld-14 >/dev/null || { echo "build.sh: wasm-ld is missing (apt-get install lld)" >&2; exit 2; }
  [ -f "$WASI_LIBC" ] || { echo "build.sh: wasi-libc is missing (apt-get install wasi-libc)" >&2; exit 2; }
  for tool in "$@"; do
    command -v "${tool%%:*}" >/dev/null || { echo "build.sh: ${tool%%:*} is missing (apt-get install ${tool#*:})" >&2; exit 2; }
  done
  clang --version | head -n 1 | grep -q "^$CLANG_VERSION" || {
    echo "build.sh: need $CLANG_VERSION (Debian bookworm), found: $(clang --version | head -n 1)" >&2; exit 2; }
}

# fetch_source TARBALL POOL SHA256 OVERRIDE: $work/TARBALL, from the file named by the variable OVERRIDE
# if set, else from the mirror. Exit 3 when it cannot be fetched (the tests report that as a skip, not
# as a difference); exit 1 when it does not match its pinned sha256.
fetch_source() {
  tarball=$1 pool=$2 sha=$3 override=$4
  eval "given=\${$override:-}"
  if [ -n "$given" ]; then
    cp "$given" "$work/$tarball"
  else
    mirror=${DISTILL_DEBIAN_MIRROR:-}
    if [ -z "$mirror" ]; then
      # The first Debian archive the host's apt uses (deb822 "URIs:" or one-line "deb URL suite").
      mirror=$( (cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}';
                 cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) {print $i; break}}') |
               grep -v -e '-security' -e 'security\.' | head -n 1)
    fi
    [ -n "$mirror" ] || { echo "build.sh: no Debian mirror (set DISTILL_DEBIAN_MIRROR)" >&2; exit 3; }
    curl -fsSL --retry 3 -o "$work/$tarball" "${mirror%/}/$pool/$tarball" || {
      echo "build.sh: cannot fetch $pool/$tarball from the mirror (set DISTILL_DEBIAN_MIRROR or $override)" >&2; exit 3; }
  fi
  echo "$sha  $work/$tarball" | sha256sum -c --quiet - || { echo "build.sh: $tarball does not match its pinned sha256" >&2; exit 1; }
}
