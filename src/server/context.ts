// What every endpoint handler is given: the model, and the server's state shared between requests.
import type * as http from 'node:http';
import type { ChatModel, ChatResult } from '../chat/engine.js';
import type { ResponseStore } from './response_store.js';
import type { ImageFetchOptions } from './images.js';
import type { Obj } from './http.js';

export interface ServerContext {
  cm: ChatModel;
  /** the longest token in bytes (limits.ts: prompts that cannot fit are refused early) */
  tokenBytes: number;
  /** stored /v1/responses answers, for previous_response_id and GET /v1/responses/{id} */
  store: ResponseStore;
  /** when the server started (the models' `created`) */
  created: number;
  /** how image URLs are fetched (ServerOptions.images) */
  images?: ImageFetchOptions;
}

export type Handler = (ctx: ServerContext, body: Obj, req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;

/**
 * A request's tokens over its n generations: the prompt once (the choices share it), the cached
 * part the fewest any choice reused, the completions summed.
 */
export function totalUsage(rs: readonly ChatResult[]): { promptTokens: number; cachedTokens: number; completionTokens: number } {
  return {
    promptTokens: rs[0]?.promptTokens ?? 0,
    cachedTokens: rs.length ? Math.min(...rs.map((r) => r.cachedTokens ?? 0)) : 0,
    completionTokens: rs.reduce((s, r) => s + r.completionTokens, 0),
  };
}

/**
 * Runs n generations at once (each its own sequence in the scheduler, so they batch together); the
 * first to fail stops the others, and its error is thrown.
 */
export async function runChoices<R>(n: number, signal: AbortSignal, run: (i: number, signal: AbortSignal) => Promise<R>): Promise<R[]> {
  if (n === 1) return [await run(0, signal)];
  const stop = new AbortController();
  const both = AbortSignal.any([signal, stop.signal]);
  const settled = await Promise.allSettled(
    Array.from({ length: n }, (_, i) =>
      run(i, both).catch((e: unknown) => {
        stop.abort();
        throw e;
      }),
    ),
  );
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<R>).value);
}

/** Choice i's seed: seed + i, so n seeded choices differ and each is reproducible. */
export const choiceSeed = (seed: number | undefined, i: number) => (seed === undefined ? undefined : seed + i);
