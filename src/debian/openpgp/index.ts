// The OpenPGP verifier's public face: read a keyring, verify a clearsigned InRelease against it the
// way apt's gpgv method does. RFC 4880 / RFC 9580; see each module's header for the sections it follows.
export { readKeyring, type Keyring, type PublicKey } from './keyring.js';
export { verifyCleartext, type Signer, type VerifiedCleartext } from './verify.js';
