// One generation in progress: its KV cache, the prompt still to evaluate, the tokens sampled so
// far. generate() drives one Sequence; the scheduler drives many in one batch.
import { fail } from '../errors.js';
import type { CausalLM } from '../models/model.js';
import type { BatchEntry, KvCache } from '../models/kv_cache.js';
import type { QwenConfig } from '../models/config.js';
import type { ConstraintSpec } from './constrain/index.js';
import { checkSamplerParams, distribution, draw, logprobs, Rng, type Choice, type SamplerParams } from './sampler.js';
import type { PrefixCache } from './prefix_cache.js';
import { SpecMark, verifyToken } from './spec.js';
import { checkImages, imageFields, mropePositions, type MropePlan } from '../vision/positions.js';
import type { PromptImage } from '../vision/types.js';

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
  /** the LoRA adapter to run with (its id on the model: serve's --lora NAME=PATH order, from 1); 0: the base model; absent: the model's default */
  adapter?: number;
  /** images in the prompt (in order): each replaces the embeddings of its nx * ny `<|image_pad|>`
   * tokens from `start`, and the positions from it on follow M-RoPE (src/vision/positions.ts) */
  images?: PromptImage[];
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
export function checkRequest(
  config: Pick<QwenConfig, 'vocab_size' | 'max_position_embeddings'> & Partial<Pick<QwenConfig, 'hidden_size' | 'mrope_section'>>,
  prompt: readonly number[],
  o: GenerateOptions,
): number {
  const bad = checkSamplerParams(o, Math.min(o.vocab_limit ?? Infinity, config.vocab_size)); // logit_bias ids must exist
  if (bad) fail(bad);
  if (prompt.length === 0) fail('the prompt is empty: nothing to continue from');
  const ctx = config.max_position_embeddings;
  if (!Number.isInteger(o.max_tokens) || o.max_tokens < 1) fail(`max_tokens must be a positive integer, got ${o.max_tokens}`);
  if (prompt.length >= ctx) fail(`the prompt has ${prompt.length} tokens; the model's context holds ${ctx}`);
  const vocab = config.vocab_size;
  const badId = prompt.find((t) => !Number.isInteger(t) || t < 0 || t >= vocab);
  if (badId !== undefined) fail(`prompt token id ${badId} is out of range (vocabulary: ${vocab})`);
  if (o.images?.length) checkImages(o.images, prompt, config.hidden_size ?? 0, config.mrope_section !== undefined);
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
  /** speculative decoding: tokens proposed, and those the target kept */
  proposed = 0;
  accepted = 0;
  private fed = 0; // tokens of prompt + generated already in the cache
  private readonly maxNew: number;
  private readonly rng: Rng;
  private readonly stops: Set<number>;
  /** proposals for the next pass (propose()), with the distributions they were drawn from (none: point masses) */
  private draft: number[] = [];
  private draftQ: (Choice | undefined)[] = [];
  private readonly mark = new SpecMark();
  /** with images: every prompt position's M-RoPE (t, h, w), and the shift of generated tokens' */
  private readonly mrope?: MropePlan;

  constructor(
    model: CausalLM,
    readonly prompt: readonly number[],
    readonly o: GenerateOptions,
  ) {
    this.maxNew = checkRequest(model.config, prompt, o);
    this.cache = model.newCache(prompt.length + this.maxNew);
    this.rng = new Rng(o.seed ?? Math.floor(Math.random() * 2 ** 32));
    this.stops = new Set(o.stop_tokens ?? []);
    if (o.images?.length) this.mrope = mropePositions(prompt.length, o.images);
  }

  /** End this sequence because the engine failed on it. */
  fail(e: unknown): void {
    this.finish = 'error';
    this.error = e instanceof Error ? e : new Error(String(e));
  }

  /** Start from the longest cached prefix of the prompt, if any (before the first next()). */
  resume(prefix: PrefixCache): number {
    // blocks holding image rows are keyed by the images' hashes too (an image's pad ids say nothing of it)
    this.cached = this.fed = prefix.restore(this.prompt, this.cache, this.o.adapter, this.o.images).tokens;
    return this.cached;
  }

  /** The tokens whose keys and values the cache holds, in order. */
  evaluated(): number[] {
    return this.text().slice(0, this.cache.length);
  }

  /** prompt + generated */
  text(): number[] {
    return [...this.prompt, ...this.generated];
  }

  /** tokens evaluated so far (the prompt's progress while prefilling) */
  get progress(): number {
    return this.fed;
  }

  get prefilling(): boolean {
    return this.fed < this.prompt.length;
  }

  /**
   * How many tokens may be proposed for the next pass: none while prefilling, none past max_tokens,
   * and none while accepted tokens wait to be evaluated again (a recurrent rewind: that pass must
   * end with them in the state, or a rejection there would drop them again).
   */
  get specRoom(): number {
    // speculation with images is not implemented: proposers see token ids only, and the MTP block
    // has no M-RoPE
    if (this.mrope || this.prefilling || this.finish || this.fed < this.prompt.length + this.generated.length - 1) return 0;
    return Math.max(0, this.maxNew - this.generated.length - 1);
  }

  /** Tokens to verify in the next pass (cut to specRoom); `q`: the distribution each was drawn from. */
  propose(tokens: readonly number[], q: readonly (Choice | undefined)[] = []): void {
    this.draft = tokens.slice(0, this.specRoom);
    this.draftQ = q.slice(0, this.draft.length);
  }

  /**
   * The next tokens to evaluate: up to `budget` prompt tokens; or the text not yet in the cache
   * (the last sampled token, and tokens a recurrent rewind dropped) then the proposals, whose rows
   * verify them.
   */
  next(budget: number): Pick<BatchEntry, 'token' | 'pos' | 'logits' | 'embd' | 'mpos'>[] {
    if (this.finish) return [];
    if (this.o.signal?.aborted) {
      this.finish = 'abort';
      return [];
    }
    const out = [];
    if (this.prefilling) {
      let end = Math.min(this.prompt.length, this.fed + Math.max(1, budget));
      for (const p of this.stopAt) if (this.fed < p && p < end) end = p;
      for (let p = this.fed; p < end; p++) out.push({ token: this.prompt[p]!, pos: p, logits: p === this.prompt.length - 1 });
    } else {
      const P = this.prompt.length,
        end = P + this.generated.length;
      for (let p = this.fed; p < end; p++) out.push({ token: p < P ? this.prompt[p]! : this.generated[p - P]!, pos: p, logits: p === end - 1 });
      if (this.draft.length) this.mark.mark(this.cache); // the cache holds [0, fed) now
      this.draft.forEach((t, i) => out.push({ token: t, pos: end + i, logits: true }));
    }
    this.fed += out.length;
    const m = this.mrope;
    return m ? out.map((e) => ({ ...e, ...imageFields(m, this.o.images!, e.pos) })) : out;
  }

  /** Sample from the logits of the last evaluated position; undefined once finished. */
  step(logits: Float32Array): Step | undefined {
    return this.advance([logits])[0];
  }

  /**
   * After a pass: the logits rows next() asked for (one, or one per proposal plus one). Each row
   * decides one token, keeping the proposal there or not; the first one not kept ends the
   * verification, and the cache drops what it holds past the text.
   */
  advance(rows: readonly Float32Array[]): Step[] {
    const steps: Step[] = [];
    const draft = this.draft,
      q = this.draftQ,
      end = this.prompt.length + this.generated.length;
    this.draft = [];
    this.draftQ = [];
    let kept = 0;
    for (let i = 0; i < rows.length && !this.finish; i++) {
      const r = this.decide(rows[i]!, draft[i], q[i]);
      if (r.step) steps.push(r.step);
      if (!r.kept) break;
      kept++;
    }
    if (draft.length) {
      this.proposed += draft.length;
      this.accepted += kept;
      this.fed = this.mark.rewind(this.cache, end + kept);
    }
    return steps;
  }

  /** One token from one row: drawn, or (with a proposal) verified; `kept` when it is the proposal and was taken. */
  private decide(logits: Float32Array, proposal: number | undefined, q: Choice | undefined): { step?: Step; kept: boolean } {
    if (this.o.signal?.aborted) {
      this.finish = 'abort';
      return { kept: false };
    }
    const c = this.o.constraint;
    if (this.o.vocab_limit !== undefined) logits.fill(-Infinity, this.o.vocab_limit);
    const p = distribution(logits, this.o, { prompt: this.prompt, generated: this.generated }, c && ((id) => c.allowed(id)));
    const { token, accepted } = proposal === undefined ? { token: draw(p, this.rng), accepted: false } : verifyToken(p, proposal, q, this.rng);
    if (this.stops.has(token)) {
      this.finish = 'stop';
      return { kept: false };
    } // a constraint allows a stop token only once its text is complete
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
    return { step: s, kept: accepted };
  }
}
