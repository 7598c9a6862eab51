// Reranking with Qwen3-Reranker: each (query, document) pair is written in the model card's prompt
// (a system turn asking for "yes" or "no", the user turn with <Instruct>, <Query>, <Document>, then
// an assistant turn with an empty think block), and the score is P(yes) / (P(yes) + P(no)) at the
// last position: the softmax of those two logits. Documents share forward passes (passes.ts).
import { fail } from '../errors.js';
import { runSequences, type PassOptions } from './passes.js';
import { fitContext, poolingOf, type EmbedModel } from './embed.js';

export const RERANK_INSTRUCTION = 'Given a web search query, retrieve relevant passages that answer the query';
const PREFIX =
  '<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n';
const SUFFIX = '<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n';

/** The reranker's prompt for one pair (Qwen3-Reranker's model card, byte for byte). */
export function rerankPrompt(query: string, document: string, instruction = RERANK_INSTRUCTION): string {
  return `${PREFIX}<Instruct>: ${instruction}\n<Query>: ${query}\n<Document>: ${document}${SUFFIX}`;
}

export interface RerankOptions extends PassOptions {
  /** the task description (default: web search) */
  instruction?: string;
  /** keep the best N results (default: all) */
  topN?: number;
  /** cut documents whose prompt is longer than the context instead of refusing them */
  truncate?: boolean;
}

export interface RerankResult {
  /** best first: the document's index in the request and its score in [0, 1] */
  results: { index: number; relevance_score: number }[];
  promptTokens: number;
}

/** The ids of a token that must be one token in the vocabulary. */
function tokenId(m: EmbedModel, text: string): number {
  const id = m.tokenizer.tokenToId(text);
  if (id === undefined) fail(`${m.name ?? m.path} cannot rerank: its vocabulary has no '${text}' token (Qwen3-Reranker scores the "yes" and "no" tokens)`);
  return id;
}

/**
 * Qwen3-Reranker's HF folder is a plain causal LM (no pooling rule): its LM head gives the logits.
 * Refused: embedding models, and llama.cpp's rank GGUF files, whose head is a two-row cls.output
 * (an untied LM head is dropped; reading token_embd in its place would be silently wrong).
 */
function checkReranker(m: EmbedModel): void {
  const { pooling, source } = poolingOf(m);
  if (pooling === 'rank') fail(`${m.name ?? m.path} is a llama.cpp rank GGUF (${source}), whose cls.output head is not read yet: use the Hugging Face folder (Qwen/Qwen3-Reranker-*)`);
  if (pooling !== undefined) fail(`${m.name ?? m.path} is an embedding model (${source}): it embeds, it does not rerank`);
}

/** Score every document against the query; results sorted by relevance, best first. */
export async function rerank(m: EmbedModel, query: string, documents: readonly string[], opts: RerankOptions = {}): Promise<RerankResult> {
  if (typeof query !== 'string' || query === '') fail('query must be a non-empty string');
  if (!Array.isArray(documents) || documents.length === 0) fail('documents is empty: give at least one document');
  if (opts.topN !== undefined && (!Number.isInteger(opts.topN) || opts.topN < 1)) fail(`top_n must be a positive integer, got ${opts.topN}`);
  checkReranker(m);
  const yes = tokenId(m, 'yes'),
    no = tokenId(m, 'no');
  const limit = m.model.config.max_position_embeddings;
  const suffix = m.tokenizer.encode(SUFFIX);
  const seqs = documents.map((d, i) => {
    if (typeof d !== 'string' || d === '') fail(`documents[${i}] must be a non-empty string`);
    // cut inside the document, never the answer prompt: the suffix stays
    return fitContext(m.tokenizer.encode(rerankPrompt(query, d, opts.instruction)), limit, `documents[${i}] with the query`, opts.truncate, suffix.length);
  });
  const scores = new Float64Array(seqs.length);
  await runSequences(
    m.model,
    seqs,
    'logits',
    (pos, L) => pos === L - 1,
    (s, _pos, row) => {
      scores[s] = 1 / (1 + Math.exp(row[no]! - row[yes]!)); // softmax([yes, no])[0]
    },
    opts,
  );
  const results = [...scores].map((relevance_score, index) => ({ index, relevance_score }));
  results.sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index);
  return { results: results.slice(0, opts.topN ?? results.length), promptTokens: seqs.reduce((n, s) => n + s.length, 0) };
}
