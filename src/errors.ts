// One error class for the whole library: a stable `code` per failure kind (tests and callers match on
// it, never on wording), an ES2022 `cause`, and a `hint` saying what the user can do about it.

export type ErrorCode =
  // definitions
  | 'DEFINITION_NOT_FOUND'
  | 'DEFINITION_SYNTAX'
  | 'DEFINITION_INVALID'
  | 'DEFINITION_CYCLE'
  // mirrors and transport
  | 'MIRROR_NOT_CONFIGURED'
  | 'MIRROR_INVALID'
  | 'FETCH_FAILED'
  | 'NOT_FOUND_IN_MIRROR'
  | 'RESPONSE_TOO_LARGE'
  // the signed chain
  | 'KEYRING_NOT_FOUND'
  | 'KEYRING_INVALID'
  | 'SIGNATURE_MALFORMED'
  | 'SIGNATURE_BAD'
  | 'SIGNATURE_UNKNOWN_KEY'
  | 'SIGNATURE_WEAK'
  | 'RELEASE_EXPIRED'
  | 'RELEASE_INVALID'
  | 'RELEASE_MISSING_INDEX'
  | 'INDEX_SIZE_MISMATCH'
  | 'INDEX_HASH_MISMATCH'
  | 'INDEX_MALFORMED'
  // resolution
  | 'VERSION_INVALID'
  | 'RELATION_INVALID'
  | 'PACKAGE_UNKNOWN'
  | 'DEPENDENCY_UNSATISFIABLE'
  | 'EXPLAIN_NOT_IN_CLOSURE'
  // locks and the cache
  | 'LOCK_NOT_FOUND'
  | 'LOCK_INVALID'
  | 'LOCK_STALE'
  | 'BLOB_SIZE_MISMATCH'
  | 'BLOB_DIGEST_MISMATCH'
  | 'CACHE_IO'
  // .deb archives (attacker-controlled input)
  | 'DEB_MALFORMED'
  | 'DEB_UNSUPPORTED_COMPRESSION'
  | 'UNSAFE_ENTRY'
  // root filesystems, layers, images
  | 'PATH_CONFLICT'
  | 'GENERATE_FAILED'
  | 'LAYER_IO'
  | 'OCI_INVALID'
  | 'BUILD_FAILED'
  | 'OUTPUT_IO'
  // registries
  | 'REFERENCE_INVALID'
  | 'REGISTRY_AUTH'
  | 'REGISTRY_DENIED'
  | 'REGISTRY_NOT_FOUND'
  | 'REGISTRY_PROTOCOL'
  | 'REGISTRY_DIGEST_MISMATCH'
  // keys and signatures
  | 'KEY_INVALID'
  | 'KEY_PASSWORD'
  | 'KEY_EXISTS'
  | 'KEY_UNSUPPORTED'
  | 'KEY_IO'
  // signatures and attestations
  | 'SIGNATURE_NONE'
  | 'SIGNATURE_INVALID'
  | 'SIGNATURE_DIGEST_MISMATCH'
  | 'SIGNATURE_ANNOTATION_MISMATCH'
  | 'SIGNATURE_MEDIA_TYPE'
  | 'ATTESTATION_NONE'
  | 'ATTESTATION_INVALID'
  // provenance and rebuild
  | 'PROVENANCE_INVALID'
  | 'PROVENANCE_MISMATCH'
  | 'REBUILD_DIFFERS'
  // scale-out: workers and the join
  | 'PLATFORM_MISSING'
  | 'PLATFORM_MISMATCH'
  | 'LAYER_CACHE_INVALID'
  // tooling
  | 'TOOL_MISSING'
  | 'DECOMPRESS_FAILED'
  | 'USAGE';

export interface ErrorOptions {
  cause?: unknown;
  /** What the user can do about it, one sentence. */
  hint?: string;
}

export class DistillError extends Error {
  override readonly name = 'DistillError';
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }
}

export function isDistillError(e: unknown, code?: ErrorCode): e is DistillError {
  return e instanceof DistillError && (code === undefined || e.code === code);
}

/** The message of any thrown value, for wrapping foreign errors as a cause. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
