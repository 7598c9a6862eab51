// The decoder Qwen2, Qwen3 and their MoE variants share: embedding, then per layer the attention
// block (attention.ts) and an FFN with their residuals, then the final norm and head. The FFN is
// the model file's (dense SwiGLU, or routed experts: moe.ts), passed in as a function, as
// hybrid.ts does for Qwen3.5.
import { HEAD, type Backend, type Weight } from '../backend/backend.js';
import type { LayerLora, LoraSet } from '../lora/apply.js';
import { attentionBlock, loadAttention, type AttnWeights } from './attention.js';
import { loadOutputHead, outputHead } from './blocks.js';
import type { QwenConfig } from './config.js';
import { checkBatch, commitBatch, KvCache, type BatchEntry } from './kv_cache.js';
import { applyEmbd, batchMpos } from './mrope.js';
import type { CausalLM, ForwardOutput, TraceHook } from './model.js';
import type { WeightLoader } from './weights.js';

export interface DecoderLayer<F> extends AttnWeights {
  ffnNorm: Float32Array; // [D]
  ffn: F;
}

export interface DecoderWeights<F> {
  tokenEmbd: Weight;
  layers: DecoderLayer<F>[];
  outputNorm: Float32Array;
  output: Weight | undefined;
}

/** The layer's trace hook, for the FFN's named intermediates. */
export type LayerTrace = (name: string, t: Float32Array, shape: number[]) => void;

/** h [T, D] (the normed FFN input) -> the FFN's output [T, D], a new buffer (with the rows' LoRA deltas). */
export type Ffn<F> = (be: Backend, h: Float32Array, ffn: F, T: number, il: number, cb: LayerTrace, lora?: LayerLora) => Float32Array;

/** The weights, layer by layer: attention ('bias': Qwen2, 'qk_norm': Qwen3), then loadFfn(i). */
export function loadDecoder<F>(c: QwenConfig, w: WeightLoader, kind: 'bias' | 'qk_norm', loadFfn: (i: number) => F): DecoderWeights<F> {
  const D = c.hidden_size,
    V = c.vocab_size;
  const layers: DecoderLayer<F>[] = [];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const attn = loadAttention(c, w, i, kind);
    const ffnNorm = w.vector(`model.layers.${i}.post_attention_layernorm.weight`, D, 'hidden_size');
    layers.push({ ...attn, ffnNorm, ffn: loadFfn(i) });
  }
  const tokenEmbd = w.matrix('model.embed_tokens.weight', [V, D], 'vocab_size x hidden_size');
  const outputNorm = w.vector('model.norm.weight', D, 'hidden_size');
  const output = loadOutputHead(c, w, tokenEmbd);
  w.finish();
  return { tokenEmbd, layers, outputNorm, output };
}

export class Decoder<F> implements CausalLM {
  trace?: TraceHook;
  lora?: LoraSet;
  constructor(
    readonly config: QwenConfig,
    readonly backend: Backend,
    private readonly w: DecoderWeights<F>,
    private readonly ffn: Ffn<F>,
  ) {}

  newCache(capacity = this.config.max_position_embeddings): KvCache {
    return new KvCache(this.backend, this.config, capacity);
  }

  forward(batch: readonly BatchEntry[], caches: readonly KvCache[], output: ForwardOutput = 'logits'): Float32Array {
    const c = this.config,
      be = this.backend,
      w = this.w;
    const D = c.hidden_size,
      V = c.vocab_size;
    const T = batch.length,
      eps = c.rms_norm_eps;
    const cb = (name: string, il: number, t: Float32Array, shape: number[]) => this.trace?.(name, il, t, shape);
    checkBatch(batch, caches, V);
    const tokens = Int32Array.from(batch, (e) => e.token);
    const positions = Int32Array.from(batch, (e) => e.pos);
    const mpos = batchMpos(batch); // image rows in the batch: M-RoPE positions [T, 3]
    const lora = this.lora?.pass(batch); // which rows get which adapter's deltas

    be.beginPass?.(); // activations of this pass stay valid until the next pass begins
    try {
      be.place?.(HEAD); // the memory holding the embedding and output head (backends of several memories)
      let x = be.alloc(T * D); // [T, D]
      be.embed(x, w.tokenEmbd, tokens);
      if (mpos) applyEmbd(x, batch, D); // image rows bring their own
      cb('inp_embd', -1, x, [T, D]);
      for (let il = 0; il < w.layers.length; il++) {
        const L = w.layers[il]!;
        be.place?.(il); // this layer's memory: its activations go there, next to its weights
        const ll = lora && { pass: lora, layer: il };
        const ffnInp = attentionBlock(be, x, L, batch, caches, positions, il, c, cb, ll, mpos); // [T, D]: x + attention; x freed
        // MLP block
        const h = be.alloc(T * D); // [T, D]
        be.rmsNorm(h, ffnInp, L.ffnNorm, T, D, eps);
        cb('ffn_norm', il, h, [T, D]);
        const down = this.ffn(be, h, L.ffn, T, il, (name, t, shape) => cb(name, il, t, shape), ll); // [T, D]
        cb('ffn_out', il, down, [T, D]);
        x = be.alloc(T * D); // [T, D]: residual
        be.add(x, ffnInp, down, T * D);
        cb('l_out', il, x, [T, D]);
        // this layer's temporaries are dead: the backend may reuse them for the next layer
        for (const a of [h, ffnInp, down]) be.free?.(a);
      }
      commitBatch(batch, caches);
      be.place?.(HEAD);

      return outputHead(be, batch, x, w.outputNorm, w.output, D, V, eps, this.trace, output === 'hidden');
    } finally {
      be.endPass?.();
    }
  }
}
