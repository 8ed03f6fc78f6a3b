// Node preload for the MCP Inspector CLI 0.15.0, whose CLI has no option for request headers.
// Adds "Authorization: Bearer $MCP_BEARER_TOKEN" to every fetch() whose origin is that of
// $MCP_BEARER_ORIGIN, and to nothing else. Use: NODE_OPTIONS="--require /path/to/this/file".
"use strict";

const token = process.env.MCP_BEARER_TOKEN;
const origin = process.env.MCP_BEARER_ORIGIN;

if (token && origin && typeof globalThis.fetch === "function") {
  const target = new URL(origin).origin;
  const originalFetch = globalThis.fetch;
  globalThis.fetch = (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.origin !== target) {
      return originalFetch(input, init);
    }
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    headers.set("Authorization", `Bearer ${token}`);
    return originalFetch(input, { ...init, headers });
  };
}
