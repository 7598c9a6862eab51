// Generation as an async iterator over a pure sampler: prefill the prompt, then sample and
// decode one token at a time. The CLI and the server only consume this.
import { fail } from '../errors.js';
import type { CausalLM } from '../models/model.js';
import type { KvCache } from '../models/kv_cache.js';
import { checkSamplerParams, logprobs, Rng, sample, type SamplerParams } from './sampler.js';

/** Restricts which tokens may come next (JSON schema, forced tool call); advanced on each token. */
export interface Constraint {
  allowed(id: number): boolean;
  accept(id: number): void;
  /** true once the constrained text is complete: generation stops there */
  done(): boolean;
}

export interface GenerateOptions extends SamplerParams {
  max_tokens: number;
  /** token ids that end generation (not yielded as text: finish 'stop') */
  stop_tokens?: readonly number[];
  /** with logprobs: how many alternatives per step (0..20) */
  top_logprobs?: number;
  logprobs?: boolean;
  signal?: AbortSignal;
  constraint?: Constraint;
  /** tokens per prefill batch (default 256) */
  prefill_batch?: number;
}

export interface Step {
  token: number;
  logprob?: number;
  top?: { id: number; logprob: number }[];
}

export type FinishReason = 'stop' | 'length' | 'abort';

/** Yields each generated token; the return value says why it stopped. */
export async function* generate(model: CausalLM, prompt: readonly number[], o: GenerateOptions): AsyncGenerator<Step, FinishReason> {
  const bad = checkSamplerParams(o);
  if (bad) fail(bad);
  if (prompt.length === 0) fail('the prompt is empty: nothing to continue from');
  const ctx = model.config.max_position_embeddings;
  if (!Number.isInteger(o.max_tokens) || o.max_tokens < 1) fail(`max_tokens must be a positive integer, got ${o.max_tokens}`);
  if (prompt.length >= ctx) fail(`the prompt has ${prompt.length} tokens; the model's context holds ${ctx}`);
  const maxNew = Math.min(o.max_tokens, ctx - prompt.length);
  const cache: KvCache = model.newCache(prompt.length + maxNew);
  const rng = new Rng(o.seed ?? Math.floor(Math.random() * 2 ** 32));
  const stops = new Set(o.stop_tokens ?? []);
  const generated: number[] = [];
  const chunk = o.prefill_batch ?? 256;

  let logits: Float32Array = new Float32Array(0);
  for (let s = 0; s < prompt.length; s += chunk) {
    if (o.signal?.aborted) return 'abort';
    const end = Math.min(prompt.length, s + chunk);
    const batch = [];
    for (let p = s; p < end; p++) batch.push({ token: prompt[p]!, pos: p, seq: 0, logits: p === prompt.length - 1 });
    logits = model.forward(batch, [cache]);
    await yieldToEventLoop();
  }
  for (let i = 0; ; i++) {
    if (o.signal?.aborted) return 'abort';
    const token = sample(logits, o, { prompt, generated }, rng, o.constraint && ((id) => o.constraint!.allowed(id)));
    if (stops.has(token) && !o.constraint) return 'stop';
    o.constraint?.accept(token);
    generated.push(token);
    const step: Step = { token };
    if (o.logprobs) {
      const lp = logprobs(logits, token, o.top_logprobs ?? 0);
      step.logprob = lp.logprob;
      step.top = lp.top;
    }
    yield step;
    if (o.constraint?.done()) return 'stop';
    if (i + 1 >= maxNew) return 'length';
    logits = model.forward([{ token, pos: prompt.length + i, seq: 0, logits: true }], [cache]);
    await yieldToEventLoop();
  }
}

// Let timers, sockets and abort signals run between tokens.
const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));
