// undici, loaded on first use: importing it costs ~0.1 s of CPU at every start, and most commands
// (a build from the cache or a file:// mirror, lock --check, diff of two locks) never open a socket.
//
// And only the part we use: the Agent (its pool, with the redirect interceptor) and the `request`
// API. undici's index also compiles fetch, WebSocket, the cache API, cookies, the mock agents and
// the proxy agents — measured on Node 20: require('undici') + new Agent() 78 ms of CPU, these
// three modules 33 ms — which every `distill copy` / `push` / `pull` paid before its first request.
// undici has no "exports" map, so these paths are its public files; should a release move them, the
// full index is loaded instead (same classes, same behaviour). The paths are string literals in
// import() (not a createRequire'd require) so that the CLI's bundle (tools/bundle.mjs) carries these
// files inside it and leaves the full index outside.
import type * as Undici from 'undici';

export type UndiciApi = Pick<typeof Undici, 'Agent' | 'request'>;

let loading: Promise<UndiciApi> | undefined;

export function undici(): Promise<UndiciApi> {
  return (loading ??= lean().catch(() => import('undici')));
}

type DispatcherLike = Undici.Dispatcher;

async function lean(): Promise<UndiciApi> {
  const [agent, api, global] = await Promise.all([
    import('undici/lib/dispatcher/agent.js'),
    import('undici/lib/api/api-request.js'),
    import('undici/lib/global.js'),
  ]);
  const Agent = agent.default as typeof Undici.Agent;
  const apiRequest = api.default as (this: DispatcherLike, opts: Undici.Dispatcher.RequestOptions) => Promise<Undici.Dispatcher.ResponseData>;
  const { getGlobalDispatcher } = global.default as { getGlobalDispatcher: () => DispatcherLike };
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
