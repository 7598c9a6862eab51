// Which web pages may use the server from a browser. Without an API key (the default) a local
// server is otherwise open to any site the user visits: its scripts can POST to
// http://127.0.0.1:8080 (ollama closes the same hole with OLLAMA_ORIGINS). So a request that
// carries an Origin header is served only when that origin is allowed: loopback pages (any
// port), the origins given with --cors (or any, with '*'), and the server's own page when it is
// reached by IP address. Requests without an Origin header (curl, SDKs, servers) are not from a
// browser page, or are same-origin GETs, and are served as before.
import type * as http from 'node:http';
import { QwenError, quote } from '../errors.js';
import { ApiError } from './errors.js';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export interface OriginPolicy {
  /** the CORS headers for this request, or a 403 ApiError when its origin is not allowed */
  check(req: http.IncomingMessage): Record<string, string>;
  /** the answer to a preflight (OPTIONS) request from an allowed origin */
  preflight(req: http.IncomingMessage): Record<string, string>;
}

/** `cors`: origins ('https://app.example.com') or '*'; loopback origins are always allowed. */
export function originPolicy(cors: readonly string[] = []): OriginPolicy {
  const any = cors.includes('*');
  const listed = new Set(cors.filter((o) => o !== '*').map(normalizeOrigin));

  function allowed(origin: string, host: string | undefined): boolean {
    if (any) return true;
    let u: URL;
    try {
      u = new URL(origin);
    } catch {
      return false; // 'null' (sandboxed frames, file: pages) and anything unparsable
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
    if (LOOPBACK_HOSTS.has(u.hostname) || listed.has(u.origin)) return true;
    // The chat page at / talks to its own server. Same-origin by the Host header is trusted only
    // for an IP address: a hostname could be an attacker's, re-pointed at this machine (DNS
    // rebinding), for which Origin and Host match too.
    return host !== undefined && u.host === host.toLowerCase() && isIpHost(u.hostname);
  }

  function check(req: http.IncomingMessage): Record<string, string> {
    const origin = req.headers.origin;
    if (origin === undefined) return {};
    if (!allowed(origin, req.headers.host)) {
      throw new ApiError(
        403,
        `cross-origin requests from ${quote(origin, 200)} are not allowed; only loopback origins are, unless the server is started with --cors ORIGIN (or the cors option)`,
        null,
        'origin_not_allowed',
      );
    }
    return { 'Access-Control-Allow-Origin': any ? '*' : origin, Vary: 'Origin' };
  }

  function preflight(req: http.IncomingMessage): Record<string, string> {
    const h = check(req);
    if (req.headers.origin === undefined) return { Allow: 'GET, POST, OPTIONS' };
    // browser SDKs (the openai client's x-stainless-* headers) ask for more than the two we read
    const asked = req.headers['access-control-request-headers'];
    return { ...h, 'Access-Control-Allow-Methods': 'GET, POST, OPTIONS', 'Access-Control-Allow-Headers': asked || 'Authorization, Content-Type', 'Access-Control-Max-Age': '600' };
  }

  return { check, preflight };
}

function normalizeOrigin(o: string): string {
  let u: URL | undefined;
  try {
    u = new URL(o);
  } catch {
    /* below */
  }
  // scheme://host[:port][/] and nothing more (a browser's Origin header never has a path)
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.pathname !== '/' || /[?#@]|:\/\/.*\/./.test(o)) {
    throw new QwenError(`--cors: ${quote(o)} is not an origin like https://app.example.com or http://localhost:3000 (scheme, host and port only), or '*'`);
  }
  return u.origin;
}

const isIpHost = (h: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(h) || h.startsWith('[');

/** JSON POST endpoints take only application/json: a browser page can send text/plain bodies anywhere without a preflight. */
export function requireJson(req: http.IncomingMessage): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new ApiError(415, `the Content-Type header must be application/json, got ${quote(req.headers['content-type'] ?? '(none)', 100)}`, null, 'unsupported_media_type');
  }
}
