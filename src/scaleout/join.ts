// The scale-out join (`distill index DEF --push REPO [--sign-key KEY]`). Workers pushed each platform
// image as `<variant>-<arch>`; the join reads the lock chain, fetches each of those manifests and its
// config, and checks it is exactly what the locks say: the image model is rebuilt from the locks with
// the workers' layer digests and diff IDs (config: platform, env, user, entrypoint, history naming
// every layer's packages, timestamps; manifest: annotations, base digests), and its manifest digest
// must be the one in the registry. Then each variant's index is made by the same code as a
// one-machine build — so it is byte-identical to `distill build --push` — pushed, tagged, signed, and
// given a provenance that merges the workers' (each verified with the key, checked against the same
// locks, settings and timestamp, and listed as a byproduct with its run details).
//
// Attacker-controlled here: every byte from the registry (manifests, configs, attestations). They are
// size-capped, digest-checked, and never trusted beyond what the locks and the key confirm; the layer
// bytes themselves are trusted as the workers pushed them (their digests are pinned by the manifest).
import { randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { attestImage, verifyAttestation, type AttestResult } from '../attest/attest.js';
import { BUILD_SETTINGS } from '../build.js';
import { makeVariants } from '../build/images.js';
import { debugLayerCreatedBy, imageLayerCreatedBy, layerTimestamp, type BuiltLayer, type ChainLayers } from '../build/layers.js';
import { ALL_VARIANTS, type Variant } from '../definition/types.js';
import { sha256Hex, type Digest } from '../digest.js';
import { DistillError, isDistillError, messageOf } from '../errors.js';
import { noProgress, type OnProgress } from '../events.js';
import { canonicalJson, parseJsonObject } from '../json.js';
import { loadLockChain, readChainTexts, type LockedImage } from '../lock/load.js';
import type { Descriptor } from '../oci/descriptor.js';
import { ANNOTATION_REVISION, ANNOTATION_SOURCE, MEDIA_TYPE_INDEX } from '../oci/media-types.js';
import { debianArchToPlatform, platformString } from '../oci/platform.js';
import { buildProvenance } from '../provenance/provenance.js';
import { MEDIA_TYPE_OCI_MANIFEST, RegistryClient, type RegistryOptions } from '../registry/client.js';
import { parseReference } from '../registry/reference.js';
import { signImage, type SignedManifest } from '../sign/sign.js';
import { publicKeyOf } from '../sign/signer.js';
import { readPayload } from '../sign/signature-store.js';
import { platformTag, variantSpec, variantTag } from '../definition/variants.js';

export interface JoinOptions extends RegistryOptions {
  privateKey?: KeyObject;
  /** SOURCE_DATE_EPOCH the workers built with (default: each lock's own timestamp). */
  sourceDateEpoch?: number;
  /** Narrow the definition's variants. */
  variants?: readonly Variant[];
  onProgress?: OnProgress;
}

export interface JoinedVariant {
  variant: Variant;
  index: Digest;
  manifests: { arch: string; platform: string; digest: Digest }[];
}

export interface JoinResult {
  image: string;
  variants: JoinedVariant[];
  /** registry/repository:tag@digest of each index pushed. */
  pushed: { tag: string; digest: Digest; reference: string }[];
  signed: SignedManifest[];
  attested: AttestResult[];
  /** The merged provenance statement (attested on every index with a key). */
  provenance: object;
}

interface Fetched {
  variant: Variant;
  arch: string;
  tag: string;
  digest: Digest;
  manifest: { layers: Descriptor[]; config: Descriptor; annotations?: Record<string, string> };
  diffIds: Digest[];
}

const CONFIG_CAP = 4 * 1024 * 1024;

export async function joinPlatforms(definitionFile: string, repository: string, opts: JoinOptions = {}): Promise<JoinResult> {
  const startedOn = new Date();
  const emit = opts.onProgress ?? noProgress;
  const target = parseReference(repository);
  if (target.digest !== undefined || target.tag !== undefined) {
    throw new DistillError('REFERENCE_INVALID', `${repository}: the join pushes to a repository, not a tag or digest`, { hint: 'e.g. --push registry.example.com/distill/python3' });
  }
  const repo = target.repository;
  const where = `${target.registry}/${repo}`;
  const chain = await loadLockChain(definitionFile);
  const texts = await readChainTexts(chain, 'join');
  const top = chain[chain.length - 1]!;
  const def = top.definition;
  const arches = Object.keys(top.lock.architectures).sort();
  const variants = ALL_VARIANTS.filter((v) => def.variants.includes(v) && (opts.variants === undefined || opts.variants.includes(v)));
  if (variants.length === 0) throw new DistillError('USAGE', `${def.name} has none of the variants asked for (it has ${def.variants.join(', ')})`, { hint: 'check --variant' });

  const client = new RegistryClient(target.registry, { ...opts, access: 'push' });
  const signed: SignedManifest[] = [];
  const attested: AttestResult[] = [];
  const pushed: JoinResult['pushed'] = [];
  const joined: JoinedVariant[] = [];
  const indexes: { variant: Variant; digest: Digest; bytes: Buffer }[] = [];
  let annotations: { source?: string; revision?: string } = {};
  try {
    // 1. Every platform image, fetched; every missing one named at once.
    const fetched: Fetched[] = [];
    const missing: string[] = [];
    for (const variant of variants) {
      for (const arch of arches) {
        const tag = platformTag(variant, arch);
        let m;
        try {
          m = await client.getManifest(repo, tag, [MEDIA_TYPE_OCI_MANIFEST]);
        } catch (e) {
          if (isDistillError(e, 'REGISTRY_NOT_FOUND')) {
            missing.push(`${def.name}:${tag}`);
            continue;
          }
          throw e;
        }
        const manifest = JSON.parse(m.bytes.toString('utf8')) as Fetched['manifest'];
        if (!Array.isArray(manifest.layers) || typeof manifest.config?.digest !== 'string' || typeof manifest.config.size !== 'number') {
          throw mismatch(`${where}:${tag} (${m.digest}) is not an image manifest with a config and layers`, def.name, arch);
        }
        const configBytes = await readPayload(client, repo, manifest.config, CONFIG_CAP);
        // The worker's config is registry content (attacker-controlled): not JSON, or not an object, is a mismatch, not a crash.
        let config: { rootfs?: { diff_ids?: unknown } };
        try {
          config = parseJsonObject(configBytes, (msg) => new Error(msg)) as typeof config;
        } catch (e) {
          throw mismatch(`${where}:${tag} (${m.digest}): its config is ${messageOf(e)}`, def.name, arch);
        }
        const diffIds = config.rootfs?.diff_ids;
        if (!Array.isArray(diffIds) || diffIds.length !== manifest.layers.length || !diffIds.every((d) => typeof d === 'string' && /^sha256:[0-9a-f]{64}$/.test(d))) {
          throw mismatch(`${where}:${tag} (${m.digest}): its config's diff_ids do not match its layers`, def.name, arch);
        }
        fetched.push({ variant, arch, tag, digest: m.digest, manifest, diffIds: diffIds as Digest[] });
      }
    }
    if (missing.length > 0) {
      const archesMissing = [...new Set(missing.map((x) => x.slice(x.lastIndexOf('-') + 1)))];
      throw new DistillError('PLATFORM_MISSING', `${where} lacks ${missing.join(', ')}: no worker pushed ${missing.length === 1 ? 'it' : 'them'}`, {
        hint: `run the worker${archesMissing.length > 1 ? 's' : ''}: ${archesMissing.map((a) => `distill build ${def.name} --platform ${a} --per-platform --push ${where}`).join('; ')}`,
      });
    }

    // 2. Each platform image is what the locks say: rebuilt from the locks with the workers' layers.
    annotations = annotationsOf(fetched, where);
    for (const variant of variants) {
      const mine = fetched.filter((f) => f.variant === variant);
      const perArch = mine.map((f) => chainLayers(chain, f, opts.sourceDateEpoch, where));
      const [v] = makeVariants(chain, perArch, [variant], opts.sourceDateEpoch, annotations);
      for (const f of mine) {
        const expected = v!.images.get(f.arch)!;
        if (expected.manifest.descriptor.digest !== f.digest) {
          throw mismatch(`${where}:${f.tag} is ${f.digest}, but its locks and layers make ${expected.manifest.descriptor.digest}: ${explainDifference(expected.manifest.bytes, expected.config.bytes, f)}`, def.name, f.arch);
        }
      }
      const index = v!.index.index;
      indexes.push({ variant, digest: index.descriptor.digest, bytes: index.bytes });
      joined.push({ variant, index: index.descriptor.digest, manifests: mine.map((f) => ({ arch: f.arch, platform: platformString(debianArchToPlatform(f.arch)), digest: f.digest })) });
    }

    // 3. Indexes by digest, then the tags, last (a tag never names something incomplete).
    for (const i of indexes) await client.putManifest(repo, i.digest, i.bytes, MEDIA_TYPE_INDEX);
    for (const i of indexes) {
      await client.putManifest(repo, variantTag(i.variant), i.bytes, MEDIA_TYPE_INDEX);
      emit({ type: 'manifest-pushed', repository: repo, digest: i.digest, reference: variantTag(i.variant), existed: false });
      pushed.push({ tag: i.variant, digest: i.digest, reference: `${where}:${i.variant}@${i.digest}` });
    }

    // The same client reads the workers' records and writes every signature and attestation below:
    // one ping and one token for the whole join.
    // 4. The provenance: the one-machine build's, with the workers' runs as byproducts.
    const subjects = joined.flatMap((v) => [{ name: `${def.name}:${v.variant}`, digest: v.index }, ...v.manifests.map((m) => ({ name: `${def.name}:${v.variant}-${m.arch}`, digest: m.digest }))]);
    const workers = opts.privateKey ? await workerRecords(where, chain, texts, joined, { ...opts, client }, def.name) : [];
    const earliest = workers.map((w) => w.startedOn).filter((s): s is string => typeof s === 'string').sort()[0];
    const provenance = buildProvenance({
      chain,
      texts,
      subjects,
      variants,
      platforms: arches,
      ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
      ...(annotations.source || annotations.revision ? { source: { ...(annotations.source ? { repository: annotations.source } : {}), ...(annotations.revision ? { revision: annotations.revision } : {}) } } : {}),
      settings: BUILD_SETTINGS,
      invocationId: randomUUID(),
      startedOn: earliest !== undefined ? new Date(earliest) : startedOn,
      finishedOn: new Date(),
    }) as { predicate: { runDetails: Record<string, unknown> }; subject: { name: string; digest: { sha256: string } }[] };
    if (workers.length > 0) {
      provenance.predicate.runDetails['byproducts'] = workers.map((w) => ({
        name: `worker ${w.platforms.join(',')}`,
        digest: { sha256: w.statementSha256 },
        annotations: { invocationId: w.invocationId ?? '', startedOn: w.startedOn ?? '', finishedOn: w.finishedOn ?? '', platforms: w.platforms.join(',') },
      }));
    }

    // 5. Signatures (each index and the platform images it lists) and the provenance on every index.
    if (opts.privateKey) {
      const extraSubjects = provenance.subject.map((x) => ({ name: x.name, digest: `sha256:${x.digest.sha256}` }));
      for (const i of indexes) {
        signed.push(...(await signImage(`${where}@${i.digest}`, { ...opts, client, privateKey: opts.privateKey, recursive: true })));
        attested.push(await attestImage(`${where}@${i.digest}`, { ...opts, client, privateKey: opts.privateKey, predicateType: 'slsaprovenance1', predicate: provenance.predicate, replace: true, extraSubjects }));
      }
    }
    return { image: def.name, variants: joined, pushed, signed, attested, provenance };
  } finally {
    await client.close();
  }
}

// The source/revision annotations the workers set, the same on every platform image (else the
// platforms were built from different checkouts, and the index would mix them).
function annotationsOf(fetched: readonly Fetched[], where: string): { source?: string; revision?: string } {
  const seen = new Set(fetched.map((f) => canonicalJson([f.manifest.annotations?.[ANNOTATION_SOURCE] ?? null, f.manifest.annotations?.[ANNOTATION_REVISION] ?? null])));
  if (seen.size > 1) {
    throw new DistillError('PLATFORM_MISMATCH', `the platform images in ${where} name different sources or revisions (${[...seen].join(' vs ')})`, {
      hint: 'rerun every worker from the same checkout (same --source and --revision)',
    });
  }
  const a = fetched[0]?.manifest.annotations ?? {};
  return { ...(a[ANNOTATION_SOURCE] ? { source: a[ANNOTATION_SOURCE] } : {}), ...(a[ANNOTATION_REVISION] ? { revision: a[ANNOTATION_REVISION] } : {}) };
}

/** The model's layers for one worker's image: digests from its manifest, history from the locks. */
function chainLayers(chain: readonly LockedImage[], f: Fetched, sourceDateEpoch: number | undefined, where: string): ChainLayers {
  const debug = variantSpec(f.variant).debug;
  const want = chain.length + (debug ? 1 : 0);
  if (f.manifest.layers.length !== want) {
    throw mismatch(`${where}:${f.tag} has ${f.manifest.layers.length} layers; its locks make ${want} (${chain.map((li) => li.definition.name).join(', ')}${debug ? ', debug' : ''})`, chain[chain.length - 1]!.definition.name, f.arch);
  }
  const layer = (i: number, image: string, createdAt: number, createdBy: string, packages: BuiltLayer['packages']): BuiltLayer => ({
    path: '',
    digest: f.manifest.layers[i]!.digest as Digest,
    size: f.manifest.layers[i]!.size,
    diffId: f.diffIds[i]!,
    uncompressedSize: 0,
    image,
    createdAt,
    createdBy,
    packages,
  });
  const layers = chain.map((li, i) => {
    const pkgs = li.lock.architectures[f.arch]?.packages ?? [];
    return layer(i, li.definition.name, layerTimestamp(li, sourceDateEpoch), imageLayerCreatedBy(li, pkgs), pkgs);
  });
  const owner = [...chain].reverse().find((li) => li.lock.architectures[f.arch]?.debug);
  const debugLayer = debug && owner ? layer(chain.length, `${owner.definition.name} (debug)`, layerTimestamp(owner, sourceDateEpoch), debugLayerCreatedBy(owner.lock.architectures[f.arch]!.debug!), owner.lock.architectures[f.arch]!.debug!) : undefined;
  return { arch: f.arch, layers, ...(debugLayer ? { debug: debugLayer } : {}) };
}

/** Where a worker's image departs from the locks: the first differing config field, else the manifest's annotations. */
function explainDifference(expectedManifest: Buffer, expectedConfig: Buffer, f: Fetched): string {
  const em = JSON.parse(expectedManifest.toString('utf8')) as { config: Descriptor; annotations?: Record<string, string> };
  if (em.config.digest !== f.manifest.config.digest) return `its config differs (expected ${em.config.digest}, found ${f.manifest.config.digest}; the locks give ${describeConfig(expectedConfig)})`;
  return `its manifest annotations differ (expected ${canonicalJson(em.annotations ?? {})}, found ${canonicalJson(f.manifest.annotations ?? {})})`;
}
function describeConfig(bytes: Buffer): string {
  const c = JSON.parse(bytes.toString('utf8')) as { created?: string; config?: { User?: string } };
  return `created ${c.created ?? '?'}, user ${c.config?.User ?? '?'}`;
}

function mismatch(message: string, image: string, arch: string): DistillError {
  return new DistillError('PLATFORM_MISMATCH', message, {
    hint: `rebuild that platform from these locks: distill build ${image} --platform ${arch} --per-platform --push … (and the same SOURCE_DATE_EPOCH)`,
  });
}

interface WorkerRecord {
  platforms: string[];
  invocationId?: string;
  startedOn?: string;
  finishedOn?: string;
  statementSha256: string;
}

/**
 * The provenance each worker attested on its platform images, verified with the key, and checked to
 * be about the same definitions, locks, timestamp and settings as this join. One record per run.
 */
async function workerRecords(
  where: string,
  chain: readonly LockedImage[],
  texts: { definition: string; lock: string }[],
  joined: readonly JoinedVariant[],
  opts: JoinOptions & { client?: RegistryClient },
  image: string,
): Promise<WorkerRecord[]> {
  const publicKey = publicKeyOf(opts.privateKey!);
  const records = new Map<string, WorkerRecord>();
  const wantLocks = texts.map((t) => sha256Hex(t.lock)).sort();
  const wantDefs = texts.map((t) => sha256Hex(t.definition)).sort();
  // The settings a build of this distill records (distill version, layer format, gzip, tar format).
  const ours = canonicalJson((buildProvenance({ chain, texts, subjects: [], variants: [], platforms: [], settings: BUILD_SETTINGS, invocationId: '', startedOn: new Date(0), finishedOn: new Date(0) }) as { predicate: { buildDefinition: { internalParameters: object } } }).predicate.buildDefinition.internalParameters);
  for (const v of joined) {
    for (const m of v.manifests) {
      const r = await verifyAttestation(`${where}@${m.digest}`, { ...opts, publicKey, predicateType: 'slsaprovenance1' }).catch((e: unknown) => {
        throw new DistillError('PLATFORM_MISMATCH', `${where}:${v.variant}-${m.arch} has no provenance signed by this key: ${(e as Error).message}`, {
          cause: e,
          hint: `the workers must sign with the join's key: distill build ${image} --platform ${m.arch} --per-platform --push ${where} --sign-key KEY`,
        });
      });
      const s = r.statements[r.statements.length - 1]!;
      const p = s.predicate as { buildDefinition?: { externalParameters?: { locks?: { digest?: { sha256?: string } }[]; definitions?: { digest?: { sha256?: string } }[]; platforms?: string[]; sourceDateEpoch?: number }; internalParameters?: Record<string, unknown> }; runDetails?: { metadata?: { invocationId?: string; startedOn?: string; finishedOn?: string } } };
      const ext = p.buildDefinition?.externalParameters;
      const locks = (ext?.locks ?? []).map((l) => l.digest?.sha256 ?? '').sort();
      const defs = (ext?.definitions ?? []).map((l) => l.digest?.sha256 ?? '').sort();
      const internal = canonicalJson(p.buildDefinition?.internalParameters ?? {});
      if (canonicalJson(locks) !== canonicalJson(wantLocks) || canonicalJson(defs) !== canonicalJson(wantDefs)) {
        throw new DistillError('PLATFORM_MISMATCH', `the worker that pushed ${where}:${v.variant}-${m.arch} built from other definitions or locks than these`, { hint: 'rerun that worker from the same checkout' });
      }
      if ((ext?.sourceDateEpoch ?? null) !== (opts.sourceDateEpoch ?? null) || internal !== ours) {
        throw new DistillError('PLATFORM_MISMATCH', `the worker that pushed ${where}:${v.variant}-${m.arch} used another SOURCE_DATE_EPOCH or other settings (distill version, layer format)`, { hint: 'run the workers and the join with the same distill and SOURCE_DATE_EPOCH' });
      }
      const meta = p.runDetails?.metadata ?? {};
      const key = meta.invocationId ?? sha256Hex(canonicalJson(s));
      if (!records.has(key)) {
        records.set(key, {
          platforms: [...(ext?.platforms ?? [m.arch])],
          ...(meta.invocationId !== undefined ? { invocationId: meta.invocationId } : {}),
          ...(meta.startedOn !== undefined ? { startedOn: meta.startedOn } : {}),
          ...(meta.finishedOn !== undefined ? { finishedOn: meta.finishedOn } : {}),
          statementSha256: sha256Hex(canonicalJson(s)),
        });
      }
    }
  }
  return [...records.values()].sort((a, b) => (a.platforms.join() < b.platforms.join() ? -1 : a.platforms.join() > b.platforms.join() ? 1 : (a.startedOn ?? '') < (b.startedOn ?? '') ? -1 : 1));
}
