// Image references (`name[:tag][@digest]`), parsed and normalised as docker and containers/image do:
// the grammar of distribution's reference package (reference/regexp.go) with the normalisation of
// containers/image's docker/reference (ParseNormalizedNamed, SplitDockerDomain): a bare name is on
// docker.io under library/, `index.docker.io` means `docker.io`, and the first component is a
// registry only when it contains '.' or ':' or is `localhost`. Only sha256 digests are accepted:
// nothing else in distill can check another algorithm.
import { DistillError } from '../errors.js';

export interface ImageReference {
  /** The registry as written in references: 'docker.io' for Docker Hub, else host[:port]. */
  readonly registry: string;
  /** The repository path on that registry, e.g. 'library/debian'. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
  /** `registry/repository[:tag][@digest]`, fully qualified. */
  toString(): string;
}

export const DOCKER_HUB = 'docker.io';
/** Where Docker Hub's registry API answers (docker.io itself does not). */
export const DOCKER_HUB_API = 'registry-1.docker.io';
const LEGACY_DOCKER_HUB = 'index.docker.io';
/** distribution's NameTotalLengthMax: registry + '/' + repository. */
const NAME_MAX = 255;

// distribution/reference/regexp.go, anchored.
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
// Newer distribution also accepts a bracketed IPv6 address: [::1]:5000.
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const DOMAIN = new RegExp(`^(?:${DOMAIN_NAME}|${IPV6})(?::[0-9]+)?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HEX64 = /^[a-f0-9]{64}$/;

/** Parse and normalise a reference; REFERENCE_INVALID says what is wrong with it. */
export function parseReference(input: string): ImageReference {
  if (typeof input !== 'string' || input === '') throw bad(input, 'it is empty');
  if (HEX64.test(input)) throw bad(input, 'a 64-character hexadecimal string is an image ID, not a repository name');

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) {
      throw bad(input, `${JSON.stringify(digest)} is not a digest`, 'write digests as sha256: followed by 64 lower-case hex digits');
    }
  }

  const { registry, remainder } = splitRegistry(rest);
  // The tag is what follows the last ':' after the last '/' (a ':' before it is a registry port).
  let repository = remainder;
  let tag: string | undefined;
  const colon = remainder.lastIndexOf(':');
  if (colon > remainder.lastIndexOf('/')) {
    tag = remainder.slice(colon + 1);
    repository = remainder.slice(0, colon);
    if (!TAG.test(tag)) {
      throw bad(input, `${JSON.stringify(tag)} is not a tag`, 'tags are up to 128 letters, digits, _ . and -, not starting with . or -');
    }
  }

  if (repository === '') throw bad(input, 'the repository name is missing');
  if (repository !== repository.toLowerCase()) {
    throw bad(input, `the repository name ${JSON.stringify(repository)} must be lower case`, `use ${repository.toLowerCase()}`);
  }
  for (const c of repository.split('/')) {
    if (!PATH_COMPONENT.test(c)) {
      throw bad(
        input,
        c === '' ? 'it has an empty path component' : `${JSON.stringify(c)} is not a valid repository path component`,
        'components are lower-case letters and digits, separated by one . or _, two _, or any number of -',
      );
    }
  }
  if (!DOMAIN.test(registry)) throw bad(input, `${JSON.stringify(registry)} is not a registry host`);
  if (registry.length + 1 + repository.length > NAME_MAX) throw bad(input, `the name is longer than ${NAME_MAX} characters`);

  return makeReference(registry, repository, tag, digest);
}

/** The same repository with another tag or digest (undefined drops it). */
export function withTagAndDigest(ref: ImageReference, tag: string | undefined, digest: string | undefined): ImageReference {
  if (tag !== undefined && !TAG.test(tag)) throw bad(tag, 'it is not a valid tag', 'tags are up to 128 letters, digits, _ . and -');
  if (digest !== undefined && !DIGEST.test(digest)) throw bad(digest, 'it is not a sha256 digest');
  return makeReference(ref.registry, ref.repository, tag, digest);
}

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** The host (and port) whose /v2/ API serves `registry`. */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}

function makeReference(registry: string, repository: string, tag: string | undefined, digest: string | undefined): ImageReference {
  const text = `${registry}/${repository}${tag === undefined ? '' : `:${tag}`}${digest === undefined ? '' : `@${digest}`}`;
  return Object.freeze({
    registry,
    repository,
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
    toString: () => text,
  });
}

/** containers/image's SplitDockerDomain. */
function splitRegistry(name: string): { registry: string; remainder: string } {
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  let registry: string;
  let remainder: string;
  if (slash < 0 || (!/[.:]/.test(first) && first !== 'localhost')) {
    registry = DOCKER_HUB;
    remainder = name;
  } else {
    registry = first;
    remainder = name.slice(slash + 1);
  }
  if (registry === LEGACY_DOCKER_HUB) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !remainder.includes('/')) remainder = `library/${remainder}`;
  return { registry, remainder };
}

function bad(input: unknown, why: string, hint = 'write references as [registry/]repository[:tag][@sha256:digest], e.g. 127.0.0.1:5000/distill/static:latest'): DistillError {
  // The input is echoed as JSON so control characters in it cannot spoof the terminal.
  return new DistillError('REFERENCE_INVALID', `invalid image reference ${JSON.stringify(input)}: ${why}`, { hint });
}
