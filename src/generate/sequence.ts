// One generation in progress: its KV cache, the prompt still to evaluate, the tokens sampled so
// far. generate() drives one Sequence; the scheduler drives many in one batch.
import { fail } from '../errors.js';
import type { CausalLM } from '../models/model.js';
import type { KvCache } from '../models/kv_cache.js';
import type { QwenConfig } from '../models/config.js';
import type { ConstraintSpec } from './constrain/index.js';
import { checkSamplerParams, logprobs, Rng, sample, type SamplerParams } from './sampler.js';
import type { PrefixCache } from './prefix_cache.js';

/** Restricts which tokens may come next (JSON schema, forced tool call); advanced on each token. */
export interface Constraint {
  allowed(id: number): boolean;
  accept(id: number): void;
  /** true once the constrained text is complete: generation stops there */
  done(): boolean;
  /** how to build this constraint again from scratch (its builder and arguments): what crosses to an engine thread */
  spec?: ConstraintSpec;
}

export interface GenerateOptions extends SamplerParams {
  max_tokens: number;
  /** token ids that end generation (not yielded: finish 'stop') */
  stop_tokens?: readonly number[];
  logprobs?: boolean;
  /** with logprobs: how many alternatives per step (0..20) */
  top_logprobs?: number;
  signal?: AbortSignal;
  constraint?: Constraint;
  /** ids at or above this are never sampled (the model's padding rows past the tokenizer) */
  vocab_limit?: number;
  /** prompt tokens per forward pass while prefilling (generate(); default 256) */
  prefill_batch?: number;
  /** called once as the request starts: how many prompt tokens came from the prefix cache (0 without one) */
  onCached?: (tokens: number) => void;
}

export interface Step {
  token: number;
  logprob?: number;
  top?: { id: number; logprob: number }[];
}

/** 'error': the engine failed (the consumer sees the error thrown, not this value) */
export type FinishReason = 'stop' | 'length' | 'abort' | 'error';

/**
 * The rules a request must pass before it is queued (the Sequence constructor, and the threaded
 * engine's client on the HTTP thread, so bad parameters throw there at once): returns the most
 * tokens it may generate (max_tokens, cut to what the context has left).
 */
export function checkRequest(config: Pick<QwenConfig, 'vocab_size' | 'max_position_embeddings'>, prompt: readonly number[], o: GenerateOptions): number {
  const bad = checkSamplerParams(o, Math.min(o.vocab_limit ?? Infinity, config.vocab_size)); // logit_bias ids must exist
  if (bad) fail(bad);
  if (prompt.length === 0) fail('the prompt is empty: nothing to continue from');
  const ctx = config.max_position_embeddings;
  if (!Number.isInteger(o.max_tokens) || o.max_tokens < 1) fail(`max_tokens must be a positive integer, got ${o.max_tokens}`);
  if (prompt.length >= ctx) fail(`the prompt has ${prompt.length} tokens; the model's context holds ${ctx}`);
  const vocab = config.vocab_size;
  const badId = prompt.find((t) => !Number.isInteger(t) || t < 0 || t >= vocab);
  if (badId !== undefined) fail(`prompt token id ${badId} is out of range (vocabulary: ${vocab})`);
  return Math.min(o.max_tokens, ctx - prompt.length);
}

export class Sequence {
  readonly cache: KvCache;
  readonly generated: number[] = [];
  finish?: FinishReason;
  /** why the engine failed, when finish is 'error' */
  error?: Error;
  /** prompt tokens restored from the prefix cache */
  cached = 0;
  /** prefill chunks end at these positions (a recurrent model's prompt checkpoints: see Scheduler) */
  stopAt: readonly number[] = [];
  private fed = 0; // tokens of prompt + generated already in the cache
  private readonly maxNew: number;
  private readonly rng: Rng;
  private readonly stops: Set<number>;

  constructor(model: CausalLM, readonly prompt: readonly number[], readonly o: GenerateOptions) {
    this.maxNew = checkRequest(model.config, prompt, o);
    this.cache = model.newCache(prompt.length + this.maxNew);
    this.rng = new Rng(o.seed ?? Math.floor(Math.random() * 2 ** 32));
    this.stops = new Set(o.stop_tokens ?? []);
  }

  /** End this sequence because the engine failed on it. */
  fail(e: unknown): void {
    this.finish = 'error';
    this.error = e instanceof Error ? e : new Error(String(e));
  }

  /** Start from the longest cached prefix of the prompt, if any (before the first next()). */
  resume(prefix: PrefixCache): number {
    this.cached = this.fed = prefix.restore(this.prompt, this.cache).tokens;
    return this.cached;
  }

  /** The tokens whose keys and values the cache holds, in order. */
  evaluated(): number[] {
    return [...this.prompt, ...this.generated].slice(0, this.cache.length);
  }

  get prefilling(): boolean {
    return this.fed < this.prompt.length;
  }

  /** The next tokens to evaluate: up to `budget` prompt tokens, or the last sampled token. */
  next(budget: number): { token: number; pos: number; logits: boolean }[] {
    if (this.finish) return [];
    if (this.o.signal?.aborted) { this.finish = 'abort'; return []; }
    const out = [];
    if (this.prefilling) {
      let end = Math.min(this.prompt.length, this.fed + Math.max(1, budget));
      for (const p of this.stopAt) if (this.fed < p && p < end) end = p;
      for (let p = this.fed; p < end; p++) out.push({ token: this.prompt[p]!, pos: p, logits: p === this.prompt.length - 1 });
    } else {
      out.push({ token: this.generated[this.generated.length - 1]!, pos: this.fed, logits: true });
    }
    this.fed += out.length;
    return out;
  }

  /** Sample from the logits of the last evaluated position; undefined once finished. */
  step(logits: Float32Array): Step | undefined {
    if (this.o.signal?.aborted) { this.finish = 'abort'; return undefined; }
    const c = this.o.constraint;
    if (this.o.vocab_limit !== undefined) logits.fill(-Infinity, this.o.vocab_limit);
    const token = sample(logits, this.o, { prompt: this.prompt, generated: this.generated }, this.rng, c && ((id) => c.allowed(id)));
    if (this.stops.has(token)) { this.finish = 'stop'; return undefined; } // a constraint allows a stop token only once its text is complete
    c?.accept(token);
    this.generated.push(token);
    const s: Step = { token };
    if (this.o.logprobs) {
      const lp = logprobs(logits, token, this.o.top_logprobs ?? 0);
      s.logprob = lp.logprob;
      s.top = lp.top;
    }
    if (c?.done()) this.finish = 'stop';
    else if (this.generated.length >= this.maxNew) this.finish = 'length';
    return s;
  }
}
