// Speculative decoding: tokens proposed cheaply (an n-gram lookup in the text so far, or a small
// draft model: spec_draft.ts) are evaluated by the target in one forward pass, a logits row each,
// and the longest prefix the target agrees with is kept, plus one token of the target's own. Rows
// are batch-invariant, so each row is what plain decoding would have computed at that position.
// The verification is the rejection sampling of Leviathan et al. 2023 / Chen et al. 2023: the kept
// tokens follow the target's distribution exactly; greedy, they are exactly its greedy choices.
import type { KvCache } from '../models/kv_cache.js';
import { draw, probability, type Choice, type Rng } from './sampler.js';

/** proposals per step unless told otherwise (--draft-max) */
export const DEFAULT_DRAFT_MAX = 6;

/** a draft stops proposing where its own most likely token has less probability than this (--draft-p-min; llama.cpp's default) */
export const DEFAULT_P_MIN = 0.75;

/**
 * The token at one position of a verify pass. `p`: the target's distribution there; `t`: the
 * proposed token, drawn from `q` (undefined: a point mass at `t`, as for n-gram proposals).
 * `t` is kept with probability min(1, p(t) / q(t)); otherwise the token is drawn from the
 * residual max(0, p - q), normalised. Either way the result is distributed as `p`.
 */
export function verifyToken(p: Choice, t: number, q: Choice | undefined, rng: Rng): { token: number; accepted: boolean } {
  const a = acceptance(p, t, q);
  if (a >= 1 || (a > 0 && rng.next() < a)) return { token: t, accepted: true };
  return { token: draw(residual(p, q ?? pointAt(t)), rng), accepted: false };
}

/** The probability verifyToken keeps proposal `t`: min(1, p(t) / q(t)). */
export function acceptance(p: Choice, t: number, q: Choice | undefined): number {
  const pt = probability(p, t),
    qt = q ? probability(q, t) : 1;
  return qt > 0 ? Math.min(1, pt / qt) : 0;
}

/** max(0, p - q), over p's candidates (unnormalised; p itself where nothing is left, which rounding alone can cause). */
export function residual(p: Choice, q: Choice): Choice {
  if (p.point) return p;
  const qp = new Map<number, number>(q.ids.map((id, j) => [id, q.weights[j]! / q.sum]));
  const ids: number[] = [],
    weights: number[] = [];
  let sum = 0;
  p.ids.forEach((id, j) => {
    const w = p.weights[j]! / p.sum - (qp.get(id) ?? 0);
    if (w > 0) {
      ids.push(id);
      weights.push(w);
      sum += w;
    }
  });
  return sum > 0 ? { ids, weights, sum } : p;
}

const pointAt = (t: number): Choice => ({ ids: [t], weights: [1], sum: 1, point: true });

/**
 * Prompt lookup decoding: the tokens that followed the most recent earlier occurrence of the
 * text's last n tokens (n from `maxN` down to 1), up to `k` of them. A match that runs into the end
 * of the text continues with its own proposal, so a repeating loop is proposed whole.
 */
export function ngramProposal(ctx: readonly number[], k: number, maxN = 3): number[] {
  if (k <= 0) return [];
  for (let n = Math.min(maxN, ctx.length - 1); n >= 1; n--) {
    const tail = ctx.length - n;
    for (let s = tail - 1; s >= 0; s--) {
      let m = 0;
      while (m < n && ctx[s + m] === ctx[tail + m]) m++;
      if (m < n) continue;
      const out: number[] = [];
      for (let i = s + n; out.length < k; i++) out.push(i < ctx.length ? ctx[i]! : out[i - ctx.length]!);
      return out;
    }
  }
  return [];
}

/**
 * Taking speculative tokens back out of a cache. mark() before they enter it; rewind(valid) after
 * the verification keeps the positions that hold the text. Attention layers simply forget the rest;
 * Gated DeltaNet layers (Qwen3.5) summarise every position in a state that cannot be rewound, so
 * mark() copies that state (its whole size, once per verify pass) and rewind() goes back to it: the
 * accepted tokens after the mark are then evaluated again in the next pass (a few more rows there).
 */
export class SpecMark {
  private pos = 0;
  private state?: Float32Array;

  mark(c: KvCache): void {
    this.pos = c.length;
    if (c.recurrent) this.state = c.exportRecurrent(this.state);
  }

  /** Keep positions [0, valid) (valid >= the mark); returns the cache's length after it. */
  rewind(c: KvCache, valid: number): number {
    if (valid >= c.length) return c.length;
    if (c.recurrent) c.restoreTo(this.pos, this.state);
    else c.truncate(valid);
    return c.length;
  }
}
