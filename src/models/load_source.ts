// A model built from opened tensors (any TensorSource: files by path, or a URL / Blob in a browser)
// and its config: the part of loading that reads no file by path (load.ts opens the files).
import type { TensorSource } from '../formats/file.js';
import type { GgufFile } from '../formats/gguf.js';
import { ReferenceBackend } from '../backend/reference.js';
import { configFromGguf, type QwenConfig } from './config.js';
import { ARCHITECTURES } from './registry.js';
import { withCacheType } from './kv_cache.js';
import type { CausalLM } from './model.js';
import { WeightLoader } from './weights.js';
import { fail } from '../errors.js';
import type { LoadOptions, ModelFormat } from './load.js';

/** Build the model from `source` (which stays open: the caller closes it). */
export function loadFromSource(format: ModelFormat, full: QwenConfig, source: TensorSource, opts: Omit<LoadOptions, 'lora'> = {}): CausalLM {
  const backend = opts.backend ?? new ReferenceBackend();
  const config = withCacheType(withContext(full, opts.ctxSize), opts.cacheType);
  const weights = new WeightLoader(source, format, backend, opts.onProgress, config.model_type, opts.quantize, opts.checkTensors);
  const model = ARCHITECTURES[config.model_type].load(config, weights, backend);
  for (const n of weights.notes) (opts.onNote ?? ((m) => console.warn(`note: ${m}`)))(n);
  return model;
}

/** `c` with its context capped at ctxSize (LoadOptions.ctxSize); an error when that exceeds it. */
export function withContext(c: QwenConfig, ctxSize: number | undefined): QwenConfig {
  if (ctxSize === undefined) return c;
  if (!Number.isSafeInteger(ctxSize) || ctxSize < 1) fail(`--ctx-size must be a positive integer, got ${ctxSize}`);
  if (ctxSize > c.max_position_embeddings) fail(`--ctx-size ${ctxSize} is larger than the model's context of ${c.max_position_embeddings} tokens`);
  return { ...c, max_position_embeddings: ctxSize };
}

/** The model config a GGUF header describes (its metadata, and the embedding and output tensors). */
export function ggufConfig(g: GgufFile): QwenConfig {
  const embd = g.tensors.get('token_embd.weight');
  if (!embd) fail(`${g.path}: tensor 'token_embd.weight' is missing`);
  return configFromGguf(g.metadata, g.path, embd.shape[0]!, g.tensors.has('output.weight'));
}

/** A tokenizer with more tokens than the model has embedding rows is refused: its ids would read past the table. */
export function checkVocab(path: string, tokenizer: { vocabSize: number }, config: QwenConfig): void {
  if (tokenizer.vocabSize > config.vocab_size) fail(`${path}: the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${config.vocab_size} embedding rows`);
}
