// Qwen3.5 HF checkpoint -> GGUF, as llama.cpp's converter writes it (../shared/design/QWEN35.md
// §9-10): GGUF names, zero-centred norms stored as 1 + w, A_log stored as A = -exp(A_log), the
// depthwise conv squeezed to [C, K], and every value-head-indexed tensor reordered from
// transformers' grouped order to llama.cpp's tiled one (GGUF head m*nk + g = HF head g*r + m).
// The vision tower and the MTP block are not written (a text-only GGUF without MTP layers).
import { nodeFs, nodePath } from '../node_builtin.js';
import type { QwenConfig } from '../models/config.js';
import { hfToGguf } from '../models/weights.js';
import type { GgufKV } from './gguf.js';
import { qwen35HfToGgufValues } from './qwen35_values.js';

/** Tensors of an HF Qwen3.5 checkpoint that a text GGUF leaves out. */
export const QWEN35_NOT_WRITTEN = /^(model\.visual\.|mtp\.)/;

/** The HF name as the text model's (`model.language_model.x` -> `model.x`). */
const textName = (n: string) => n.replace(/^model\.language_model\./, 'model.');

/** GGUF name of an HF Qwen3.5 tensor, undefined for one we do not know. */
export function qwen35GgufName(hf: string): string | undefined {
  return hfToGguf(textName(hf), 'qwen3_5_text');
}

/** The GGUF shape (PyTorch order) of an HF tensor: the depthwise conv [C, 1, K] becomes [C, K]. */
export function qwen35GgufShape(hf: string, shape: readonly number[]): number[] {
  return /\.linear_attn\.conv1d\.weight$/.test(hf) ? shape.filter((d) => d !== 1) : [...shape];
}

/**
 * The GGUF shape and values of one HF tensor (float data in HF layout, rewritten in place where
 * the order does not change): the conversions above. `shape` is the HF shape, PyTorch order.
 */
export function qwen35GgufTensor(hf: string, shape: readonly number[], data: Float32Array, c: QwenConfig): { shape: number[]; data: Float32Array } {
  const name = textName(hf);
  const nk = c.linear_num_key_heads!,
    nv = c.linear_num_value_heads!,
    dk = c.linear_key_head_dim!,
    dv = c.linear_value_head_dim!;
  let out = data;
  const outShape = qwen35GgufShape(name, shape);
  qwen35HfToGgufValues(name, out);
  if (nv === nk || !/\.linear_attn\./.test(name)) return { shape: outShape, data: out };
  // value-head order: grouped (HF) -> tiled (GGUF)
  const r = nv / nk,
    V0 = 2 * nk * dk; // the V rows / channels start after q and k
  const tiled = (j: number) => (j % nk) * r + Math.floor(j / nk); // HF head of GGUF head j
  const cols = outShape.length > 1 ? outShape[outShape.length - 1]! : 1;
  /** rows [first, first + nv*per) of a row-major [*, cols] array, permuted by head blocks of `per` rows */
  const permuteRows = (src: Float32Array, first: number, per: number) => {
    const dst = Float32Array.from(src);
    for (let j = 0; j < nv; j++) dst.set(src.subarray((first + tiled(j) * per) * cols, (first + (tiled(j) + 1) * per) * cols), (first + j * per) * cols);
    return dst;
  };
  if (/\.in_proj_qkv\.weight$|\.conv1d\.weight$/.test(name)) out = permuteRows(out, V0, dv);
  else if (/\.in_proj_z\.weight$/.test(name)) out = permuteRows(out, 0, dv);
  else if (/\.in_proj_[ab]\.weight$|\.dt_bias$|\.A_log$/.test(name)) out = permuteRows(out, 0, 1);
  else if (/\.out_proj\.weight$/.test(name)) {
    // [D, nv*dv]: the input columns move, by head blocks of dv
    const [D, N] = outShape as [number, number],
      src = out;
    out = new Float32Array(src.length);
    for (let d = 0; d < D; d++) for (let j = 0; j < nv; j++) out.set(src.subarray(d * N + tiled(j) * dv, d * N + (tiled(j) + 1) * dv), d * N + j * dv);
  }
  return { shape: outShape, data: out };
}

/** llama.cpp's qwen35.* hyper-parameter keys for this config (the folder's config.json gives the
 * M-RoPE sections, which text generation does not use but llama.cpp requires). */
export function qwen35GgufMetadata(c: QwenConfig, source: string): GgufKV[] {
  let sections = [11, 11, 10];
  try {
    const folder = nodeFs().statSync(source).isDirectory() ? source : nodePath().dirname(source); // the folder, or a file in it
    // biome-ignore lint/suspicious/noExplicitAny: a config.json of any shape, read defensively below
    const raw = JSON.parse(nodeFs().readFileSync(nodePath().join(folder, 'config.json'), 'utf8')) as Record<string, any>;
    const t = raw.text_config ?? raw;
    const s = (t.rope_parameters ?? t.rope_scaling)?.mrope_section ?? t.mrope_section;
    if (Array.isArray(s) && s.length === 3 && s.every((x) => Number.isInteger(x))) sections = s;
  } catch {
    /* config.json was read and validated before; keep the default */
  }
  const types = c.layer_types!;
  const firstFull = types.indexOf('full_attention');
  const u32 = (key: string, value: number): GgufKV => ({ key: `qwen35.${key}`, type: 'u32', value });
  return [
    u32('context_length', c.max_position_embeddings),
    u32('embedding_length', c.hidden_size),
    u32('block_count', c.num_hidden_layers),
    u32('feed_forward_length', c.intermediate_size),
    u32('attention.head_count', c.num_attention_heads),
    u32('attention.head_count_kv', c.num_key_value_heads),
    u32('attention.key_length', c.head_dim),
    u32('attention.value_length', c.head_dim),
    { key: 'qwen35.rope.freq_base', type: 'f32', value: c.rope_theta },
    { key: 'qwen35.attention.layer_norm_rms_epsilon', type: 'f32', value: c.rms_norm_eps },
    { key: 'qwen35.rope.dimension_sections', type: { array: 'i32' }, value: [...sections, 0] },
    u32('ssm.conv_kernel', c.linear_conv_kernel_dim!),
    u32('ssm.state_size', c.linear_key_head_dim!),
    u32('ssm.group_count', c.linear_num_key_heads!),
    u32('ssm.time_step_rank', c.linear_num_value_heads!),
    u32('ssm.inner_size', c.linear_num_value_heads! * c.linear_value_head_dim!),
    { key: 'qwen35.attention.recurrent_layers', type: { array: 'bool' }, value: types.map((t) => t === 'linear_attention') },
    u32('full_attention_interval', firstFull >= 0 ? firstFull + 1 : 4),
    u32('rope.dimension_count', Math.round(c.head_dim * c.partial_rotary_factor!)),
  ];
}
