// The one map between Hugging Face and GGUF (llama.cpp) tensor names, and a loader that checks
// each tensor against the shape the config implies before reading it into backend storage.
import { fail } from '../errors.js';
import { dequantize } from '../formats/quant/index.js';
import type { TensorSource } from '../formats/file.js';
import type { Backend, Weight } from '../backend/backend.js';

const LAYER_NAMES: [hf: string, gguf: string][] = [
  ['input_layernorm', 'attn_norm'],
  ['self_attn.q_proj', 'attn_q'],
  ['self_attn.k_proj', 'attn_k'],
  ['self_attn.v_proj', 'attn_v'],
  ['self_attn.o_proj', 'attn_output'],
  ['self_attn.q_norm', 'attn_q_norm'],
  ['self_attn.k_norm', 'attn_k_norm'],
  ['post_attention_layernorm', 'ffn_norm'],
  ['mlp.gate_proj', 'ffn_gate'],
  ['mlp.up_proj', 'ffn_up'],
  ['mlp.down_proj', 'ffn_down'],
];
const GLOBAL_NAMES: [string, string][] = [
  ['model.embed_tokens', 'token_embd'],
  ['model.norm', 'output_norm'],
  ['lm_head', 'output'],
];

/** GGUF name for an HF tensor name (`model.layers.3.mlp.up_proj.weight` -> `blk.3.ffn_up.weight`). */
export function hfToGguf(name: string): string | undefined {
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
  if (m) {
    const e = LAYER_NAMES.find(([hf]) => hf === m[2]);
    return e ? `blk.${m[1]}.${e[1]}.${m[3]}` : undefined;
  }
  const g = /^(.+)\.(weight|bias)$/.exec(name);
  const e = g && GLOBAL_NAMES.find(([hf]) => hf === g[1]);
  return e ? `${e[1]}.${g![2]}` : undefined;
}

/** HF name for a GGUF tensor name. */
export function ggufToHf(name: string): string | undefined {
  const m = /^blk\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
  if (m) {
    const e = LAYER_NAMES.find(([, g]) => g === m[2]);
    return e ? `model.layers.${m[1]}.${e[0]}.${m[3]}` : undefined;
  }
  const g = /^(.+)\.(weight|bias)$/.exec(name);
  const e = g && GLOBAL_NAMES.find(([, gg]) => gg === g[1]);
  return e ? `${e[0]}.${g![2]}` : undefined;
}

// Tensors some checkpoints carry that the forward pass derives itself.
const IGNORABLE = [/\.rotary_emb\.inv_freq$/, /^rope_freqs\.weight$/];

export class WeightLoader {
  private used = new Set<string>();
  private bytesRead = 0;
  private readonly totalBytes: number;
  constructor(
    readonly source: TensorSource,
    readonly naming: 'hf' | 'gguf',
    readonly backend: Backend,
    /** called after each tensor with the bytes read so far and the total */
    private readonly onProgress?: (done: number, total: number) => void,
  ) {
    this.totalBytes = [...source.tensors.values()].reduce((a, t) => a + t.byteLength, 0);
  }

  private read(name: string, dst: Uint8Array): void {
    this.source.readInto(name, dst);
    this.bytesRead += dst.length;
    this.onProgress?.(this.bytesRead, this.totalBytes);
  }

  private stored(hfName: string): string {
    return this.naming === 'hf' ? hfName : hfToGguf(hfName) ?? hfName;
  }

  has(hfName: string): boolean {
    return this.source.tensors.has(this.stored(hfName));
  }

  private info(hfName: string, shape: readonly number[], why: string) {
    const name = this.stored(hfName);
    const info = this.source.tensors.get(name);
    if (!info) fail(`${this.source.path}: tensor '${name}' is missing (the config asks for it: ${why})`);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      fail(`${this.source.path}: tensor '${name}' has shape [${info.shape.join(', ')}], but the config implies [${shape.join(', ')}] (${why})`);
    }
    this.used.add(name);
    return info;
  }

  /** A weight matrix kept in its stored type. */
  matrix(hfName: string, shape: [number, number], why: string): Weight {
    const info = this.info(hfName, shape, why);
    const w = this.backend.weight(info.dtype, info.shape);
    this.read(info.name, w.bytes);
    return w;
  }

  /** A small vector (norm weight, bias), widened to float32. */
  vector(hfName: string, n: number, why: string): Float32Array {
    const info = this.info(hfName, [n], why);
    const bytes = new Uint8Array(info.byteLength);
    this.read(info.name, bytes);
    const out = this.backend.alloc(n);
    dequantize(info.dtype, bytes, 0, out, 0, n);
    return out;
  }

  /** Mark a tensor as deliberately unused (e.g. a tied lm_head copy). */
  skip(hfName: string): void {
    this.used.add(this.stored(hfName));
  }

  /** Every tensor in the file must have been used: an unknown tensor means an unknown model. */
  finish(): void {
    for (const name of this.source.tensors.keys()) {
      if (this.used.has(name) || IGNORABLE.some((r) => r.test(name))) continue;
      fail(`${this.source.path}: tensor '${name}' is not part of this model architecture; refusing to run a model we do not understand`);
    }
  }
}
