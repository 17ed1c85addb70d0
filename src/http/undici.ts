// undici, loaded on first use: importing it costs ~0.1 s of CPU at every start, and most commands
// (a build from the cache or a file:// mirror, lock --check, diff of two locks) never open a socket.
//
// And only the part we use: the Agent (its pool, with the redirect interceptor) and the `request`
// API. undici's index also compiles fetch, WebSocket, the cache API, cookies, the mock agents and
// the proxy agents — measured on Node 20: require('undici') + new Agent() 78 ms of CPU, these
// three modules 33 ms — which every `distill copy` / `push` / `pull` paid before its first request.
// undici has no "exports" map, so these paths are its public files; should a release move them, the
// full index is loaded instead (same classes, same behaviour).
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

export type UndiciApi = Pick<typeof Undici, 'Agent' | 'request'>;

let loading: Promise<UndiciApi> | undefined;

export function undici(): Promise<UndiciApi> {
  return (loading ??= Promise.resolve().then(() => {
    try {
      return lean();
    } catch {
      return import('undici');
    }
  }));
}

type DispatcherLike = Undici.Dispatcher;

function lean(): UndiciApi {
  const require = createRequire(import.meta.url);
  const Agent = require('undici/lib/dispatcher/agent') as typeof Undici.Agent;
  const apiRequest = require('undici/lib/api/api-request') as (this: DispatcherLike, opts: Undici.Dispatcher.RequestOptions) => Promise<Undici.Dispatcher.ResponseData>;
  const { getGlobalDispatcher } = require('undici/lib/global') as { getGlobalDispatcher: () => DispatcherLike };
  if (typeof Agent !== 'function' || typeof apiRequest !== 'function' || typeof getGlobalDispatcher !== 'function') throw new Error('undici layout changed');
  // What undici's index.js `request(url, opts)` does (makeDispatcher): the URL split into origin and
  // path, the method defaulted, the call made on the dispatcher given (else the global one).
  const request = ((url: string | URL, opts: Record<string, unknown> = {}) => {
    const u = typeof url === 'string' ? new URL(url) : url;
    const { dispatcher = getGlobalDispatcher(), ...rest } = opts as { dispatcher?: DispatcherLike };
    return apiRequest.call(dispatcher, {
      ...(rest as object),
      origin: u.origin,
      path: u.search ? `${u.pathname}${u.search}` : u.pathname,
      method: ((rest as { method?: string }).method ?? ((rest as { body?: unknown }).body ? 'PUT' : 'GET')) as Undici.Dispatcher.HttpMethod,
    } as Undici.Dispatcher.RequestOptions);
  }) as unknown as typeof Undici.request;
  return { Agent, request };
}
