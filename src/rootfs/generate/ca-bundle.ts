// /etc/ssl/certs/ca-certificates.crt exactly as Debian's update-ca-certificates (ca-certificates
// 20250419, /usr/sbin/update-ca-certificates) writes it on a default install, without running it.
//
// What a default install does, read from the package's maintainer scripts:
//  1. the debconf `config` script offers every `*.crt` under /usr/share/ca-certificates (plus a built-in
//     list of the same names), `sort | uniq`; on a first install all of them are enabled;
//  2. `postinst configure` writes /etc/ca-certificates.conf from that list with `sort | uniq -c`, so the
//     conf lists every certificate, relative to /usr/share/ca-certificates, in `sort` order;
//  3. update-ca-certificates appends each conf line's file to the bundle in conf order, each through
//     `sed -e '$a\'` (a newline added when the file does not end in one, Debian #635570), then every
//     `*.crt` under /usr/local/share/ca-certificates in `find | sort` order.
// `sort` runs in the locale dpkg was started in: C or C.UTF-8 in debootstrap, container builds and on
// this project's reference systems (both compare bytes), so the order here is bytewise.
import { DistillError } from '../../errors.js';
import type { TreeEntry } from '../tree.js';
import { fileEntry } from './entries.js';

export interface CaCertificateFile {
  /**
   * The file's path in the package or image: `./usr/share/ca-certificates/mozilla/X.crt`,
   * `/usr/share/…` and `usr/share/…` are all accepted. Files outside the two certificate directories,
   * or whose names do not end in `.crt`, are ignored, as update-ca-certificates ignores them — so the
   * caller may pass every regular file of the ca-certificates package.
   */
  path: string;
  /** The file's contents (PEM text). */
  pem: string;
}

/** A certificate that goes into the bundle, in bundle order. */
export interface BundledCertificate {
  /** Absolute path: /usr/share/ca-certificates/… or /usr/local/share/ca-certificates/…. */
  path: string;
  /** Path relative to its certificates directory, as /etc/ca-certificates.conf lists it. */
  name: string;
  pem: string;
}

export const CERTS_DIR = 'usr/share/ca-certificates/';
export const LOCAL_CERTS_DIR = 'usr/local/share/ca-certificates/';

function bytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The certificates update-ca-certificates would put in the bundle, in its order: the package's
 * (/usr/share/ca-certificates) sorted bytewise by path, then local ones (/usr/local/share/ca-certificates)
 * sorted bytewise. GENERATE_FAILED if a path is given twice or has "." or ".." parts.
 */
export function bundledCertificates(files: readonly CaCertificateFile[]): BundledCertificate[] {
  const system: BundledCertificate[] = [];
  const local: BundledCertificate[] = [];
  const seen = new Set<string>();
  for (const f of files) {
    const p = f.path.replace(/^\.?\/+/, '');
    const dir = p.startsWith(CERTS_DIR) ? CERTS_DIR : p.startsWith(LOCAL_CERTS_DIR) ? LOCAL_CERTS_DIR : undefined;
    if (dir === undefined || !p.endsWith('.crt')) continue;
    const name = p.slice(dir.length);
    if (name.split('/').some((c) => c === '' || c === '.' || c === '..')) {
      throw new DistillError('GENERATE_FAILED', `certificate path ${JSON.stringify(f.path)} is not a plain relative path`, {
        hint: 'Certificate files must be named like mozilla/Name.crt under the certificates directory.',
      });
    }
    if (seen.has(dir + name)) {
      throw new DistillError('GENERATE_FAILED', `certificate ${JSON.stringify('/' + dir + name)} is given twice`, { hint: 'Pass each certificate file once.' });
    }
    seen.add(dir + name);
    (dir === CERTS_DIR ? system : local).push({ path: '/' + dir + name, name, pem: f.pem });
  }
  system.sort((a, b) => bytewise(a.name, b.name));
  local.sort((a, b) => bytewise(a.name, b.name));
  return [...system, ...local];
}

/** update-ca-certificates' `sed -e '$a\'`: a newline appended when the text is non-empty and lacks one. */
export function withFinalNewline(text: string): string {
  return text.length > 0 && !text.endsWith('\n') ? text + '\n' : text;
}

/** The contents of /etc/ssl/certs/ca-certificates.crt (mode 0644) for these files. */
export function caBundle(certs: readonly CaCertificateFile[]): string {
  return bundledCertificates(certs)
    .map((c) => withFinalNewline(c.pem))
    .join('');
}

export const CA_BUNDLE_PATH = 'etc/ssl/certs/ca-certificates.crt';

/** The CA bundle generator: /etc/ssl/certs/ca-certificates.crt from the certificate files, as a tree entry. */
export function caBundleEntries(certs: readonly CaCertificateFile[], mtime: number): TreeEntry[] {
  return [fileEntry(CA_BUNDLE_PATH, caBundle(certs), 'distill:ca-certificates', mtime)];
}
