// Publishing a build (apko's build-then-PublishIndex split): the build made the images as the model,
// blobs in the content store (src/build.ts); publish() puts them where they are asked for —
//   layout    an OCI layout with attestations/ (provenance, SBOMs)       sinks/build-outputs.ts
//   archive   a docker archive (docker load / podman load)               sinks/build-outputs.ts
//   registry  every variant's index as `<variant>` and each platform     registry/sink.ts, straight
//             image as `<variant>-<arch>`, from the store — no temporary layout
//   signer    each variant's index signed recursively (cosign sign --recursive), the SLSA provenance
//             attested on each index (its subjects name every image of the build), each platform
//             image's SBOMs attested on it (cosign attest --type spdxjson / cyclonedx), as
//             distroless publishes them
// A scale-out worker (`registry.perPlatform`) pushes only the `<variant>-<arch>` images — never an
// index, never a multi-arch tag: that is the join's (`distill index`) — signs each, and attests on
// each its SPDX SBOM and the worker's provenance, so the join can check and merge what every worker
// recorded. One registry client serves the whole publish: one ping, one token per scope, reused by
// the push and by every signature and attestation. Progress goes to events; nothing here prints.
// The registry, signing and attestation modules are loaded only by a publish that pushes: a build
// into a layout or an archive does not pay for their start-up (25 modules, ~20 ms of CPU).
import type { KeyObject } from 'node:crypto';
import type { AttestResult } from './attest/attest.js';
import { buildImage, buildOutputs, type BuildModel, type BuildOptions, type BuildResult } from './build.js';
import { platformTag, variantTag } from './definition/variants.js';
import { DistillError } from './errors.js';
import type { OnProgress } from './events.js';
import type { RegistryClient, RegistryOptions } from './registry/client.js';
import type { NamedArtifact, PushResult } from './registry/push.js';
import type { SignatureFormat, SignedManifest } from './sign/sign.js';
import { checkOutputTargets, EarlyLayerCopies, writeBuildOutputs } from './sinks/build-outputs.js';

export interface PublishRegistry extends RegistryOptions {
  /** REGISTRY/REPOSITORY to push to (a tag in it is ignored: tags are the variants' names). */
  repository: string;
  /** A scale-out worker's push: only the `<variant>-<arch>` images, no index, no multi-arch tag. */
  perPlatform?: boolean;
  /** Blobs in flight at once (default 4). */
  concurrency?: number;
  /** A client for the repository's registry (push access) to use and leave open; default: one made, and closed, here. */
  client?: RegistryClient;
}

export interface PublishSigner {
  privateKey: KeyObject;
  /** classic (.sig/.att tags), bundle (Sigstore bundle referrers) or both; default classic. A scale-out worker always writes classic (the join reads those). */
  format?: SignatureFormat;
}

export interface PublishOptions {
  /** Write an OCI layout (with attestations/) here. */
  layout?: string;
  /** Write a docker archive here. */
  archive?: string;
  /** Push to a registry. */
  registry?: PublishRegistry;
  /** With `registry`: sign and attest what was pushed. */
  signer?: PublishSigner;
  onProgress?: OnProgress;
}

export interface PublishResult {
  /** What went to the registry (absent without `registry`). */
  pushed?: PushResult;
  signed: SignedManifest[];
  attested: AttestResult[];
}

/**
 * Refuse what publish() could only refuse later: outputs that exist as the wrong kind of thing, a
 * push target naming a digest, a signer with nowhere to sign. Cheap; call it before a long build.
 */
export async function checkPublishOptions(opts: PublishOptions): Promise<void> {
  if (opts.signer !== undefined && opts.registry === undefined) {
    throw new DistillError('USAGE', '--sign-key signs what --push pushed', { hint: 'add --push REPOSITORY' });
  }
  if (opts.signer !== undefined) (await import('./sign/sign.js')).checkFormat(opts.signer.format);
  if (opts.registry !== undefined) (await import('./registry/push.js')).pushTarget(opts.registry.repository);
  await checkOutputTargets({ ...(opts.layout !== undefined ? { layout: opts.layout } : {}), ...(opts.archive !== undefined ? { archive: opts.archive } : {}) });
}

export async function publish(build: BuildResult | BuildModel, opts: PublishOptions): Promise<PublishResult> {
  return publishWith(build, opts, undefined);
}

/** publish(), finishing a layout whose layer blobs buildAndPublish copied in while the build ran. */
async function publishWith(build: BuildResult | BuildModel, opts: PublishOptions, early: EarlyLayerCopies | undefined): Promise<PublishResult> {
  const model = 'model' in build ? build.model : build;
  await checkPublishOptions(opts);
  if (opts.layout !== undefined || opts.archive !== undefined) {
    await writeBuildOutputs(buildOutputs(model), { ...(opts.layout !== undefined ? { layout: opts.layout } : {}), ...(opts.archive !== undefined ? { archive: opts.archive } : {}) }, early);
  }
  const out: PublishResult = { signed: [], attested: [] };
  if (opts.registry === undefined) return out;
  const [{ RegistryClient }, { pushNamed, pushTarget }, { checkFormat, signImage }, { attestImage }] = await Promise.all([
    import('./registry/client.js'),
    import('./registry/push.js'),
    import('./sign/sign.js'),
    import('./attest/attest.js'),
  ]);
  const { repository, perPlatform, concurrency, client: given, ...registryOptions } = opts.registry;
  const target = pushTarget(repository);
  const repo = `${target.registry}/${target.repository}`;
  const onProgress = opts.onProgress ?? registryOptions.onProgress;
  const client = given ?? new RegistryClient(target.registry, { ...registryOptions, ...(onProgress ? { onProgress } : {}), access: 'push' });
  const shared = { ...registryOptions, ...(onProgress ? { onProgress } : {}), client };
  try {
    // Tags in ref-name order, as a layout lists them; every tag after every blob and manifest.
    const named: NamedArtifact[] = [];
    for (const v of model.variants) {
      if (!perPlatform) named.push({ ref: variantTag(v.variant), artifact: v.index });
      for (const [arch, image] of v.images) named.push({ ref: platformTag(v.variant, arch), artifact: image });
    }
    named.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
    out.pushed = await pushNamed(named, repo, { ...shared, tags: (ref) => ref, ...(concurrency !== undefined ? { concurrency } : {}) });
    if (opts.signer === undefined) return out;
    const { privateKey } = opts.signer;
    const { subject, predicate } = model.provenance;
    const subjects = subject.map((x) => ({ name: x.name, digest: `sha256:${x.digest.sha256}` }));
    if (perPlatform) {
      const manifests = new Set(model.variants.flatMap((v) => [...v.images.values()].map((i) => i.manifest.descriptor.digest as string)));
      // The worker's record, for the join: its subjects are the platform images it pushed (the
      // single-architecture "indexes" of a partial build are never published, so never named).
      const extraSubjects = subjects.filter((s) => manifests.has(s.digest));
      for (const v of model.variants) {
        for (const [arch, image] of v.images) {
          const at = `${repo}@${image.manifest.descriptor.digest}`;
          out.signed.push(...(await signImage(at, { ...shared, privateKey })));
          const spdx = model.sboms.find((s) => s.variant === v.variant && s.arch === arch && s.format === 'spdx');
          if (spdx) out.attested.push(await attestImage(at, { ...shared, privateKey, predicateType: 'spdxjson', predicate: JSON.parse(spdx.json) as object, replace: true }));
          out.attested.push(await attestImage(at, { ...shared, privateKey, predicateType: 'slsaprovenance1', predicate, replace: true, extraSubjects }));
        }
      }
      return out;
    }
    const format = checkFormat(opts.signer.format);
    for (const v of model.variants) {
      const at = `${repo}@${v.index.index.descriptor.digest}`;
      out.signed.push(...(await signImage(at, { ...shared, privateKey, recursive: true, format })));
      // The provenance, attested on each variant's index; its subjects name every index and platform
      // manifest of the build too, so a verifier can tell which variant a digest is.
      out.attested.push(await attestImage(at, { ...shared, privateKey, predicateType: 'slsaprovenance1', predicate, replace: true, extraSubjects: subjects, format }));
      // Each platform image's SBOMs, as distroless attaches them.
      for (const [arch, image] of v.images) {
        for (const sbom of model.sboms.filter((s) => s.variant === v.variant && s.arch === arch)) {
          out.attested.push(await attestImage(`${repo}@${image.manifest.descriptor.digest}`, {
            ...shared,
            privateKey,
            predicateType: sbom.format === 'spdx' ? 'spdxjson' : 'cyclonedx',
            predicate: JSON.parse(sbom.json) as object,
            replace: true,
            format,
          }));
        }
      }
    }
    return out;
  } finally {
    if (given === undefined) await client.close();
  }
}

export interface BuildAndPublishOptions extends BuildOptions {
  publish: PublishOptions;
  /** Share finished layers through this registry repository (build --cache-repo). */
  cacheRepository?: string;
  /** Credentials and transport for cacheRepository (default: publish.registry's). */
  cacheRegistry?: RegistryOptions;
}

/**
 * `distill build`'s one call: check where the images go, build, publish. Every check that needs no
 * build work (output targets, push target, signer) runs before the build starts. One client per
 * registry serves every step: the layer cache's fetches and stores, the push, every signature.
 */
export async function buildAndPublish(definitionFile: string, opts: BuildAndPublishOptions): Promise<BuildResult & { published: PublishResult }> {
  const { publish: where, cacheRepository, cacheRegistry, ...buildOpts } = opts;
  const clients = new Map<string, RegistryClient>();
  // Loaded only when something goes to or comes from a registry (clientFor is called only then).
  const reg = where.registry !== undefined || cacheRepository !== undefined ? await registryModules() : undefined;
  const clientFor = (repository: string, options: RegistryOptions): RegistryClient => {
    const { RegistryClient, parseReference } = reg!;
    const host = parseReference(repository).registry;
    let c = clients.get(host);
    if (c === undefined) clients.set(host, (c = new RegistryClient(host, { ...options, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}), access: 'push' })));
    return c;
  };
  let early: EarlyLayerCopies | undefined;
  try {
    const registry = where.registry !== undefined ? { ...where.registry, client: where.registry.client ?? clientFor(where.registry.repository, where.registry) } : undefined;
    const cacheOptions = cacheRegistry ?? where.registry ?? {};
    const remote = cacheRepository !== undefined
      ? new reg!.RegistryLayerCache(cacheRepository, { ...cacheOptions, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}), client: clientFor(cacheRepository, cacheOptions) })
      : undefined;
    // A layout's staging directory is made once the checks pass, and each layer blob is copied into it
    // as soon as the build completes it (see EarlyLayerCopies); publish finishes that directory.
    early = where.layout !== undefined ? new EarlyLayerCopies(where.layout) : undefined;
    const result = await buildImage(definitionFile, {
      ...buildOpts,
      ...(remote ? { remoteLayerCache: remote } : {}),
      beforeWork: async () => {
        await checkPublishOptions(where);
        await early?.open();
      },
      ...(early ? { onLayerBlob: (b) => { early!.copy(b); buildOpts.onLayerBlob?.(b); } } : {}),
    });
    const published = await publishWith(result, { ...(opts.onProgress ? { onProgress: opts.onProgress } : {}), ...where, ...(registry ? { registry } : {}) }, early);
    // The model rides along, not enumerable, as on every BuildResult.
    return Object.defineProperty({ ...result, published }, 'model', { value: result.model, enumerable: false }) as BuildResult & { published: PublishResult };
  } finally {
    await early?.discard();
    await Promise.all([...clients.values()].map((c) => c.close()));
  }
}

async function registryModules() {
  const [{ RegistryClient }, { parseReference }, { RegistryLayerCache }] = await Promise.all([
    import('./registry/client.js'),
    import('./registry/reference.js'),
    import('./scaleout/registry-cache.js'),
  ]);
  return { RegistryClient, parseReference, RegistryLayerCache };
}
