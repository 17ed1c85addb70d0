// `distill generate-key-pair`, `sign`, `verify`, `attest`, `verify-attestation`, `triangulate`:
// cosign-compatible signatures; flags → one library call each. Passwords come from COSIGN_PASSWORD
// (set but empty = the empty password) or a TTY prompt; never from a flag, never echoed or logged.
import type { Argv } from 'yargs';
import { DistillError } from '../../errors.js';
import type { CliIo } from '../io.js';
import { registryFlags, registryOptionsFrom, type RegistryArgs } from './registry-options.js';

async function prompt(io: CliIo, question: string): Promise<string> {
  const input = io.stdin as (NodeJS.ReadStream & { isTTY?: boolean }) | undefined;
  if (!input || !input.isTTY || typeof input.setRawMode !== 'function') {
    throw new DistillError('USAGE', 'a key password is needed and there is no terminal to ask on', { hint: 'set COSIGN_PASSWORD (an empty value means the empty password)' });
  }
  io.stderr.write(question);
  // Raw mode, characters read one by one and never echoed.
  input.setRawMode(true);
  input.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let typed = '';
      const onData = (chunk: Buffer): void => {
        for (const ch of chunk.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            input.off('data', onData);
            io.stderr.write('\n');
            resolve(typed);
            return;
          }
          if (ch === '\u0003') {
            input.off('data', onData);
            reject(new DistillError('USAGE', 'interrupted'));
            return;
          }
          if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
          else typed += ch;
        }
      };
      input.on('data', onData);
    });
  } finally {
    input.setRawMode(false);
    input.pause();
  }
}

async function password(io: CliIo, twice: boolean): Promise<string> {
  const { passwordFrom } = await import('../../sign/keys.js');
  const fromEnv = passwordFrom(io.env);
  if (fromEnv !== undefined) return fromEnv;
  const first = await prompt(io, 'Enter password for private key: ');
  if (twice && (await prompt(io, 'Enter password for private key again: ')) !== first) {
    throw new DistillError('USAGE', 'the two passwords differ', { hint: 'run the command again' });
  }
  return first;
}

function annotationsOf(values: string[] | undefined): Record<string, string> | undefined {
  if (!values || values.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0) throw new DistillError('USAGE', `-a ${v}: expected key=value`, { hint: 'e.g. -a e2e-tests-passed=True' });
    out[v.slice(0, i)] = v.slice(i + 1);
  }
  return out;
}

export async function signingKey(path: string, io: CliIo) {
  const { loadPrivateKey, readKeyFile } = await import('../../sign/keys.js');
  const pem = await readKeyFile(path).catch((e: unknown) => {
    throw new DistillError('KEY_INVALID', `cannot read the key ${path}: ${(e as Error).message}`, { cause: e, hint: 'pass --key cosign.key (distill generate-key-pair makes one)' });
  });
  const encrypted = /ENCRYPTED (SIGSTORE|COSIGN) PRIVATE KEY/.test(pem);
  return loadPrivateKey(pem, encrypted ? await password(io, false) : undefined, path);
}

async function publicKey(path: string) {
  const { loadPublicKey, readKeyFile } = await import('../../sign/keys.js');
  const pem = await readKeyFile(path).catch((e: unknown) => {
    throw new DistillError('KEY_INVALID', `cannot read the key ${path}: ${(e as Error).message}`, { cause: e, hint: 'pass --key cosign.pub' });
  });
  return loadPublicKey(pem, path);
}

/**
 * --format: where signatures and attestations go. Default classic: podman/skopeo (containers/image),
 * Kyverno's Cosign verifier and sigstore policy-controller read only the `.sig`/`.att` tags, and cosign
 * v3 still verifies them; `bundle` is cosign v3's default (Sigstore bundle referrers), `both` serves all.
 */
export const FORMAT_OPTION = {
  choices: ['classic', 'bundle', 'both'],
  default: 'classic',
  describe: 'classic: .sig/.att tags (cosign v2, podman, Kyverno, policy-controller); bundle: Sigstore bundle v0.3 referrers (cosign v3); both',
} as const;

const via = (b: { manifest: string; via: string }): string => `bundle ${b.manifest} (${b.via === 'api' ? 'referrers API' : 'fallback tag'})`;

export function signedLine(s: { added: boolean; digest: string; reference: string; bundle?: { manifest: string; via: string } }, format: string): string {
  const parts = [
    ...(format !== 'bundle' ? [`${s.added ? 'signed' : 'already signed'} ${s.digest} → ${s.reference}`] : [`signed ${s.digest}`]),
    ...(s.bundle ? [via(s.bundle)] : []),
  ];
  return `${parts.join('; ')}\n`;
}

export function attestedLine(r: { digest: string; predicateType: string; reference: string; bundle?: { manifest: string; via: string } }, format: string): string {
  return `attested ${r.digest} (${r.predicateType})${format !== 'bundle' ? ` → ${r.reference}` : ''}${r.bundle ? `; ${via(r.bundle)}` : ''}\n`;
}

export function keyPairCommand(io: CliIo) {
  return {
    command: 'generate-key-pair',
    describe: 'Write cosign.key (encrypted, 0600) and cosign.pub, as cosign generate-key-pair does',
    builder: (y: Argv) =>
      y
        .option('dir', { type: 'string', default: '.', describe: 'where to write them' })
        .option('force', { type: 'boolean', default: false, describe: 'replace an existing key pair' })
        .option('json', { type: 'boolean', default: false }),
    handler: async (argv: { dir: string; force: boolean; json: boolean }) => {
      const { writeKeyPair } = await import('../../sign/keys.js');
      const r = await writeKeyPair(argv.dir, await password(io, true), { force: argv.force });
      io.stdout.write(argv.json ? JSON.stringify(r) + '\n' : `Private key written to ${r.privateKeyPath}\nPublic key written to ${r.publicKeyPath}\n`);
    },
  };
}

export function signCommand(io: CliIo) {
  return {
    command: 'sign <reference>',
    describe: 'Sign an image (an index: the index and every platform manifest) with a cosign key; stored as sha256-<hex>.sig',
    builder: (y: Argv) =>
      registryFlags(y)
        .positional('reference', { type: 'string' })
        .option('key', { type: 'string', demandOption: true, describe: 'cosign.key (or a PKCS#8 / EC PEM private key)' })
        .option('a', { alias: 'annotation', type: 'string', array: true, describe: 'key=value written into the signed payload' })
        .option('recursive', { type: 'boolean', default: true, describe: 'for an index, sign every platform manifest too' })
        .option('identity', { type: 'string', describe: 'the docker-reference to claim (default: the repository)' })
        .option('format', FORMAT_OPTION),
    handler: async (argv: RegistryArgs & { reference: string; key: string; a?: string[]; recursive: boolean; identity?: string; format: string }) => {
      const key = await signingKey(argv.key, io);
      const { opts, done } = await registryOptionsFrom(argv, io);
      const annotations = annotationsOf(argv.a);
      const { signImage, checkFormat } = await import('../../sign/sign.js');
      let r;
      try {
        r = await signImage(argv.reference, { ...opts, privateKey: key.privateKey, recursive: argv.recursive, format: checkFormat(argv.format), ...(annotations ? { annotations } : {}), ...(argv.identity ? { identity: argv.identity } : {}) });
      } finally {
        done();
      }
      if (argv.json) io.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else for (const s of r) io.stdout.write(signedLine(s, argv.format));
    },
  };
}

export function verifyCommand(io: CliIo) {
  return {
    command: 'verify <reference>',
    describe: 'Exit 0 only if a signature by the key covers exactly this digest and carries the given annotations',
    builder: (y: Argv) =>
      registryFlags(y)
        .positional('reference', { type: 'string' })
        .option('key', { type: 'string', demandOption: true, describe: 'cosign.pub' })
        .option('a', { alias: 'annotation', type: 'string', array: true, describe: 'key=value the signed payload must carry' }),
    handler: async (argv: RegistryArgs & { reference: string; key: string; a?: string[] }) => {
      const key = await publicKey(argv.key);
      const { opts, done } = await registryOptionsFrom(argv, io);
      const annotations = annotationsOf(argv.a);
      const { verifyImage } = await import('../../sign/verify.js');
      let r;
      try {
        r = await verifyImage(argv.reference, { ...opts, publicKey: key, ...(annotations ? { annotations } : {}) });
      } finally {
        done();
      }
      io.stderr.write(`Verification for ${r.reference} --\nThe following checks were performed on each of these signatures:\n  - The signatures were verified against the specified public key\n`);
      // As cosign: the verified payloads, one JSON document per line, on stdout.
      io.stdout.write(JSON.stringify(r.signatures.map((s) => JSON.parse(s.payload.toString('utf8')))) + '\n');
    },
  };
}

export function attestCommand(io: CliIo) {
  return {
    command: 'attest <reference>',
    describe: 'Attach a signed in-toto statement (DSSE) to an image, stored as sha256-<hex>.att',
    builder: (y: Argv) =>
      registryFlags(y)
        .positional('reference', { type: 'string' })
        .option('key', { type: 'string', demandOption: true })
        .option('type', { type: 'string', demandOption: true, describe: 'slsaprovenance1, spdxjson, … or a predicate type URI' })
        .option('predicate', { type: 'string', demandOption: true, describe: 'a JSON file' })
        .option('replace', { type: 'boolean', default: false, describe: 'drop earlier attestations of the same type' })
        .option('format', FORMAT_OPTION),
    handler: async (argv: RegistryArgs & { reference: string; key: string; type: string; predicate: string; replace: boolean; format: string }) => {
      let predicate: object;
      try {
        // A FIFO or /dev/zero as --predicate is refused unread (util/regular-file.ts).
        const { readRegularFile } = await import('../../util/regular-file.js');
        predicate = JSON.parse((await readRegularFile(argv.predicate, 64 * 1024 * 1024)).toString('utf8')) as object;
      } catch (e) {
        throw new DistillError('USAGE', `--predicate ${argv.predicate}: not a readable JSON file`, { cause: e });
      }
      const key = await signingKey(argv.key, io);
      const { opts, done } = await registryOptionsFrom(argv, io);
      const [{ attestImage }, { checkFormat }] = await Promise.all([import('../../attest/attest.js'), import('../../sign/sign.js')]);
      let r;
      try {
        r = await attestImage(argv.reference, { ...opts, privateKey: key.privateKey, predicateType: argv.type, predicate, replace: argv.replace, format: checkFormat(argv.format) });
      } finally {
        done();
      }
      io.stdout.write(argv.json ? JSON.stringify(r, null, 2) + '\n' : attestedLine(r, argv.format));
    },
  };
}

export function verifyAttestationCommand(io: CliIo) {
  return {
    command: 'verify-attestation <reference>',
    describe: 'Verify the attestations of a type by a key and print their statements',
    builder: (y: Argv) =>
      registryFlags(y)
        .positional('reference', { type: 'string' })
        .option('key', { type: 'string', demandOption: true })
        .option('type', { type: 'string', demandOption: true }),
    handler: async (argv: RegistryArgs & { reference: string; key: string; type: string }) => {
      const key = await publicKey(argv.key);
      const { opts, done } = await registryOptionsFrom(argv, io);
      const { verifyAttestation } = await import('../../attest/attest.js');
      let r;
      try {
        r = await verifyAttestation(argv.reference, { ...opts, publicKey: key, predicateType: argv.type });
      } finally {
        done();
      }
      for (const s of r.statements) io.stdout.write(JSON.stringify(s) + '\n');
    },
  };
}

export function triangulateCommand(io: CliIo) {
  return {
    command: 'triangulate <reference>',
    describe: 'Print where the signatures (or attestations, SBOMs) of an image are stored',
    builder: (y: Argv) =>
      registryFlags(y)
        .positional('reference', { type: 'string' })
        .option('type', { type: 'string', choices: ['signature', 'attestation', 'sbom', 'digest'], default: 'signature' }),
    handler: async (argv: RegistryArgs & { reference: string; type: 'signature' | 'attestation' | 'sbom' | 'digest' }) => {
      const { triangulate } = await import('../../sign/triangulate.js');
      const { opts, done } = await registryOptionsFrom(argv, io);
      try {
        io.stdout.write((await triangulate(argv.reference, argv.type, opts)) + '\n');
      } finally {
        done();
      }
    },
  };
}
