// Embeddings: each input's final-norm hidden states pooled by the model's rule (pooling.ts; Qwen3-
// Embedding: the last token's), cut to `dimensions` (Matryoshka: the first N) and L2-normalised,
// as llama.cpp's server and sentence-transformers' Normalize module return them. Inputs share
// forward passes (passes.ts).
import { fail } from '../errors.js';
import type { CausalLM } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { runSequences, type PassOptions } from './passes.js';
import { readPooling, type PoolingInfo, type VectorPooling } from './pooling.js';

/** What embedding and reranking need of a model: a ChatModel (openChatModel) is one. */
export interface EmbedModel {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** the folder or GGUF file it was loaded from (its pooling rule is read there) */
  path: string;
  name?: string;
}

/** A text, or token ids as they are (no instruction, no special tokens added). */
export type EmbedInput = string | readonly number[];

export interface EmbedOptions extends PassOptions {
  /** keep the first N dimensions (Matryoshka), then normalise */
  dimensions?: number;
  /** Qwen3-Embedding's query instruction: texts become `Instruct: {instruction}\nQuery:{text}` */
  instruction?: string;
  /** cut inputs longer than the context instead of refusing them */
  truncate?: boolean;
  /** the pooling to use whatever the model's files say (llama.cpp's --pooling) */
  pooling?: VectorPooling;
}

export interface EmbedResult {
  /** one unit vector per input, in input order */
  embeddings: Float32Array[];
  /** tokens evaluated, all inputs together */
  promptTokens: number;
}

/** What the pooling rule is read from: the model's files (and its config, for messages). A ChatModel is one. */
export interface PoolingSource {
  path: string;
  name?: string;
  config: { model_type: string };
}

const POOLING = new Map<string, PoolingInfo>();

/** The model's pooling rule and input wrapping, read from its files once. */
export function poolingOf(m: Pick<PoolingSource, 'path'>): PoolingInfo {
  let p = POOLING.get(m.path);
  if (!p) POOLING.set(m.path, (p = readPooling(m.path)));
  return p;
}

/** The name used in messages. */
const label = (m: Pick<PoolingSource, 'path' | 'name'>) => m.name ?? m.path;

/** The vector pooling to use, or a one-line error saying what the model is. */
export function vectorPooling(m: PoolingSource, override?: VectorPooling): VectorPooling {
  if (override !== undefined) {
    if (override !== 'last' && override !== 'mean' && override !== 'cls') fail(`pooling must be 'last', 'mean' or 'cls', got ${JSON.stringify(override)}`);
    return override;
  }
  const { pooling, source } = poolingOf(m);
  if (pooling === 'last' || pooling === 'mean' || pooling === 'cls') return pooling;
  if (pooling === 'rank') fail(`${label(m)} is a reranker (${source}): it scores query-document pairs (rerank), it does not embed`);
  if (pooling === 'none') fail(`${label(m)} declares pooling none (${source}): per-token embeddings, not one vector per input; they are not served`);
  fail(
    `${label(m)} is a ${m.config.model_type} causal language model, not an embedding model: ${source} (embedding models name their pooling: GGUF {arch}.pooling_type, or a sentence-transformers modules.json with a Pooling module; the pooling option / --pooling chooses one anyway)`,
  );
}

/** Qwen3-Embedding's query format (its model card; documents go in as they are). */
export const queryText = (instruction: string, text: string) => `Instruct: ${instruction}\nQuery:${text}`;

/**
 * An input's ids checked against the vocabulary and the context: longer than `limit` tokens is an
 * error naming the limit, or cut to fit (its last `keep` ids, the appended special tokens, stay).
 */
export function fitContext(ids: number[], limit: number, what: string, truncate: boolean | undefined, keep = 0): number[] {
  if (ids.length <= limit) return ids;
  if (!truncate) fail(`${what} has ${ids.length} tokens; this model's context holds ${limit} (truncate: true / --truncate cuts longer inputs)`);
  return [...ids.slice(0, Math.max(0, limit - keep)), ...ids.slice(ids.length - keep)].slice(-limit);
}

/** Check `dimensions` against the model's hidden size. */
export function checkDimensions(dimensions: number | undefined, hidden: number): number {
  if (dimensions === undefined) return hidden;
  if (!Number.isInteger(dimensions) || dimensions < 1) fail(`dimensions must be a positive integer, got ${dimensions}`);
  if (dimensions > hidden) fail(`dimensions is ${dimensions}, larger than the model's ${hidden}`);
  return dimensions;
}

/** Token ids of each input: texts tokenised (with the instruction) and wrapped as the tokenizer does. */
export function embeddingIds(m: EmbedModel, inputs: readonly EmbedInput[], opts: EmbedOptions = {}): number[][] {
  if (!Array.isArray(inputs) || inputs.length === 0) fail('input is empty: give at least one text or token-id array');
  const { prepend, append } = poolingOf(m);
  const V = m.model.config.vocab_size,
    limit = m.model.config.max_position_embeddings;
  return inputs.map((x, i) => {
    const what = inputs.length === 1 ? 'input' : `input[${i}]`;
    let ids: number[];
    if (typeof x === 'string') {
      if (x === '') fail(`${what} is an empty string`);
      const text = opts.instruction === undefined ? x : queryText(opts.instruction, x);
      ids = [...prepend, ...m.tokenizer.encode(text), ...append];
      return fitContext(ids, limit, what, opts.truncate, append.length);
    }
    if (!Array.isArray(x) || x.length === 0) fail(`${what} must be a non-empty string or a non-empty array of token ids`);
    const bad = x.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= V);
    if (bad >= 0) fail(`${what}[${bad}] is ${String(x[bad])}: token ids must be integers in 0..${V - 1}`);
    return fitContext([...x], limit, what, opts.truncate);
  });
}

/** L2-normalise the first n values of v (float64 sums) into a new array. */
export function normalize(v: ArrayLike<number>, n = v.length): Float32Array {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += v[i]! * v[i]!;
  const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = v[i]! * inv;
  return out;
}

/** Embed the inputs: one unit vector each, in order. */
export async function embed(m: EmbedModel, inputs: readonly EmbedInput[], opts: EmbedOptions = {}): Promise<EmbedResult> {
  const pooling = vectorPooling({ ...m, config: m.model.config }, opts.pooling);
  const D = m.model.config.hidden_size,
    dims = checkDimensions(opts.dimensions, D);
  const seqs = embeddingIds(m, inputs, opts);
  const sums = seqs.map(() => new Float64Array(D));
  const want = pooling === 'mean' ? () => true : pooling === 'cls' ? (pos: number) => pos === 0 : (pos: number, L: number) => pos === L - 1;
  await runSequences(
    m.model,
    seqs,
    'hidden',
    want,
    (s, _pos, row) => {
      const acc = sums[s]!;
      for (let i = 0; i < D; i++) acc[i]! += row[i]!;
    },
    opts,
  );
  const embeddings = sums.map((acc, s) => {
    if (pooling === 'mean') for (let i = 0; i < D; i++) acc[i]! /= seqs[s]!.length;
    return normalize(acc, dims);
  });
  return { embeddings, promptTokens: seqs.reduce((n, s) => n + s.length, 0) };
}
