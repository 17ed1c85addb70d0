// /etc/nsswitch.conf (nsswitch.conf(5)), byte for byte the file distroless ships
// (GoogleContainerTools/distroless static/nsswitch.conf), itself Debian's old netbase/libc example.
// Without the file glibc uses built-in defaults, which have put DNS before /etc/hosts; with it,
// /etc/hosts wins over DNS as on any Debian system.
// `compat` reads /etc/passwd like `files` (plus NIS '+' lines, which there are none of); `db` and
// `nis` name modules that a distroless image does not ship, and glibc skips unavailable modules.

const NSSWITCH_CONF = `# /etc/nsswitch.conf
#
# Example configuration of GNU Name Service Switch functionality.
# If you have the \`glibc-doc-reference' and \`info' packages installed, try:
# \`info libc "Name Service Switch"' for information about this file.

passwd:         compat
group:          compat
shadow:         compat
gshadow:        files

hosts:          files dns
networks:       files

protocols:      db files
services:       db files
ethers:         db files
rpc:            db files

netgroup:       nis
`;

/** The contents of /etc/nsswitch.conf (mode 0644, root:root). */
export function nsswitchConf(): string {
  return NSSWITCH_CONF;
}
