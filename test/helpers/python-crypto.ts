// python3 with PyNaCl (libsodium) and pyca/cryptography, as independent implementations of secretbox,
// scrypt and PKCS#8 for the cosign key tests, plus the openssl binary to verify signatures. The python3
// first on PATH (e.g. pyenv's) may not see Debian's python3-nacl, so /usr/bin/python3 is tried too.
// Tests that need them check and skip, saying why, when they are missing.
import { execFileSync, spawnSync } from 'node:child_process';

export const NO_PYTHON_CRYPTO =
  'python3 with PyNaCl and cryptography (Debian: python3-nacl, python3-cryptography) is not installed on this machine';
export const NO_OPENSSL = 'the openssl binary is not installed on this machine';

let python: string | null | undefined;
/** A python3 interpreter that can import nacl and cryptography, or undefined. */
export function pythonCrypto(): string | undefined {
  if (python === undefined) {
    python = null;
    for (const candidate of ['python3', '/usr/bin/python3']) {
      const r = spawnSync(candidate, ['-c', 'import nacl.secret, cryptography.hazmat.primitives.serialization'], { stdio: 'ignore' });
      if (r.status === 0) {
        python = candidate;
        break;
      }
    }
  }
  return python ?? undefined;
}

let openssl: boolean | undefined;
export function opensslAvailable(): boolean {
  openssl ??= spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
  return openssl;
}

/** Whether `openssl dgst -sha256 -verify` accepts a DER signature over a file with a PEM public key file. */
export function opensslVerifies(publicKeyFile: string, messageFile: string, signatureFile: string): boolean {
  const r = spawnSync('openssl', ['dgst', '-sha256', '-verify', publicKeyFile, '-signature', signatureFile, messageFile], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('Verified OK');
}

function runPython(py: string, script: string, args: string[], input: string): string {
  return execFileSync(py, ['-c', script, ...args], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

// Reads cosign.key the way cosign does (PEM → JSON → scrypt → secretbox → PKCS#8 DER) without any
// of distill's code, and signs the message file with ECDSA/SHA-256 (DER signature, hex on stdout).
const DECRYPT_AND_SIGN = `
import base64, hashlib, json, sys
from nacl.secret import SecretBox
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
key_path, msg_path = sys.argv[1:3]
password = sys.stdin.buffer.read()
lines = open(key_path).read().strip().split('\\n')
label = 'ENCRYPTED SIGSTORE PRIVATE KEY'
assert lines[0] == '-----BEGIN %s-----' % label and lines[-1] == '-----END %s-----' % label, lines
doc = json.loads(base64.b64decode(''.join(lines[1:-1]), validate=True))
kdf, cipher = doc['kdf'], doc['cipher']
assert kdf['name'] == 'scrypt' and cipher['name'] == 'nacl/secretbox'
p = kdf['params']
key = hashlib.scrypt(password, salt=base64.b64decode(kdf['salt']), n=p['N'], r=p['r'], p=p['p'], maxmem=256 * p['N'] * p['r'], dklen=32)
der = SecretBox(key).decrypt(base64.b64decode(doc['ciphertext']), base64.b64decode(cipher['nonce']))
priv = serialization.load_der_private_key(der, password=None)
sys.stdout.write(priv.sign(open(msg_path, 'rb').read(), ec.ECDSA(hashes.SHA256())).hex())
`;

/** PyNaCl + hashlib.scrypt decrypt a distill-written key; the key then signs `messageFile` (DER signature). */
export function pythonDecryptAndSign(py: string, keyFile: string, password: string, messageFile: string): Buffer {
  return Buffer.from(runPython(py, DECRYPT_AND_SIGN, [keyFile, messageFile], password), 'hex');
}

// Makes ECDSA keys and encrypts them in cosign's format, written independently of distill: Go's
// member order, compact JSON, standard base64, PEM lines of 64.
const ENCRYPT = `
import base64, hashlib, json, os, sys
from nacl.secret import SecretBox
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
req = json.load(sys.stdin)
curves = {'P-256': ec.SECP256R1, 'P-384': ec.SECP384R1, 'P-521': ec.SECP521R1}
b64 = lambda b: base64.b64encode(b).decode()
out = []
for k in req['keys']:
    priv = ec.generate_private_key(curves[k['curve']]())
    der = priv.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    n, salt, nonce = k['n'], os.urandom(32), os.urandom(24)
    key = hashlib.scrypt(req['password'].encode(), salt=salt, n=n, r=8, p=1, maxmem=256 * n * 8, dklen=32)
    box = SecretBox(key).encrypt(der, nonce).ciphertext
    doc = json.dumps({'kdf': {'name': 'scrypt', 'params': {'N': n, 'r': 8, 'p': 1}, 'salt': b64(salt)},
                      'cipher': {'name': 'nacl/secretbox', 'nonce': b64(nonce)}, 'ciphertext': b64(box)},
                     separators=(',', ':'))
    body = b64(doc.encode())
    pem = '-----BEGIN %s-----\\n%s\\n-----END %s-----\\n' % (k['label'], '\\n'.join(body[i:i + 64] for i in range(0, len(body), 64)), k['label'])
    pub = priv.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    out.append({'privatePem': pem, 'publicPem': pub})
json.dump(out, sys.stdout)
`;

export interface PythonKeySpec {
  label: 'ENCRYPTED SIGSTORE PRIVATE KEY' | 'ENCRYPTED COSIGN PRIVATE KEY';
  n: number;
  curve: 'P-256' | 'P-384' | 'P-521';
}

/** Key pairs generated and encrypted by python3 in cosign's format (one interpreter run for all). */
export function pythonEncryptKeys(py: string, password: string, keys: PythonKeySpec[]): { privatePem: string; publicPem: string }[] {
  return JSON.parse(runPython(py, ENCRYPT, [], JSON.stringify({ password, keys }))) as { privatePem: string; publicPem: string }[];
}

const SECRETBOX = `
import json, sys
from nacl.secret import SecretBox
cases = json.load(sys.stdin)
json.dump([SecretBox(bytes.fromhex(c['key'])).encrypt(bytes.fromhex(c['message']), bytes.fromhex(c['nonce'])).ciphertext.hex() for c in cases], sys.stdout)
`;

/** PyNaCl's secretbox (tag || ciphertext, hex) for each case. */
export function pythonSecretbox(py: string, cases: { key: string; nonce: string; message: string }[]): string[] {
  return JSON.parse(runPython(py, SECRETBOX, [], JSON.stringify(cases))) as string[];
}
