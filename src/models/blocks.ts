// Blocks every Qwen decoder shares (llama.cpp's build_ffn / the output head): written once,
// called from each model file's forward pass.
import type { Backend, Weight } from '../backend/backend.js';
import { fail } from '../errors.js';
import { linear, type LayerLora } from '../lora/apply.js';
import type { BatchEntry } from './kv_cache.js';
import type { TraceHook } from './model.js';
import type { QwenConfig } from './config.js';
import type { WeightLoader } from './weights.js';

export interface FfnWeights {
  ffnGate: Weight;
  ffnUp: Weight; // [F, D]
  ffnDown: Weight; // [D, F]
}

/** Layer i's dense SwiGLU weights (`note`: added to the shape errors, e.g. why the layer is dense). */
export function loadSwiglu(c: QwenConfig, w: WeightLoader, i: number, note = ''): FfnWeights {
  const D = c.hidden_size,
    F = c.intermediate_size,
    p = `model.layers.${i}.mlp`;
  return {
    ffnGate: w.matrix(`${p}.gate_proj.weight`, [F, D], `intermediate_size x hidden_size${note}`),
    ffnUp: w.matrix(`${p}.up_proj.weight`, [F, D], `intermediate_size x hidden_size${note}`),
    ffnDown: w.matrix(`${p}.down_proj.weight`, [D, F], `hidden_size x intermediate_size${note}`),
  };
}

/** SwiGLU: down(silu(gate h) * up h); h [T, D] -> [T, D] (a new buffer); with the rows' LoRA deltas */
export function swiglu(be: Backend, h: Float32Array, L: FfnWeights, T: number, D: number, F: number, lora?: LayerLora): Float32Array {
  const gate = be.alloc(T * F); // [T, F]
  const up = be.alloc(T * F); // [T, F]
  linear(be, [gate, up], h, [L.ffnGate, L.ffnUp], T, lora, ['gate_proj', 'up_proj']);
  be.siluMul(gate, gate, up, T * F);
  const down = be.alloc(T * D); // [T, D]
  linear(be, [down], gate, [L.ffnDown], T, lora, ['down_proj']);
  be.free?.(gate);
  be.free?.(up);
  return down;
}

/**
 * The LM head: the embeddings when tied, else lm_head.weight. None for an untied checkpoint saved
 * from the bare model without one (Qwen3-Embedding-4B / 8B: tie_word_embeddings false, no
 * lm_head.weight): such a model gives hidden states (embeddings), and asking it for logits fails.
 */
export function loadOutputHead(c: QwenConfig, w: WeightLoader, tokenEmbd: Weight): Weight | undefined {
  if (c.tie_word_embeddings) {
    w.skip('lm_head.weight');
    return tokenEmbd;
  }
  if (w.bare && !w.has('lm_head.weight')) return undefined;
  return w.matrix('lm_head.weight', [c.vocab_size, c.hidden_size], 'vocab_size x hidden_size (tie_word_embeddings is false)');
}

/** Final norm and lm head, only for the rows that asked for logits: [R, V] (hidden: the normed rows [R, D]) */
export function outputHead(
  be: Backend,
  batch: readonly BatchEntry[],
  x: Float32Array,
  norm: Float32Array,
  output: Weight | undefined,
  D: number,
  V: number,
  eps: number,
  trace?: TraceHook,
  hidden = false,
): Float32Array {
  const rows = batch.flatMap((e, t) => (e.logits ? [t] : []));
  const R = rows.length;
  if (R === 0) return be.alloc(0);
  const sel = be.alloc(R * D); // [R, D]
  rows.forEach((t, r) => be.copy(sel, r * D, x, t * D, D));
  be.rmsNorm(sel, sel, norm, R, D, eps);
  trace?.('result_norm', -1, sel, [R, D]);
  if (hidden) return sel;
  if (!output)
    fail(
      'this checkpoint has no lm_head.weight (tie_word_embeddings is false, and it was saved from the bare model, as Qwen3-Embedding-4B / 8B are): it computes embeddings (qwen-ts embed, /v1/embeddings), not logits',
    );
  const logits = be.alloc(R * V); // [R, V]
  be.matmul(logits, sel, output, R);
  trace?.('result_output', -1, logits, [R, V]);
  checkFinite(logits, V);
  return logits;
}

/**
 * A NaN or infinite logit comes from corrupt weights (a flipped exponent bit) or an overflow:
 * an error naming it, never a sampled token or a printed NaN. One multiply-add per logit.
 */
function checkFinite(logits: Float32Array, V: number): void {
  let s = 0;
  for (let i = 0; i < logits.length; i++) s += logits[i]! * 0; // NaN when any value is NaN or ±Inf
  if (s === 0) return;
  const i = logits.findIndex((v) => !Number.isFinite(v));
  fail(`the model computed a non-finite logit (${logits[i]}) for token id ${i % V} at output row ${Math.floor(i / V)}: its weights hold NaN/Inf values or overflow; the model file is likely corrupt`);
}
