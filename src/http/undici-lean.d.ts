// The three undici files src/http/undici.ts loads by path (undici ships no types for them; it checks
// what they export before use).
declare module 'undici/lib/dispatcher/agent.js' {
  const agent: unknown;
  export default agent;
}
declare module 'undici/lib/api/api-request.js' {
  const request: unknown;
  export default request;
}
declare module 'undici/lib/global.js' {
  const global: unknown;
  export default global;
}
