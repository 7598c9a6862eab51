// A pure, seeded sampler: (logits, history, rng) -> token. The chain follows llama.cpp's default
// order: penalties and logit bias, top-k, top-p, min-p, temperature, then a draw. temperature 0
// is greedy.

export interface SamplerParams {
  temperature?: number; // 0 = greedy (default 1)
  top_k?: number; // 0 = off
  top_p?: number; // 1 = off
  min_p?: number; // 0 = off
  repetition_penalty?: number; // 1 = off; divides positive logits of seen tokens (CTRL / HF style)
  presence_penalty?: number; // OpenAI: subtracted once from every token generated so far
  frequency_penalty?: number; // OpenAI: subtracted per occurrence in the generated tokens
  /** OpenAI: token id (a decimal key, as JSON writes it) -> -100..100, added to that token's logit */
  logit_bias?: Readonly<Record<number, number>>;
  seed?: number;
}

/** logit_bias values: OpenAI's range; -100 bans a token in practice, +100 forces it. */
export const LOGIT_BIAS_MAX = 100;

/** Deterministic PRNG (xoshiro128**), so `seed` reproduces a sample exactly. */
export class Rng {
  private s: Uint32Array;
  constructor(seed: number) {
    // splitmix32 expands the seed into the four state words
    let x = (seed >>> 0) ^ 0x9e3779b9;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s = Uint32Array.of(next(), next(), next(), next());
  }
  /** uniform in [0, 1) */
  next(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return r / 4294967296;
  }
}
const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

/** Token counts seen so far: `prompt` for the repetition penalty, `generated` for OpenAI's penalties. */
export interface History {
  prompt: readonly number[];
  generated: readonly number[];
}

/**
 * Every rule on the parameters, as one message that starts with the parameter's name (the
 * server turns it into a 400 naming it). `vocab`: how many token ids exist, for logit_bias.
 */
export function checkSamplerParams(p: SamplerParams, vocab?: number): string | undefined {
  const t = p.temperature ?? 1;
  if (!(t >= 0) || t > 100) return `temperature must be between 0 and 100, got ${t}`;
  if (p.top_k !== undefined && (!Number.isInteger(p.top_k) || p.top_k < 0)) return `top_k must be a non-negative integer, got ${p.top_k}`;
  if (p.top_p !== undefined && !(p.top_p >= 0 && p.top_p <= 1)) return `top_p must be between 0 and 1, got ${p.top_p}`;
  if (p.min_p !== undefined && !(p.min_p >= 0 && p.min_p <= 1)) return `min_p must be in [0, 1], got ${p.min_p}`;
  if (p.repetition_penalty !== undefined && !(p.repetition_penalty > 0 && p.repetition_penalty <= 10)) return `repetition_penalty must be in (0, 10], got ${p.repetition_penalty}`;
  for (const k of ['presence_penalty', 'frequency_penalty'] as const) {
    const v = p[k];
    if (v !== undefined && !(v >= -2 && v <= 2)) return `${k} must be between -2 and 2, got ${v}`;
  }
  return p.logit_bias === undefined ? undefined : checkLogitBias(p.logit_bias, vocab);
}

function checkLogitBias(bias: unknown, vocab: number | undefined): string | undefined {
  if (typeof bias !== 'object' || bias === null || Array.isArray(bias)) return 'logit_bias must be an object mapping token ids to numbers from -100 to 100';
  for (const [k, v] of Object.entries(bias)) {
    // decimal integers only: '1e3', ' 5', '05' and '-1' are not token ids
    if (!/^(0|[1-9][0-9]{0,9})$/.test(k)) return `logit_bias key '${k.slice(0, 40)}' is not a token id (a non-negative integer)`;
    if (vocab !== undefined && Number(k) >= vocab) return `logit_bias key ${k} is out of range: the vocabulary has ids 0..${vocab - 1}`;
    if (typeof v !== 'number' || !Number.isFinite(v)) return `logit_bias[${k}] must be a finite number, got ${typeof v === 'number' ? v : (JSON.stringify(v) ?? typeof v)}`;
    if (v < -LOGIT_BIAS_MAX || v > LOGIT_BIAS_MAX) return `logit_bias[${k}] must be between -${LOGIT_BIAS_MAX} and ${LOGIT_BIAS_MAX}, got ${v}`;
  }
  return undefined;
}

/** Add the logit_bias entries to the logits, in place (out-of-range ids were refused by checkSamplerParams). */
export function biasLogits(logits: Float32Array, bias: Readonly<Record<number, number>> | undefined): Float32Array {
  if (bias)
    for (const [k, v] of Object.entries(bias)) {
      const id = Number(k);
      if (id < logits.length) logits[id] = logits[id]! + v;
    }
  return logits;
}

/** Apply the penalties to a copy of the logits. */
export function penalize(logits: Float32Array, p: SamplerParams, h: History): Float32Array {
  const out = Float32Array.from(logits);
  const rep = p.repetition_penalty ?? 1;
  if (rep !== 1) {
    for (const t of new Set([...h.prompt, ...h.generated])) out[t] = out[t]! > 0 ? out[t]! / rep : out[t]! * rep;
  }
  const pres = p.presence_penalty ?? 0,
    freq = p.frequency_penalty ?? 0;
  if (pres || freq) {
    const counts = new Map<number, number>();
    for (const t of h.generated) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (const [t, n] of counts) out[t] = out[t]! - pres - freq * n;
  }
  return out;
}

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

/**
 * What sample() draws from: candidate ids with unnormalised weights (their sum in `sum`). `point`:
 * the choice is made without a draw (greedy, or nothing comparable), ids[0] with certainty.
 * Speculative decoding (spec.ts) reads it to accept or reject a proposed token.
 */
export interface Choice {
  ids: number[];
  weights: number[];
  sum: number;
  point?: boolean;
}

const point = (id: number): Choice => ({ ids: [id], weights: [1], sum: 1, point: true });

/** Choose the next token. `allowed`, when given, masks every other token (constrained decoding). */
export function sample(logits: Float32Array, p: SamplerParams, h: History, rng: Rng, allowed?: (id: number) => boolean): number {
  return draw(distribution(logits, p, h, allowed), rng);
}

/** One draw from a Choice: the first id whose running weight passes u * sum (no draw for a point). */
export function draw(c: Choice, rng: Rng): number {
  if (c.point) return c.ids[0]!;
  let r = rng.next() * c.sum;
  for (let j = 0; j < c.ids.length; j++) {
    r -= c.weights[j]!;
    if (r < 0) return c.ids[j]!;
  }
  return c.ids[c.ids.length - 1]!;
}

/** The probability a Choice gives `id`. */
export function probability(c: Choice, id: number): number {
  const j = c.ids.indexOf(id);
  return j < 0 ? 0 : c.weights[j]! / c.sum;
}

/** The distribution the next token is drawn from (sample() draws it). */
export function distribution(logits: Float32Array, p: SamplerParams, h: History, allowed?: (id: number) => boolean): Choice {
  // the one place logits are adjusted before the choice: penalties, then the request's bias (on a
  // copy: logprobs report the model's own distribution, as vLLM's do), then the constraint's mask
  const l = biasLogits(penalize(logits, p, h), p.logit_bias);
  if (allowed) for (let i = 0; i < l.length; i++) if (!allowed(i)) l[i] = -Infinity;
  const temp = p.temperature ?? 1;
  if (temp === 0) return point(argmax(l));
  // Candidates sorted by logit, highest first. Tokens more than 30/temperature below the best
  // carry < e^-30 of its probability each: dropping them before the sort changes nothing visible
  // and avoids sorting the whole 152k vocabulary on every token.
  const best = l[argmax(l)]!;
  if (best === -Infinity) return point(argmax(logits));
  const floor = best - 30 * Math.max(temp, 1);
  let ids: number[] = [];
  for (let i = 0; i < l.length; i++) if (l[i]! >= floor) ids.push(i);
  if (!ids.length) return point(argmax(l)); // NaN logits: nothing compares; take a valid id all the same
  ids.sort((a, b) => l[b]! - l[a]! || a - b);
  if (p.top_k && p.top_k < ids.length) ids = ids.slice(0, p.top_k);
  const max = l[ids[0]!]!;
  let probs = ids.map((i) => Math.exp(l[i]! - max));
  let sum = probs.reduce((a, b) => a + b, 0);
  const topP = p.top_p ?? 1;
  if (topP < 1) {
    let acc = 0,
      keep = ids.length;
    for (let j = 0; j < ids.length; j++) {
      acc += probs[j]! / sum;
      if (acc >= topP) {
        keep = j + 1;
        break;
      }
    }
    ids = ids.slice(0, keep);
    probs = probs.slice(0, keep);
  }
  const minP = p.min_p ?? 0;
  if (minP > 0) {
    const keep = probs.findIndex((q) => q < minP * probs[0]!);
    if (keep > 0) {
      ids = ids.slice(0, keep);
      probs = probs.slice(0, keep);
    }
  }
  // temperature last, on the surviving candidates
  probs = ids.map((i) => Math.exp((l[i]! - max) / temp));
  sum = probs.reduce((a, b) => a + b, 0);
  return { ids, weights: probs, sum };
}

/** log-softmax of the model's own logits, and the top `n` entries, for OpenAI-style logprobs. */
export function logprobs(logits: Float32Array, token: number, n: number): { logprob: number; top: { id: number; logprob: number }[] } {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  const top: { id: number; logprob: number }[] = [];
  for (const id of topN(logits, n)) top.push({ id, logprob: logits[id]! - lse });
  return { logprob: logits[token]! - lse, top };
}

/** Indices of the n largest values, largest first (ties: lower id first); O(V * n) for small n. */
export function topN(a: ArrayLike<number>, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.length && n > 0; i++) {
    if (out.length === n && a[i]! <= a[out[n - 1]!]!) continue;
    let j = out.length < n ? out.length : n - 1;
    while (j > 0 && a[out[j - 1]!]! < a[i]!) {
      if (j < n) out[j] = out[j - 1]!;
      j--;
    }
    out[j] = i;
  }
  return out;
}
