// A scale-out worker's publish step (`distill build --platform P --push REPO --per-platform`): it
// pushes only the single-platform images of its build, as `<variant>-<arch>` tags — never an index,
// never a multi-arch tag (that is the join's, `distill index`) — and with a key signs each of them and
// attests its SPDX SBOM and the worker's own SLSA provenance on it, so the join can check and merge
// what every worker recorded. The one entry point into push/sign/attest, for re-pointing at a shared
// publish step later.
import { readFile } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { attestImage, type AttestResult } from '../attest/attest.js';
import { ATTESTATIONS_DIR, sbomFile, type BuildResult } from '../build.js';
import type { RegistryOptions } from '../registry/client.js';
import { pushLayout, type PushResult } from '../registry/push.js';
import { parseReference } from '../registry/reference.js';
import { signImage, type SignedManifest } from '../sign/sign.js';

export interface WorkerPublishOptions extends RegistryOptions {
  privateKey?: KeyObject;
}

export interface WorkerPublishResult {
  pushed: PushResult;
  signed: SignedManifest[];
  attested: AttestResult[];
}

/** `<variant>-<arch>`: the tag a worker pushes and the join reads. */
export const platformTag = (variant: string, arch: string): string => `${variant}-${arch}`;

export async function publishPlatforms(layoutDir: string, result: BuildResult, repository: string, opts: WorkerPublishOptions = {}): Promise<WorkerPublishResult> {
  const target = parseReference(repository);
  const repo = `${target.registry}/${target.repository}`;
  const refs = result.variants.flatMap((v) => v.manifests.map((m) => platformTag(v.variant, m.arch)));
  // Each ref is pushed under its own name as the tag, whatever tag `repository` names.
  const pushed = await pushLayout(layoutDir, repo, { ...opts, refs, tags: (r) => r });
  const signed: SignedManifest[] = [];
  const attested: AttestResult[] = [];
  if (opts.privateKey === undefined) return { pushed, signed, attested };
  const provenance = result.provenance as { predicate: object; subject: { name: string; digest: { sha256: string } }[] } | undefined;
  const manifests = new Set(result.variants.flatMap((v) => v.manifests.map((m) => m.digest)));
  for (const v of result.variants) {
    for (const m of v.manifests) {
      const at = `${repo}@${m.digest}`;
      signed.push(...(await signImage(at, { ...opts, privateKey: opts.privateKey })));
      const sbom = JSON.parse(await readFile(join(layoutDir, ATTESTATIONS_DIR, sbomFile(v.variant, m.arch)), 'utf8')) as object;
      attested.push(await attestImage(at, { ...opts, privateKey: opts.privateKey, predicateType: 'spdxjson', predicate: sbom, replace: true }));
      if (provenance) {
        // The worker's record, for the join: its subjects are the platform images it pushed (the
        // single-architecture "indexes" of a partial build are never published, so never named).
        const extraSubjects = provenance.subject.filter((s) => manifests.has(`sha256:${s.digest.sha256}`)).map((s) => ({ name: s.name, digest: `sha256:${s.digest.sha256}` }));
        attested.push(await attestImage(at, { ...opts, privateKey: opts.privateKey, predicateType: 'slsaprovenance1', predicate: provenance.predicate, replace: true, extraSubjects }));
      }
    }
  }
  return { pushed, signed, attested };
}
