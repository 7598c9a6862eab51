// The OpenAI-compatible HTTP server (node:http): /v1/models, /v1/chat/completions (SSE or not,
// tools, response_format, logprobs, reasoning_content, n choices), /v1/completions, /v1/responses,
// /health, /metrics, and the chat page at /. Every request runs through the model's scheduler, so
// concurrent requests are batched; a client that disconnects stops its generation. Browser pages
// from other origins are refused unless allowed (cors.ts); prompts that cannot fit are refused
// before the costly template rendering and tokenisation (limits.ts). Each endpoint is its own module.
import * as http from 'node:http';
import type { ChatModel } from '../chat/engine.js';
import { trackRequest } from './access_log.js';
import { chatCompletions, completions } from './chat_completions.js';
import type { Handler, ServerContext } from './context.js';
import { originPolicy, requireJson } from './cors.js';
import { embeddings, reranking } from './embeddings.js';
import { ApiError } from './errors.js';
import { json, readBody, sendError } from './http.js';
import { maxTokenBytes } from './limits.js';
import { Metrics, METRICS_CONTENT_TYPE } from './metrics.js';
import { getModel, listModels } from './models.js';
import { ResponseStore } from './response_store.js';
import { createResponse, storedResponse } from './responses.js';
import { PAGE_HTML } from './page/page.js';
import type { ImageFetchOptions } from './images.js';

export interface ServerOptions {
  apiKey?: string;
  /** largest request body accepted (default 8 MiB) */
  maxBodyBytes?: number;
  /**
   * Browser origins allowed besides loopback ones (http(s)://localhost, 127.0.0.1, [::1], any
   * port), e.g. 'https://app.example.com'; '*' allows every origin. Requests from other origins
   * get a 403; requests without an Origin header (not from a web page) are unaffected.
   */
  cors?: readonly string[];
  /**
   * One line per request (method, path, status, prompt / cached / completion tokens, wall time):
   * true (default) writes it to stderr, false writes none, a function receives each line.
   */
  accessLog?: boolean | ((line: string) => void);
  /** /v1/responses answers kept in memory for previous_response_id (least recently used dropped; default 1000) */
  responseStoreSize?: number;
  /** and the most JSON they may take together (default 256 MiB) */
  responseStoreBytes?: number;
  /** image parts' URLs: remote ones fetched or not (serve --no-remote-images), byte / time / redirect limits */
  images?: ImageFetchOptions;
}

const POSTS = new Map<string, Handler>([
  ['/v1/chat/completions', chatCompletions],
  ['/v1/completions', completions],
  ['/v1/responses', createResponse],
  ['/v1/embeddings', embeddings],
  ['/v1/rerank', reranking],
]);
const KNOWN = ['/', '/health', '/metrics', '/v1/models', ...POSTS.keys()];

export function createServer(cm: ChatModel, opts: ServerOptions = {}): http.Server {
  const limit = opts.maxBodyBytes ?? 8 << 20;
  const origins = originPolicy(opts.cors); // throws on a malformed origin, before listening
  const size = opts.responseStoreSize ?? 1000,
    bytes = opts.responseStoreBytes ?? 256 << 20;
  if (!Number.isInteger(size) || size < 0) throw new Error(`responseStoreSize must be a whole number >= 0, got ${size}`);
  if (!Number.isInteger(bytes) || bytes < 0) throw new Error(`responseStoreBytes must be a whole number >= 0, got ${bytes}`);
  const ctx: ServerContext = { cm, tokenBytes: maxTokenBytes(cm.tokenizer), store: new ResponseStore(size, bytes), created: Math.floor(Date.now() / 1000), images: opts.images };
  const metrics = new Metrics();
  const log = opts.accessLog === false ? undefined : typeof opts.accessLog === 'function' ? opts.accessLog : (line: string) => void process.stderr.write(`${line}\n`);
  return http.createServer((req, res) => {
    trackRequest(req, res, metrics, KNOWN, log);
    handle(req, res).catch((e: unknown) => sendError(res, e));
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      throw new ApiError(400, `invalid request target '${req.url}'`, null, 'invalid_url');
    }
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const route = `${req.method} ${path}`;
    // before anything runs: a page from a foreign origin gets a 403 (preflight included) and no CORS headers
    if (req.method === 'OPTIONS') return void res.writeHead(204, origins.preflight(req)).end();
    for (const [k, v] of Object.entries(origins.check(req))) res.setHeader(k, v);
    if (route === 'GET /') return void res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE_HTML);
    if (route === 'GET /health') return json(res, 200, { status: 'ok', model: cm.name, active_requests: cm.scheduler.load });
    if ((path.startsWith('/v1/') || path === '/metrics') && opts.apiKey !== undefined) {
      const auth = req.headers.authorization ?? '';
      if (auth !== `Bearer ${opts.apiKey}`) throw new ApiError(401, 'Incorrect API key provided', null, 'invalid_api_key');
    }
    if (route === 'GET /metrics') return void res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE }).end(metrics.render(cm.scheduler));
    if (route === 'GET /v1/models') return listModels(ctx, res);
    const post = POSTS.get(path);
    if (req.method === 'POST' && post) {
      requireJson(req);
      return post(ctx, await readBody(req, limit, cm.name, cm.adapters), req, res);
    }
    if (path.startsWith('/v1/models/') && req.method === 'GET') return getModel(ctx, path.slice('/v1/models/'.length), res);
    const stored = /^\/v1\/responses\/([^/]+)$/.exec(path);
    if (stored && (req.method === 'GET' || req.method === 'DELETE')) return storedResponse(ctx, req.method, stored[1]!, res);
    if (KNOWN.includes(path) || path.startsWith('/v1/models/') || stored) {
      throw new ApiError(405, `${req.method} is not allowed on ${url.pathname}`, null, 'method_not_allowed');
    }
    throw new ApiError(404, `no route ${req.method} ${url.pathname}`, null, 'not_found');
  }
}
