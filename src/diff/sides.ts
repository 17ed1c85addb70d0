// What one side of a diff names, read into lock chains: a lockfile, an image directory (its lock and
// its bases' locks, followed through each lock's recorded base path), a directory of image
// directories (images/), an OCI layout written by `distill build --out` (its provenance carries the
// locks inline, checked against what the layout holds through the layout source; `oci:DIR[:REF]` and
// `DIR:REF` name one ref), a provenance statement file, or a registry image (its provenance
// attestation, verified against the publisher's key, as `distill rebuild` reads it).
//
// ATTACKER-CONTROLLED INPUT: a layout's provenance is unsigned and a registry's is only as good as
// the key; both are checked by checkProvenance (inline locks against their digests) and every lock
// by the lockfile's own shape check before anything is used.
import { existsSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { verifyAttestation } from '../attest/attest.js';
import { ATTESTATIONS_DIR, PROVENANCE_FILE } from '../build.js';
import { sha256Hex } from '../digest.js';
import { DistillError, messageOf } from '../errors.js';
import { LOCK_NAME, parseLock, type Lockfile } from '../lock/lockfile.js';
import { SLSA_PROVENANCE_V1 } from '../provenance/statement.js';
import { checkProvenance } from '../rebuild.js';
import type { RegistryOptions } from '../registry/client.js';
import { hasTransport, openSource, parseSourceSpec } from '../source.js';
import { layoutRefs } from '../sources/oci-layout.js';
import { readRegularFile } from '../util/regular-file.js';

export interface SideImage {
  image: string;
  /** The image's locks, outermost base first. */
  chain: Lockfile[];
  /** Only these architectures (a provenance names the platforms that were built). */
  platforms?: string[];
}

export interface DiffSide {
  /** What the user named. */
  label: string;
  kind: 'lockfile' | 'image' | 'images' | 'layout' | 'provenance' | 'registry' | 'locks';
  images: SideImage[];
  warnings: string[];
}

export interface ReadSideOptions extends RegistryOptions {
  /** The publisher's key: verifies a registry image's provenance attestation (required for one). */
  publicKey?: KeyObject;
}

const BASE_DEPTH_MAX = 16;
const FILE_CAP = 64 * 1024 * 1024;

async function readCapped(path: string, what: string): Promise<Buffer> {
  // A side is named by the user (or planted as a base.lock path in a hostile lock): a FIFO or a device
  // is refused unread, not waited on or read without end (util/regular-file.ts).
  try {
    return await readRegularFile(path, FILE_CAP);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new DistillError('LOCK_NOT_FOUND', `no ${what} at ${path}`, { cause: e, hint: 'name a lockfile, an image directory, an OCI layout or a registry image' });
    throw new DistillError('LOCK_INVALID', `cannot read the ${what} ${path}: ${messageOf(e)}`, { cause: e, hint: 'name a lockfile, an image directory, an OCI layout or a registry image' });
  }
}

/** A lock and the bases its `base.lock` paths lead to (a missing or changed base is noted, not fatal). */
async function lockChain(lockPath: string, warnings: string[]): Promise<Lockfile[]> {
  const chain: Lockfile[] = [parseLock(await readCapped(lockPath, 'lockfile'), lockPath)];
  const seen = new Set([resolve(lockPath)]);
  let at = resolve(lockPath);
  for (let i = 0; i < BASE_DEPTH_MAX; i++) {
    const base = chain[0]!.base;
    if (base === undefined) return chain;
    const next = resolve(dirname(at), base.lock);
    if (seen.has(next)) throw new DistillError('LOCK_INVALID', `${at}: its base chain loops back to ${next}`);
    seen.add(next);
    if (!existsSync(next)) {
      warnings.push(`${chain[0]!.image}: the lock of its base image ${base.image} is not at ${next}; the base's packages are left out`);
      return chain;
    }
    const bytes = await readCapped(next, 'lockfile');
    if (sha256Hex(bytes) !== base.sha256) warnings.push(`${chain[0]!.image}: the lock of its base image ${base.image} changed since it was locked (${next}); the current one is used`);
    chain.unshift(parseLock(bytes, next));
    at = next;
  }
  throw new DistillError('LOCK_INVALID', `${lockPath}: more than ${BASE_DEPTH_MAX} base images`);
}

function fromProvenance(statement: unknown, what: string): SideImage {
  const st = checkProvenance(statement);
  const ext = st.predicate.buildDefinition.externalParameters;
  const chain = ext.locks.map((l, i) => parseLock(l.content, `${what}: provenance lock ${i} (${l.image})`));
  return { image: ext.image, chain, platforms: [...ext.platforms] };
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new DistillError('LOCK_INVALID', `${what}: not JSON (neither a lockfile nor a provenance statement): ${messageOf(e)}`, {
      cause: e,
      hint: 'name an image.lock.json, an image directory, an OCI layout, or a provenance.intoto.json',
    });
  }
}

/**
 * A layout named through its source (`oci:DIR[:REF]`, `DIR:REF`): its provenance, checked against
 * what the layout really holds — a ref whose digest the (unsigned) provenance does not name is
 * reported, since then the locks may not be what the image was built from.
 */
async function layoutSide(spec: string, dir: string, ref: string | undefined): Promise<DiffSide> {
  const warnings: string[] = [];
  const prov = join(dir, ATTESTATIONS_DIR, PROVENANCE_FILE);
  if (!existsSync(prov)) {
    throw new DistillError('PROVENANCE_INVALID', `${dir} is an OCI layout without ${ATTESTATIONS_DIR}/${PROVENANCE_FILE}`, {
      hint: 'diff a layout written by distill build --out, or the image through its registry with --key',
    });
  }
  const statement = parseJson(await readCapped(prov, 'provenance'), prov);
  const side = fromProvenance(statement, prov);
  const named = new Set(checkProvenance(statement).subject.map((x) => `sha256:${x.digest.sha256}`));
  const refs = ref !== undefined ? [ref] : (await layoutRefs(dir)).filter((r) => !/^sha256-[0-9a-f]{64}/.test(r));
  for (const r of refs) {
    const s = await openSource({ transport: 'oci', dir, ref: r });
    if (!named.has(s.digest)) warnings.push(`${s.name} is ${s.digest}, which its provenance does not name: the locks may not be what it was built from`);
  }
  return { label: spec, kind: 'layout', images: [side], warnings };
}

/**
 * Reads one side. `spec` is a path, a registry reference (`docker://` forces one), or an image
 * named through its source (`oci:DIR[:REF]`, `DIR:REF`); an image archive carries no provenance.
 */
export async function readSide(spec: string, opts: ReadSideOptions = {}): Promise<DiffSide> {
  if (!existsSync(spec) && (hasTransport(spec) || /:[^/]+$/.test(spec)) && !spec.startsWith('docker://')) {
    const src = parseSourceSpec(spec);
    if (src.transport === 'oci' && existsSync(join(src.dir, 'index.json'))) return layoutSide(spec, src.dir, src.ref);
    if (src.transport !== 'docker' && src.transport !== 'oci') {
      throw new DistillError('USAGE', `${spec} is an image archive, which carries no provenance to read locks from`, {
        hint: 'diff the layout built beside it (distill build --out), its provenance.intoto.json, or the image in its registry with --key',
      });
    }
  }
  const warnings: string[] = [];
  const forced = spec.startsWith('docker://');
  const ref = forced ? spec.slice('docker://'.length) : spec;
  if (!forced && existsSync(spec)) {
    const p = resolve(spec);
    const st = statSync(p);
    if (!st.isFile() && !st.isDirectory()) throw new DistillError('LOCK_INVALID', `${spec} is neither a file nor a directory`, { hint: 'name a lockfile, an image directory, images/, an OCI layout, or a registry image' });
    if (st.isFile()) {
      if (basename(p) === 'image.yaml') return { label: spec, kind: 'image', images: [await imageAt(join(dirname(p), LOCK_NAME), warnings)], warnings };
      const bytes = await readCapped(p, 'lockfile or provenance');
      const v = parseJson(bytes, p) as { lockfileVersion?: unknown; predicateType?: unknown } | null;
      if (v !== null && typeof v === 'object' && 'predicateType' in v) return { label: spec, kind: 'provenance', images: [fromProvenance(v, p)], warnings };
      return { label: spec, kind: 'lockfile', images: [await imageAt(p, warnings)], warnings };
    }
    if (existsSync(join(p, LOCK_NAME))) return { label: spec, kind: 'image', images: [await imageAt(join(p, LOCK_NAME), warnings)], warnings };
    if (existsSync(join(p, 'oci-layout')) || existsSync(join(p, 'index.json'))) return layoutSide(spec, p, undefined);
    const dirs = (await readdir(p, { withFileTypes: true })).filter((d) => d.isDirectory() && existsSync(join(p, d.name, LOCK_NAME))).map((d) => d.name).sort();
    if (dirs.length === 0) {
      throw new DistillError('LOCK_NOT_FOUND', `${spec} holds no ${LOCK_NAME}, no OCI layout and no image directories with locks`, {
        hint: 'name a lockfile, an image directory, images/, an OCI layout from distill build --out, or a registry image',
      });
    }
    const images: SideImage[] = [];
    for (const d of dirs) images.push(await imageAt(join(p, d, LOCK_NAME), warnings));
    return { label: spec, kind: 'images', images, warnings };
  }
  // Not on disk: a registry reference — unless it looks like a path (no tag or digest, or path-like).
  if (!forced && (spec.startsWith('.') || spec.startsWith('/') || /\.(json|yaml)$/.test(spec) || (opts.publicKey === undefined && !/[:@]/.test(spec)))) {
    throw new DistillError('LOCK_NOT_FOUND', `${spec} does not exist`, { hint: 'name a lockfile, an image directory, an OCI layout, or a registry image as docker://REFERENCE with --key' });
  }
  if (opts.publicKey === undefined) {
    throw new DistillError('USAGE', `${spec} is a registry image: its provenance is read only when it verifies against the publisher's key`, {
      hint: 'pass --key cosign.pub (or name a local lockfile, image directory or layout)',
    });
  }
  const verified = await verifyAttestation(ref, { ...opts, publicKey: opts.publicKey, predicateType: SLSA_PROVENANCE_V1 });
  const statement = verified.statements[verified.statements.length - 1];
  if (statement === undefined) throw new DistillError('ATTESTATION_NONE', `${spec} has no verified provenance about ${verified.digest}`, { hint: 'build and push with --sign-key to attach one' });
  return { label: spec, kind: 'registry', images: [fromProvenance(statement, `${spec}@${verified.digest}`)], warnings };
}

async function imageAt(lockPath: string, warnings: string[]): Promise<SideImage> {
  const chain = await lockChain(lockPath, warnings);
  return { image: chain[chain.length - 1]!.image, chain };
}
