// Progress events: the library reports what it does through a callback and never writes to the
// console; the CLI renders them (bars on a TTY, nothing otherwise).

export type ProgressEvent =
  | { type: 'release-verified'; source: string; suite: string; signer: string }
  | { type: 'index-fetched'; source: string; path: string; bytes: number }
  | { type: 'resolved'; image: string; arch: string; packages: number }
  | { type: 'lock-written'; path: string; changed: boolean }
  | { type: 'download-start'; what: string; bytes: number }
  | { type: 'download-progress'; what: string; bytes: number; total: number }
  | { type: 'download-done'; what: string; bytes: number; cached: boolean }
  | { type: 'retry'; what: string; attempt: number; delayMs: number; reason: string }
  | { type: 'layer-written'; image: string; arch: string; digest: string; size: number; uncompressedSize: number; seconds: number; source?: 'built' | 'local cache' | 'registry cache' }
  | { type: 'image-written'; image: string; variant: string; arch: string; digest: string }
  /** An SBOM written to the layout; `licenses`: Debian packages with a declared licence, of `packages`. */
  | { type: 'sbom-written'; image: string; variant: string; arch: string; file: string; packages: number; licenses: number; undetermined: string[] }
  | { type: 'warning'; message: string }
  // registries (pulls report their blobs with the download-* events)
  | { type: 'blob-push-start'; repository: string; digest: string; size: number }
  | { type: 'blob-push-progress'; repository: string; digest: string; bytes: number; total: number }
  | { type: 'blob-pushed'; repository: string; digest: string; size: number; outcome: 'exists' | 'mounted' | 'uploaded'; from?: string }
  | { type: 'manifest-pushed'; repository: string; digest: string; reference: string; existed: boolean };

export type OnProgress = (event: ProgressEvent) => void;

export const noProgress: OnProgress = () => {};
