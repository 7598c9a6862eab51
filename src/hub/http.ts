// HTTP for the hubs on Node's built-in fetch: redirects followed by hand (so credentials never go to
// another host, and the hub's own headers on a redirect to a CDN can be read), timeouts on headers and
// on an idle body, and a split between transient failures (retried with backoff) and final answers.
import { fail, QwenError } from '../errors.js';

export interface NetOptions {
  /** retries after the first attempt, for transient failures */
  retries: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** wait this long for response headers */
  timeoutMs: number;
  /** give up on a body that sends nothing for this long */
  idleMs: number;
}

export const DEFAULT_NET: NetOptions = { retries: 5, retryBaseMs: 500, retryMaxMs: 10_000, timeoutMs: 30_000, idleMs: 60_000 };

export const USER_AGENT = 'qwen-ts/0.1 (+node)';

/** A failure worth retrying: lost connection, timeout, 429 or 5xx. */
export class TransientError extends Error {
  constructor(message: string, readonly retryAfterMs?: number) {
    super(message);
  }
}

/** A final, non-2xx answer; the hub module turns it into a message for the user. */
export class HttpStatusError extends Error {
  constructor(readonly url: string, readonly status: number, readonly headers: Headers, readonly body: string) {
    super(`HTTP ${status} from ${url}`);
  }
}

export interface Hop { url: string; status: number; headers: Headers }

export interface Opened {
  res: Response;
  url: string;
  /** every response on the way, the final one last */
  hops: Hop[];
  abort(): void;
}

export interface OpenInit {
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  /** headers sent only to this origin (the hub), never to a redirect target elsewhere */
  authHeaders?: Record<string, string>;
  /** stop at a redirect to another origin (to read the hub's metadata without touching the CDN) */
  stopAtCrossOrigin?: boolean;
}

const CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused', ECONNRESET: 'connection reset', UND_ERR_SOCKET: 'connection closed by the server',
  ETIMEDOUT: 'timed out', UND_ERR_CONNECT_TIMEOUT: 'connect timed out', EPIPE: 'connection closed', EAI_AGAIN: 'DNS lookup failed',
};

function causeText(e: unknown): string {
  const c = (e as { cause?: { code?: string; message?: string } }).cause;
  const code = c?.code;
  if (code) return CAUSES[code] ? `${CAUSES[code]}, ${code}` : code;
  return c?.message ?? (e as Error).message;
}

function retryAfter(h: Headers): number | undefined {
  const v = h.get('retry-after');
  if (!v) return undefined;
  const s = Number(v);
  if (Number.isFinite(s)) return Math.min(s * 1000, 60_000);
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, Math.min(t - Date.now(), 60_000)) : undefined;
}

/** One request, redirects included; transient failures throw TransientError, other non-2xx HttpStatusError. */
export async function open(url: string, init: OpenInit, net: NetOptions): Promise<Opened> {
  const origin = new URL(url).origin;
  const hops: Hop[] = [];
  let cur = url;
  for (let hop = 0; hop < 10; hop++) {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error(`no response in ${net.timeoutMs} ms`)), net.timeoutMs);
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, 'accept-encoding': 'identity', ...init.headers };
    if (new URL(cur).origin === origin) Object.assign(headers, init.authHeaders);
    let res: Response;
    try {
      res = await fetch(cur, { method: init.method ?? 'GET', headers, redirect: 'manual', signal: ac.signal });
    } catch (e) {
      clearTimeout(timer);
      const why = ac.signal.aborted ? `no response in ${net.timeoutMs} ms` : causeText(e);
      if (/ENOTFOUND/.test(why)) fail(`cannot resolve the host of ${new URL(cur).origin} (${why}): check the address and your network`);
      throw new TransientError(`${new URL(cur).host}: ${why}`);
    }
    clearTimeout(timer);
    hops.push({ url: cur, status: res.status, headers: res.headers });
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      const next = new URL(res.headers.get('location')!, cur).href;
      if (init.stopAtCrossOrigin && new URL(next).origin !== origin) return { res, url: cur, hops, abort: () => ac.abort() };
      await res.body?.cancel().catch(() => {});
      cur = next;
      continue;
    }
    if (res.ok || res.status === 416) return { res, url: cur, hops, abort: () => ac.abort(new Error(`no data for ${net.idleMs} ms`)) };
    const body = await res.text().catch(() => '');
    if (res.status === 429 || res.status >= 500) throw new TransientError(`HTTP ${res.status} from ${new URL(cur).host}`, retryAfter(res.headers));
    throw new HttpStatusError(cur, res.status, res.headers, body.slice(0, 2000));
  }
  fail(`${url}: more than 10 redirects`);
}

/** Read a body chunk by chunk; a stalled or cut connection throws TransientError, `onChunk`'s errors pass through. */
export async function pump(o: Opened, idleMs: number, onChunk: (c: Uint8Array) => Promise<void> | void): Promise<void> {
  if (!o.res.body) return;
  const reader = o.res.body.getReader();
  let idle: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => o.abort(), idleMs);
  };
  try {
    for (;;) {
      arm();
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        throw new TransientError(`the connection to ${new URL(o.url).host} was cut (${causeText(e)})`);
      }
      if (r.done) return;
      await onChunk(r.value);
    }
  } finally {
    clearTimeout(idle);
    reader.cancel().catch(() => {});
  }
}

export function backoffMs(attempt: number, net: NetOptions, hint?: number): number {
  if (hint !== undefined) return Math.min(hint, net.retryMaxMs * 6);
  const d = Math.min(net.retryMaxMs, net.retryBaseMs * 2 ** attempt);
  return d / 2 + Math.random() * (d / 2); // jitter, so concurrent clients do not retry in step
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run `fn`, retrying TransientErrors with exponential backoff; the last failure becomes a QwenError. */
export async function withRetry<T>(what: string, net: NetOptions, fn: (attempt: number) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (!(e instanceof TransientError)) throw e;
      if (attempt >= net.retries) throw new QwenError(`${what}: ${e.message} (gave up after ${attempt + 1} attempt${attempt ? 's' : ''})`);
      await sleep(backoffMs(attempt, net, e.retryAfterMs));
    }
  }
}

/** GET a JSON document with retries. */
export async function getJson(url: string, init: OpenInit, net: NetOptions, what: string): Promise<{ json: unknown; headers: Headers }> {
  return withRetry(what, net, async () => {
    const o = await open(url, init, net);
    const chunks: Uint8Array[] = [];
    await pump(o, net.idleMs, (c) => void chunks.push(c));
    const text = Buffer.concat(chunks).toString('utf8');
    try {
      return { json: JSON.parse(text), headers: o.res.headers };
    } catch {
      fail(`${what}: ${url} did not answer with JSON (got ${JSON.stringify(text.slice(0, 80))})`);
    }
  });
}
