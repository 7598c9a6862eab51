// HTTP for the hubs on Node's built-in fetch: redirects followed by hand (so credentials never go to
// another host, and the hub's own headers on a redirect to a CDN can be read), timeouts on headers and
// on an idle body, and a split between transient failures (retried with backoff) and final answers.
import { fail, printable, QwenError } from '../errors.js';

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
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** A final, non-2xx answer; the hub module turns it into a message for the user. */
export class HttpStatusError extends Error {
  constructor(
    readonly url: string,
    readonly status: number,
    readonly headers: Headers,
    readonly body: string,
  ) {
    super(`HTTP ${status} from ${url}`);
  }
}

export interface Hop {
  url: string;
  status: number;
  headers: Headers;
}

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
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  UND_ERR_SOCKET: 'connection closed by the server',
  ETIMEDOUT: 'timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  EPIPE: 'connection closed',
  EAI_AGAIN: 'DNS lookup failed',
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

const MAX_REDIRECTS = 10;

/** Whether the hub's credentials go with a request to `cur`: only to the origin the request began at.
 * The origin includes scheme and port, so neither a downgrade to http nor another port gets them. */
export function sendsCredentials(start: string, cur: string): boolean {
  return new URL(cur).origin === new URL(start).origin;
}

function httpUrl(u: string): URL {
  let p: URL;
  try {
    p = new URL(u);
  } catch {
    fail(`${printable(u)} is not a valid URL`);
  }
  // anything else (file:, data:, ...) would either fail in fetch, retried as if transient, or read something that is not the hub
  if (p.protocol !== 'http:' && p.protocol !== 'https:') fail(`${printable(u)} is not an http or https URL`);
  return p;
}

// TLS failures that no retry will fix: the certificate is what it is until someone changes it.
const TLS_FINAL = /^(CERT_|ERR_TLS_CERT|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(GET_ISSUER_CERT|VERIFY_LEAF_SIGNATURE))/;

/** The first `max` bytes of an error answer's body, waiting at most `ms`: a body that never ends must not hang us. */
async function readPrefix(res: Response, max: number, ms: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((r) => {
    timer = setTimeout(() => r(undefined), ms);
  });
  try {
    while (n < max) {
      const r = await Promise.race([reader.read(), late]);
      if (!r || r.done) break;
      chunks.push(r.value);
      n += r.value.length;
    }
  } catch {
    // a cut error body still leaves its status to report
  } finally {
    clearTimeout(timer);
    reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, max).toString('utf8');
}

/** One request, redirects included; transient failures throw TransientError, other non-2xx HttpStatusError. */
export async function open(url: string, init: OpenInit, net: NetOptions): Promise<Opened> {
  const origin = httpUrl(url).origin;
  const hops: Hop[] = [];
  const seen = new Set<string>();
  let cur = url;
  for (;;) {
    seen.add(new URL(cur).href);
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error(`no response in ${net.timeoutMs} ms`)), net.timeoutMs);
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, 'accept-encoding': 'identity', ...init.headers };
    if (sendsCredentials(url, cur)) Object.assign(headers, init.authHeaders);
    let res: Response;
    try {
      res = await fetch(cur, { method: init.method ?? 'GET', headers, redirect: 'manual', signal: ac.signal });
    } catch (e) {
      clearTimeout(timer);
      const why = ac.signal.aborted ? `no response in ${net.timeoutMs} ms` : causeText(e);
      if (/ENOTFOUND/.test(why)) fail(`cannot resolve the host of ${new URL(cur).origin} (${why}): check the address and your network`);
      // a server that does not speak HTTP will not learn to on the next try
      if (/^HPE_/.test(why)) fail(`${new URL(cur).host} sent a malformed HTTP answer (${why})`);
      if (TLS_FINAL.test(why)) fail(`${new URL(cur).host}: its TLS certificate does not verify (${why}); if a proxy re-signs traffic, give its CA to Node in NODE_EXTRA_CA_CERTS`);
      throw new TransientError(`${new URL(cur).host}: ${why}`);
    }
    clearTimeout(timer);
    hops.push({ url: cur, status: res.status, headers: res.headers });
    const location = res.status >= 300 && res.status < 400 ? res.headers.get('location') : null;
    if (location) {
      let target: URL | undefined;
      try {
        target = new URL(location, cur);
      } catch {
        // refused just below, by name
      }
      const next = target?.href ?? location;
      if (target?.protocol !== 'http:' && target?.protocol !== 'https:') {
        await res.body?.cancel().catch(() => {});
        fail(`${new URL(cur).host} redirects ${printable(cur)} to ${printable(next)}: ${target ? 'only http and https are followed' : 'not a valid URL'}`);
      }
      if (init.stopAtCrossOrigin && new URL(next).origin !== origin) return { res, url: cur, hops, abort: () => ac.abort() };
      await res.body?.cancel().catch(() => {});
      // A redirect back to a URL already asked would be answered the same way again: it is a loop, not a detour.
      if (seen.has(next)) fail(`redirect loop: ${printable(cur)} redirects to ${printable(next)}, which was already asked${hops.length > 1 ? ` (starting from ${printable(url)})` : ''}`);
      if (hops.length > MAX_REDIRECTS) fail(`more than ${MAX_REDIRECTS} redirects from ${printable(url)} (the last to ${printable(next)})`);
      cur = next;
      continue;
    }
    if (res.ok || res.status === 416) return { res, url: cur, hops, abort: () => ac.abort(new Error(`no data for ${net.idleMs} ms`)) };
    if (res.status === 429 || res.status >= 500) {
      await res.body?.cancel().catch(() => {});
      throw new TransientError(`HTTP ${res.status} from ${new URL(cur).host}`, retryAfter(res.headers));
    }
    const body = await readPrefix(res, 2000, Math.min(net.idleMs, 10_000));
    ac.abort();
    throw new HttpStatusError(cur, res.status, res.headers, body);
  }
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

/** The largest JSON answer read: a hub's listing of a big repository is a few MB; a bigger one is an attack or a bug. */
export const MAX_JSON_BYTES = 64 << 20;

/** GET a JSON document with retries. A body over MAX_JSON_BYTES, or one still arriving after 10 header
 * timeouts (a server trickling a byte per idle period would otherwise never end), is a final failure. */
export async function getJson(url: string, init: OpenInit, net: NetOptions, what: string): Promise<{ json: unknown; headers: Headers }> {
  return withRetry(what, net, async () => {
    const o = await open(url, init, net);
    const where = printable(o.url);
    const len = Number(o.res.headers.get('content-length') ?? NaN);
    if (len > MAX_JSON_BYTES) {
      o.abort();
      fail(`${what}: ${where} announces ${len} bytes of JSON, more than the ${MAX_JSON_BYTES >> 20} MB a listing may take`);
    }
    const chunks: Uint8Array[] = [];
    let n = 0;
    const deadlineMs = net.timeoutMs * 10;
    let late = false;
    const deadline = setTimeout(() => {
      late = true;
      o.abort();
    }, deadlineMs);
    try {
      await pump(o, net.idleMs, (c) => {
        n += c.length;
        if (n > MAX_JSON_BYTES) fail(`${what}: ${where} sent more than ${MAX_JSON_BYTES >> 20} MB of JSON; refusing to read more`);
        chunks.push(c);
      });
    } catch (e) {
      if (late) fail(`${what}: ${where} did not finish sending its answer in ${deadlineMs / 1000} s (${n} bytes so far)`);
      throw e;
    } finally {
      clearTimeout(deadline);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    try {
      return { json: JSON.parse(text), headers: o.res.headers };
    } catch {
      fail(`${what}: ${where} did not answer with JSON (got ${JSON.stringify(text.slice(0, 80))})`);
    }
  });
}
