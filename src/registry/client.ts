// A registry client for the OCI distribution specification 1.1 (spec.md: pull, push, content
// discovery): a thin facade over the transport (transport.ts: connection pool, /v2/ ping,
// authentication with a token cache, retry policy, redirects, size caps) and the protocol modules
// (blobs.ts, manifests.ts, discovery.ts). One instance talks to one registry; a command makes one
// per registry and passes it to every step (one ping, one token per scope, one connection pool).
//
// Every digest is checked: Docker-Content-Digest on every response that carries one against the
// bytes sent or received, manifests hashed as they are read, blobs verified while they stream.
import type { LowSpeedLimit } from '../http/low-speed.js';
import type { Readable } from 'node:stream';
import type { Digest } from '../digest.js';
import type { OnProgress } from '../events.js';
import type { RetryPolicy } from '../http/retry.js';
import { type BlobRef, blobStream, defaultUploadOptions, downloadBlob, headBlob, openBlob, uploadBlob, type UploadOptions } from './blobs.js';
import type { CredentialOptions } from './credentials.js';
import { getReferrers, listTags } from './discovery.js';
import { type FetchedManifest, MANIFEST_ACCEPT, getManifest, headManifest, putManifest } from './manifests.js';
import { Transport } from './transport.js';

export {
  MANIFEST_ACCEPT,
  MANIFEST_CAP,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  type FetchedManifest,
} from './manifests.js';
export type { BlobRef } from './blobs.js';

export interface RegistryOptions {
  credentials?: CredentialOptions;
  /** Allow plain http to a registry that is not on loopback (the CLI's --insecure). */
  insecure?: boolean;
  /** Per request: connecting, waiting for response headers, and idle time while a body flows (default 60 s). */
  timeoutMs?: number;
  retry?: RetryPolicy;
  onProgress?: OnProgress;
  /** Blobs smaller than this go up in one PUT (default 8 MiB); larger ones in PATCH chunks. */
  monolithicMax?: number;
  /** The size of each PATCH of a chunked upload (default 8 MiB); streamed, never buffered. */
  chunkSize?: number;
  userAgent?: string;
  /** Connections kept open to the registry (default 16). */
  connections?: number;
  /** A blob body slower than this while its reader waits is cut and retried (default 16 KiB in 30 s). */
  lowSpeed?: LowSpeedLimit;
}

export class RegistryClient {
  /** The registry as written in references (docker.io, host:port). */
  readonly registry: string;
  /** scheme://host[:port] of its API. */
  readonly base: URL;
  /** The transport, for protocol functions not wrapped here. */
  readonly transport: Transport;
  private readonly upload: UploadOptions;

  /** `access: 'push'` asks for pull,push tokens from the start, so one token serves a whole push. */
  constructor(registry: string, opts: RegistryOptions & { access?: 'pull' | 'push' } = {}) {
    this.transport = new Transport(registry, opts);
    this.registry = this.transport.registry;
    this.base = this.transport.base;
    this.upload = {
      monolithicMax: opts.monolithicMax ?? defaultUploadOptions.monolithicMax,
      chunkSize: opts.chunkSize ?? defaultUploadOptions.chunkSize,
    };
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  /** Ping the registry now, in the background (see Transport.connect). */
  connect(): void {
    this.transport.connect();
  }

  /** Which credentials are in use, for messages. */
  describeCredentials(): string {
    return this.transport.describeCredentials();
  }

  // ---- blobs ----

  /** HEAD a blob: its size when present, undefined when not. */
  headBlob(repository: string, digest: string): Promise<{ size: number } | undefined> {
    return headBlob(this.transport, repository, digest);
  }

  /**
   * Download a blob to `file` (created or truncated), verified as it streams: a wrong size or digest
   * is REGISTRY_DIGEST_MISMATCH and the file holds unverified bytes (the caller removes it).
   */
  downloadBlob(repository: string, blob: BlobRef, file: string, onBytes?: (bytes: number) => void): Promise<void> {
    return downloadBlob(this.transport, repository, blob, file, onBytes);
  }

  /** Stream a blob, verified as it flows (the stream errors on a wrong size or digest). */
  openBlob(repository: string, blob: BlobRef): Promise<Readable> {
    return openBlob(this.transport, repository, blob);
  }

  /** The blob as a Readable now, fetched on first read and verified as it flows (a model Layer's `open`). */
  blobStream(repository: string, blob: BlobRef): Readable {
    return blobStream(this.transport, repository, blob);
  }

  /**
   * Make a blob present in `repository`: mount it from one of `mountFrom` (same registry) when the
   * registry agrees, else upload it from `open()`, verified as it is read.
   */
  uploadBlob(
    repository: string,
    blob: BlobRef,
    open: () => Readable,
    opts: { mountFrom?: string[]; onBytes?: (bytes: number) => void } = {},
  ): Promise<{ outcome: 'uploaded' | 'mounted'; from?: string }> {
    return uploadBlob(this.transport, repository, blob, open, { ...this.upload, ...opts });
  }

  // ---- manifests ----

  headManifest(repository: string, reference: string): Promise<{ digest?: string; mediaType?: string; size?: number } | undefined> {
    return headManifest(this.transport, repository, reference);
  }

  getManifest(repository: string, reference: string, accept: string[] = MANIFEST_ACCEPT): Promise<FetchedManifest> {
    return getManifest(this.transport, repository, reference, accept);
  }

  putManifest(repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<Digest> {
    return putManifest(this.transport, repository, reference, bytes, mediaType);
  }

  // ---- content discovery ----

  getReferrers(repository: string, digest: string): Promise<Buffer | undefined> {
    return getReferrers(this.transport, repository, digest);
  }

  listTags(repository: string): Promise<string[]> {
    return listTags(this.transport, repository);
  }
}
