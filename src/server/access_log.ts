// One line per request when its connection is done with it: time, method, path, status, the
// tokens its usage object reported (prompt / cached / completion), and wall time; the same request
// is counted in the metrics. Endpoints report their tokens with noteUsage.
import type * as http from 'node:http';
import type { Metrics, Usage } from './metrics.js';

const usages = new WeakMap<http.ServerResponse, Usage>();

/** The request's tokens, as its usage object reports them (undefined cached counts as 0). */
export function noteUsage(res: http.ServerResponse, u: { promptTokens: number; cachedTokens?: number; completionTokens: number }): void {
  usages.set(res, { prompt: u.promptTokens, cached: u.cachedTokens ?? 0, completion: u.completionTokens });
}

/**
 * The metrics label of a path: a served path (`known`) as it is, paths with an id collapsed to one
 * label, others 'other', so a client cannot grow the metrics.
 */
export function endpointLabel(pathname: string, known: readonly string[]): string {
  const p = pathname.replace(/\/+$/, '') || '/';
  if (known.includes(p)) return p;
  if (p.startsWith('/v1/models/')) return '/v1/models/{id}';
  if (/^\/v1\/responses\/[^/]+$/.test(p)) return '/v1/responses/{id}';
  return 'other';
}

/** Watches a request to its end; `log` gets the line (none when undefined); `known`: the served paths. */
export function trackRequest(req: http.IncomingMessage, res: http.ServerResponse, metrics: Metrics, known: readonly string[], log?: (line: string) => void): void {
  const start = performance.now();
  res.once('close', () => {
    const end = performance.now();
    // the client went away before the answer was complete: nginx's 499
    const status = res.writableFinished ? res.statusCode : 499;
    let pathname = '';
    try {
      pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      pathname = (req.url ?? '').replace(/[^\x21-\x7e]/g, '?');
    }
    const u = usages.get(res);
    metrics.record(endpointLabel(pathname, known), status, u, start, end);
    if (!log) return;
    const path = pathname.length > 200 ? `${pathname.slice(0, 200)}...` : pathname;
    log(`${new Date().toISOString()} ${req.method} ${path} ${status} prompt=${u?.prompt ?? 0} cached=${u?.cached ?? 0} completion=${u?.completion ?? 0} ${Math.round(end - start)}ms`);
  });
}
