// A throwaway GnuPG home for tests: generates keys and clearsigned messages with the real `gpg`
// binary, so the OpenPGP verifier is tested against an independent implementation. Everything
// happens in a fresh temporary GNUPGHOME; close() stops that home's gpg-agent and deletes it.
// Tests that need gpg check gpgAvailable() and skip, saying why, when it is missing.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './tmp.js';

export const NO_GPG = 'the gpg binary (GnuPG 2.2 or later) is not installed on this machine';

let available: boolean | undefined;
export function gpgAvailable(): boolean {
  available ??= spawnSync('gpg', ['--version'], { stdio: 'ignore' }).status === 0;
  return available;
}

/** gpg's --faked-system-time value for a Date: the epoch, frozen. */
function faked(at: Date): string[] {
  return ['--faked-system-time', `${Math.floor(at.getTime() / 1000)}!`];
}

export interface SignOptions {
  /** --digest-algo; SHA256 by default. */
  digest?: string;
  /** Sign as if the clock showed this time. */
  at?: Date;
}

export class GpgHome {
  readonly dir: string;

  constructor() {
    this.dir = tempDir('distill-gpg-');
  }

  run(args: string[], input?: string | Uint8Array): Buffer {
    return execFileSync(
      'gpg',
      ['--homedir', this.dir, '--batch', '--yes', '--quiet', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', '', ...args],
      { input, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, GNUPGHOME: this.dir, LC_ALL: 'C' } },
    );
  }

  /** Fingerprints of a certificate: the primary first, then its subkeys in order. */
  fingerprints(which: string): string[] {
    const out = this.run(['--with-colons', '--fixed-list-mode', '--list-keys', which]).toString('utf8');
    return out
      .split('\n')
      .filter((l) => l.startsWith('fpr:'))
      .map((l) => l.split(':')[9]!);
  }

  /** `gpg --quick-gen-key`; returns the new primary key's fingerprint. */
  genKey(userId: string, algo: string, usage: string, expire = 'never', at?: Date): string {
    this.run([...(at ? faked(at) : []), '--quick-gen-key', userId, algo, usage, expire]);
    return this.fingerprints(`=${userId}`)[0]!;
  }

  /** `gpg --quick-add-key`; returns the new subkey's fingerprint. */
  addSubkey(primary: string, algo: string, usage: string, expire = 'never'): string {
    this.run(['--quick-add-key', primary, algo, usage, expire]);
    return this.fingerprints(primary).at(-1)!;
  }

  /** `gpg --quick-set-expire` on the primary key, as if done at `at`. */
  setExpire(primary: string, expire: string, at?: Date): void {
    this.run([...(at ? faked(at) : []), '--quick-set-expire', primary, expire]);
  }

  /** Imports the revocation certificate gpg made at key generation: the key becomes revoked. */
  revoke(primary: string): void {
    const cert = readFileSync(join(this.dir, 'openpgp-revocs.d', `${primary}.rev`), 'utf8').replace(/^:-----BEGIN/m, '-----BEGIN');
    const file = join(this.dir, `${primary}.rev.asc`);
    writeFileSync(file, cert);
    this.run(['--import', file]);
  }

  /** Clearsigns `text` with `signer` (a fingerprint; add '!' to force a subkey). */
  clearsign(text: string | Uint8Array, signer: string, opts: SignOptions = {}): string {
    return this.run([...(opts.at ? faked(opts.at) : []), '--local-user', signer, '--digest-algo', opts.digest ?? 'SHA256', '--clearsign'], text).toString('utf8');
  }

  /** `gpg --export`, binary or armored. */
  exportKeys(fingerprints: string[], armor = false): Buffer {
    return this.run(['--export', ...(armor ? ['--armor'] : []), ...fingerprints]);
  }

  close(): void {
    spawnSync('gpgconf', ['--homedir', this.dir, '--kill', 'all'], { stdio: 'ignore', env: { ...process.env, GNUPGHOME: this.dir } });
    rmSync(this.dir, { recursive: true, force: true });
  }
}
