// What every architecture module provides, and what callers (CLI, generation, server) use.
import type { Backend } from '../backend/backend.js';
import type { LoraSet } from '../lora/apply.js';
import type { QwenConfig } from './config.js';
import type { BatchEntry, KvCache } from './kv_cache.js';
import type { WeightLoader } from './weights.js';
import type { VisionEncoder } from '../vision/types.js';

/** Called with every named intermediate (llama.cpp's names: attn_norm, Qcur, ffn_out, ...). */
export type TraceHook = (name: string, layer: number, data: Float32Array, shape: readonly number[]) => void;

/** What a forward pass returns for the entries that ask (`logits: true`): the LM head's logits, or
 *  the final-norm hidden state (what embedding models pool). */
export type ForwardOutput = 'logits' | 'hidden';

export interface CausalLM {
  readonly config: QwenConfig;
  readonly backend: Backend;
  trace?: TraceHook;
  /** LoRA adapters loaded on this model (src/lora/apply.ts), which batch rows pick by BatchEntry.adapter */
  lora?: LoraSet;
  /** the vision tower that makes image rows for this model (src/vision/attach.ts); absent: text only */
  vision?: VisionEncoder;
  /**
   * Evaluate a batch; returns logits [R, vocab_size] for the R entries that asked for them, in order
   * (output 'hidden': their final-norm hidden states [R, hidden_size] instead; no LM head).
   */
  forward(batch: readonly BatchEntry[], caches: readonly KvCache[], output?: ForwardOutput): Float32Array;
  /** A fresh KV cache for one sequence (default capacity: max_position_embeddings). */
  newCache(capacity?: number): KvCache;
}

/** An architecture module (one file per HF model_type). */
export interface Architecture {
  load(config: QwenConfig, weights: WeightLoader, backend: Backend): CausalLM;
}
