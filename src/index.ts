// distill's public library API. The CLI imports only this module.
export { DistillError, isDistillError, type ErrorCode } from './errors.js';
export type { ProgressEvent, OnProgress } from './events.js';
export { sha256Hex, toDigest, type Digest } from './digest.js';
export { canonicalJson, prettyStableJson } from './json.js';
export { loadDefinition, definitionPath, imageSchema } from './definition/load.js';
export type { ImageDefinition, SourceSpec } from './definition/types.js';
export { parseMirrorFlags, resolveMirror, readAptSources, envName as mirrorEnvName, type MirrorInputs } from './debian/mirrors.js';
export { compareVersions, parseVersion } from './debian/version.js';
export { lockImages, loadKeyring, type LockOptions, type LockResult } from './lock/lock.js';
export { readLock, assertFresh, lockPathFor, type Lockfile, type LockedPackage } from './lock/lockfile.js';
export { loadLockChain, type LockedImage } from './lock/load.js';
export { explain, type Explanation } from './lock/explain.js';
export { ContentStore } from './cas/store.js';
export { fetchDebs, type FetchDebsOptions, type FetchSummary } from './cas/fetch-debs.js';
export { fetchImages } from './fetch-images.js';
export { findDefinitions } from './definition/find.js';
