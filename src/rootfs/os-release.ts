// Reading os-release(5) (freedesktop.org): the SBOM takes the distribution (ID, VERSION_ID) from the
// image's /etc/os-release, as syft and grype do.
//
// distill writes no os-release of its own: images ship base-files' file byte for byte (distroless
// replaces it with a "Distroless" one — an accepted difference, see README "Compared with distroless"),
// because it is accurate for the exact point release, updates itself with every base-files update,
// and scanners pick their vulnerability database from ID and VERSION_ID (several special-case
// PRETTY_NAME="Distroless" as an OS of its own, which has misrouted package lookups).
//
// ATTACKER-CONTROLLED: the file comes from a package or a layer; values are returned as text, never
// evaluated, and the caller checks them against os-release(5)'s character sets.

const ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;

/** Undo os-release(5)'s quoting: double quotes with backslash escapes, single quotes, bare values. */
function unquote(raw: string): string {
  const v = raw.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return v.slice(1, -1).replace(/\\([\\"$`])/g, '$1');
  if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) return v.slice(1, -1);
  return v;
}

/** The assignments of an os-release file (comments and blank lines skipped; the last one wins). */
export function parseOsRelease(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = ASSIGNMENT.exec(line.replace(/\r$/, ''));
    if (m) out.set(m[1]!, unquote(m[2]!));
  }
  return out;
}
