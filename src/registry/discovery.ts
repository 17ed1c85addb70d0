// Content discovery over the OCI distribution spec 1.1 (spec.md "Content discovery"): the tag list
// (paginated by RFC 8288 Link headers, bounded in pages and in bytes per page) and the referrers API.
// Both answers are untrusted registry content: capped, parsed as the shapes the spec names, and a
// next page may not lead to another origin.
import { DistillError } from '../errors.js';
import { MEDIA_TYPE_OCI_INDEX } from './manifests.js';
import { CAPS, DIGEST, type Transport, drain, header, nextLink } from './transport.js';

const TAGS_PAGES_MAX = 1000;

/** Every tag of a repository (following Link pagination, bounded). */
export async function listTags(t: Transport, repository: string): Promise<string[]> {
  const what = `the tags of ${t.registry}/${repository}`;
  const tags: string[] = [];
  let url: URL | undefined = t.url(repository, 'tags', 'list');
  for (let page = 0; url !== undefined; page++) {
    if (page >= TAGS_PAGES_MAX) throw new DistillError('REGISTRY_PROTOCOL', `${what}: more than ${TAGS_PAGES_MAX} pages`);
    const pageUrl: URL = url;
    const { names, next } = await t.retrying(`GET ${what}`, async () => {
      const res = await t.send({ method: 'GET', url: pageUrl, scopes: t.readScopes(repository), what });
      if (res.statusCode !== 200) throw await t.failure(res, what);
      const text = (await t.readBody(res, CAPS.tagsPage, what)).toString('utf8');
      let parsed: { tags?: unknown };
      try {
        parsed = JSON.parse(text) as { tags?: unknown };
      } catch (e) {
        throw new DistillError('REGISTRY_PROTOCOL', `${what}: not JSON`, { cause: e });
      }
      const list = parsed.tags === null || parsed.tags === undefined ? [] : parsed.tags;
      if (!Array.isArray(list) || list.some((x) => typeof x !== 'string')) throw new DistillError('REGISTRY_PROTOCOL', `${what}: "tags" is not a list of strings`);
      return { names: list as string[], next: nextLink(header(res, 'link'), pageUrl, t.base) };
    });
    tags.push(...names);
    url = next;
  }
  return tags;
}

/**
 * GET /v2/<repository>/referrers/<digest> (OCI distribution spec 1.1, "Listing referrers"): the
 * index's bytes, or undefined when the registry has no referrers API (404, as distribution 2.8
 * answers; the caller then reads the `sha256-<hex>` fallback tag). The index is untrusted and capped.
 */
export async function getReferrers(t: Transport, repository: string, digest: string): Promise<Buffer | undefined> {
  if (!DIGEST.test(digest)) throw new DistillError('REFERENCE_INVALID', `${JSON.stringify(digest)} is not a sha256 digest`);
  const what = `the referrers of ${digest} in ${t.registry}/${repository}`;
  const url = t.url(repository, 'referrers', digest);
  return t.retrying(`GET ${what}`, async () => {
    const res = await t.send({ method: 'GET', url, scopes: t.readScopes(repository), headers: { accept: MEDIA_TYPE_OCI_INDEX }, what });
    if (res.statusCode === 404) {
      await drain(res);
      return undefined;
    }
    if (res.statusCode !== 200) throw await t.failure(res, what);
    return t.readBody(res, CAPS.manifest, what);
  });
}
