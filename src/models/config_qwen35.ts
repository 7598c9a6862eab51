// The hybrid (Gated DeltaNet + gated attention) text configs, validated like config.ts does for
// Qwen2/3: Qwen3.5 dense (HF `qwen3_5` with a `text_config`, `qwen3_5_text`, GGUF arch `qwen35`),
// Qwen3.5-MoE (HF `qwen3_5_moe` / `qwen3_5_moe_text`, GGUF `qwen35moe`) and Qwen3-Next (HF
// `qwen3_next`, GGUF `qwen3next`): the hybrid fields (layer_types, linear_*, partial rotary) and
// the experts (num_experts, ...). The spec is ../shared/design/QWEN35.md §1, §7 and §10.
import { fail, quote } from '../errors.js';
import type { GgufValue } from '../formats/gguf.js';
import { at, posInt, posNum, type Obj } from './config_fields.js';
import { contextLength, type LayerType, type ModelType, type QwenConfig } from './config.js';
import { yarnContext, yarnFromGguf, yarnFromHf } from './config_rope.js';
import { checkSections, mropeFromGguf } from './config_vl.js';

// text_config fields read here or knowingly ignored (training, dtype, vision and MTP settings)
const KNOWN_TEXT = new Set([
  'model_type',
  'architectures',
  'vocab_size',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
  'max_position_embeddings',
  'rms_norm_eps',
  'rope_theta',
  'rope_scaling',
  'rope_parameters',
  'partial_rotary_factor',
  'mrope_section',
  'mrope_interleaved',
  'hidden_act',
  'tie_word_embeddings',
  'bos_token_id',
  'eos_token_id',
  'pad_token_id',
  'torch_dtype',
  'dtype',
  'use_cache',
  'attention_dropout',
  'attention_bias',
  'attn_output_gate',
  'layer_types',
  'full_attention_interval',
  'linear_num_key_heads',
  'linear_num_value_heads',
  'linear_key_head_dim',
  'linear_value_head_dim',
  'linear_conv_kernel_dim',
  'mamba_ssm_dtype',
  'initializer_range',
  'mlp_only_layers',
  'decoder_sparse_step',
  'mtp_num_hidden_layers',
  'mtp_use_dedicated_embeddings',
  'transformers_version',
  'output_router_logits',
  'num_experts',
  'num_experts_per_tok',
  'moe_intermediate_size',
  'shared_expert_intermediate_size',
  'router_aux_loss_coef',
  'norm_topk_prob',
  'use_sliding_window',
  'sliding_window',
  'max_window_layers',
]);
// fields of the multimodal wrapper (Qwen3_5ForConditionalGeneration) around text_config
const KNOWN_OUTER = new Set([
  'model_type',
  'architectures',
  'text_config',
  'vision_config',
  'tie_word_embeddings',
  'dtype',
  'torch_dtype',
  'image_token_id',
  'video_token_id',
  'vision_start_token_id',
  'vision_end_token_id',
  'transformers_version',
  'bos_token_id',
  'eos_token_id',
  'pad_token_id',
  'use_cache',
]);

/** The checks shared by both sources, on the resolved values. */
function checkHybrid(c: QwenConfig, src: string, field: (hf: string) => string): QwenConfig {
  const nk = c.linear_num_key_heads!,
    nv = c.linear_num_value_heads!;
  if (nv % nk !== 0) fail(`${src}: ${field('linear_num_value_heads')} = ${nv} is not a multiple of ${field('linear_num_key_heads')} = ${nk}`);
  if (c.layer_types!.length !== c.num_hidden_layers) fail(`${src}: ${field('layer_types')} has ${c.layer_types!.length} entries for ${c.num_hidden_layers} layers`);
  if (c.num_attention_heads % c.num_key_value_heads !== 0) fail(`${src}: ${field('num_key_value_heads')} = ${c.num_key_value_heads} does not divide num_attention_heads = ${c.num_attention_heads}`);
  const exact = c.head_dim * c.partial_rotary_factor!,
    rot = Math.round(exact); // a ratio of two integers may not multiply back exactly
  if (Math.abs(rot - exact) > 1e-6 || rot % 2 !== 0 || rot <= 0 || rot > c.head_dim)
    fail(`${src}: ${field('partial_rotary_factor')} = ${c.partial_rotary_factor} gives ${+exact.toFixed(6)} rotary dims of head_dim ${c.head_dim}; it must be a positive even integer`);
  if (c.num_experts !== undefined && c.num_experts_per_tok! > c.num_experts)
    fail(`${src}: ${field('num_experts_per_tok')} = ${c.num_experts_per_tok} is more than ${field('num_experts')} = ${c.num_experts}`);
  return c;
}

/** config.json model_type -> the text model's type, and the multimodal wrapper of each */
const TEXT_TYPE: Record<string, ModelType> = {
  qwen3_5: 'qwen3_5_text',
  qwen3_5_text: 'qwen3_5_text',
  qwen3_5_moe: 'qwen3_5_moe_text',
  qwen3_5_moe_text: 'qwen3_5_moe_text',
  qwen3_next: 'qwen3_next',
};
const WRAPPERS = new Set(['qwen3_5', 'qwen3_5_moe']);

export function parseQwen35Hf(outer: Obj, src: string): QwenConfig {
  let o = outer;
  const mt = String(outer.model_type),
    text = TEXT_TYPE[mt]!;
  if (WRAPPERS.has(mt) && outer.text_config === undefined) {
    // some exporters flatten the text model's fields into the top level
    const { vision_config: _v, image_token_id: _i, video_token_id: _vi, vision_start_token_id: _s, vision_end_token_id: _e, ...rest } = outer;
    o = { ...rest, model_type: text };
  } else if (WRAPPERS.has(mt)) {
    for (const k of Object.keys(outer)) if (!KNOWN_OUTER.has(k) && !k.startsWith('_')) fail(`${at(src, k)} is not a ${mt} config field qwen.ts knows; refusing rather than ignoring it`);
    const t = outer.text_config;
    if (typeof t !== 'object' || t === null || Array.isArray(t)) fail(`${at(src, 'text_config')} must be an object (model_type ${mt} keeps the language model's settings there)`);
    o = t as Obj;
    src = `${src} text_config`;
    if (o.model_type !== undefined && o.model_type !== text) fail(`${at(src, 'model_type')} is ${quote(o.model_type)}, expected ${quote(text)}`);
  }
  for (const k of Object.keys(o)) if (!KNOWN_TEXT.has(k) && !k.startsWith('_')) fail(`${at(src, k)} is not a ${text} config field qwen.ts knows; refusing rather than ignoring it`);
  const moe = text !== 'qwen3_5_text';
  if (!moe) for (const f of ['num_experts', 'moe_intermediate_size']) if (o[f] != null && o[f] !== 0) fail(`${at(src, f)}: mixture-of-experts Qwen3.5 is not implemented yet`);
  if (o.use_sliding_window === true) fail(`${at(src, 'use_sliding_window')} is true: sliding-window attention is not implemented`);
  if (o.hidden_act !== undefined && o.hidden_act !== 'silu') fail(`${at(src, 'hidden_act')} is ${quote(o.hidden_act)}; only 'silu' is implemented`);
  if (o.attention_bias === true) fail(`${at(src, 'attention_bias')} is true: Qwen3.5 with q/k/v bias is not implemented`);
  if (o.attn_output_gate === false) fail(`${at(src, 'attn_output_gate')} is false: Qwen3.5 attention without the output gate is not implemented`);
  if (o.mamba_ssm_dtype !== undefined && o.mamba_ssm_dtype !== 'float32') fail(`${at(src, 'mamba_ssm_dtype')} is ${quote(o.mamba_ssm_dtype)}; the recurrent state is kept in float32`);
  if (o.linear_key_head_dim !== undefined && o.linear_value_head_dim !== undefined && o.linear_key_head_dim !== o.linear_value_head_dim) {
    fail(
      `${at(src, 'linear_value_head_dim')} = ${String(o.linear_value_head_dim)} differs from linear_key_head_dim = ${String(o.linear_key_head_dim)}; not implemented (llama.cpp requires them equal too)`,
    );
  }

  // rope: rope_parameters (transformers 5) or top-level fields; M-RoPE sections are only used for
  // images: text positions are equal on all three axes, which makes it plain partial NEOX RoPE
  const ropeField = o.rope_parameters != null ? 'rope_parameters' : 'rope_scaling';
  const rp = (o[ropeField] ?? {}) as Obj;
  if (typeof rp !== 'object' || Array.isArray(rp)) fail(`${at(src, ropeField)} must be an object`);
  const ropeType = rp.rope_type ?? rp.type ?? 'default';
  // YaRN as for Qwen2/3 (llama.cpp's rope_multi applies the same to text positions), over the rotated dims
  const yarn = ropeType === 'yarn' ? yarnFromHf(rp, src, ropeField, ['partial_rotary_factor', 'mrope_section', 'mrope_interleaved']) : undefined;
  if (!yarn && ropeType !== 'default') fail(`${at(src, ropeField)} asks for rope type ${quote(ropeType)}, which is not implemented (only 'default' and 'yarn')`);
  const theta = posNum(src, { t: rp.rope_theta ?? o.rope_theta }, 't', 10000);
  const prf = posNum(src, { partial_rotary_factor: rp.partial_rotary_factor ?? o.partial_rotary_factor }, 'partial_rotary_factor', 0.25);

  const layers = posInt(src, o, 'num_hidden_layers');
  const interval = posInt(src, o, 'full_attention_interval', 4);
  let types: LayerType[];
  if (o.layer_types === undefined) types = Array.from({ length: layers }, (_, i) => ((i + 1) % interval === 0 ? 'full_attention' : 'linear_attention'));
  else {
    if (!Array.isArray(o.layer_types) || o.layer_types.some((t) => t !== 'full_attention' && t !== 'linear_attention')) {
      fail(`${at(src, 'layer_types')} must list 'linear_attention' / 'full_attention' per layer, got ${JSON.stringify(o.layer_types)}`);
    }
    types = o.layer_types as LayerType[];
  }
  const heads = posInt(src, o, 'num_attention_heads');
  const experts = moe ? hfExperts(o, src, text) : {};
  const tie = outer.tie_word_embeddings ?? o.tie_word_embeddings ?? false;
  if (typeof tie !== 'boolean') fail(`${at(src, 'tie_word_embeddings')} must be true or false`);
  const dtype = o.dtype ?? o.torch_dtype ?? outer.dtype ?? outer.torch_dtype;
  const c: QwenConfig = {
    model_type: text,
    architectures: Array.isArray(outer.architectures) ? (outer.architectures as string[]) : undefined,
    vocab_size: posInt(src, o, 'vocab_size'),
    hidden_size: posInt(src, o, 'hidden_size'),
    // MoE models have no dense FFN (Qwen3.5-MoE dropped the field; Qwen3-Next's is unused)
    intermediate_size: moe ? 0 : posInt(src, o, 'intermediate_size'),
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: posInt(src, o, 'num_key_value_heads', heads),
    head_dim: posInt(src, o, 'head_dim'),
    max_position_embeddings: yarn
      ? contextLength(yarnContext(yarn), `${at(src, ropeField)}: factor x original_max_position_embeddings`)
      : contextLength(posInt(src, o, 'max_position_embeddings', 32768), `${src}: field 'max_position_embeddings'`),
    rms_norm_eps: posNum(src, o, 'rms_norm_eps', 1e-6),
    rope_theta: theta,
    ...(yarn && { rope_scaling: yarn }),
    hidden_act: 'silu',
    tie_word_embeddings: tie,
    bos_token_id: (o.bos_token_id as number | null | undefined) ?? undefined,
    eos_token_id: (o.eos_token_id as number | number[] | null | undefined) ?? undefined,
    torch_dtype: typeof dtype === 'string' ? dtype : undefined,
    layer_types: types,
    linear_num_key_heads: posInt(src, o, 'linear_num_key_heads'),
    linear_num_value_heads: posInt(src, o, 'linear_num_value_heads'),
    linear_key_head_dim: posInt(src, o, 'linear_key_head_dim'),
    linear_value_head_dim: posInt(src, o, 'linear_value_head_dim'),
    linear_conv_kernel_dim: posInt(src, o, 'linear_conv_kernel_dim', 4),
    partial_rotary_factor: prf,
    mtp_num_hidden_layers: o.mtp_num_hidden_layers === undefined || o.mtp_num_hidden_layers === 0 ? 0 : posInt(src, o, 'mtp_num_hidden_layers'),
    ...experts,
  };
  checkHybrid(c, src, (f) => `field ${quote(f)}`);
  return { ...c, ...hfMrope(o, rp, src, ropeField, Math.round(c.head_dim * prf)) }; // after the rotary dims are known good
}

/**
 * Qwen3.5's M-RoPE sections (used for image rows only): `mrope_section` of the rope dict (or the
 * top level), interleaved as llama.cpp's IMROPE; none for Qwen3-Next (plain NEOX RoPE).
 */
function hfMrope(o: Obj, rp: Obj, src: string, field: string, nRot: number): Partial<QwenConfig> {
  const ms = rp.mrope_section ?? o.mrope_section;
  if (ms === undefined) return {};
  const il = rp.mrope_interleaved ?? o.mrope_interleaved ?? true;
  if (il !== true) fail(`${at(src, field)}: mrope_interleaved ${quote(il)}: Qwen3.5 with consecutive (not interleaved) M-RoPE sections is not implemented`);
  return mropeSections(checkSections(ms, nRot, `${at(src, field)}: mrope_section`, true));
}

/** The expert fields of a qwen3_5_moe_text / qwen3_next config (spec §1, §7). */
function hfExperts(o: Obj, src: string, text: ModelType): Partial<QwenConfig> {
  // every layer is MoE: Qwen3.5-MoE removed the dense-layer fields, and llama.cpp's qwen3next
  // requires a router in every layer
  const dense = Array.isArray(o.mlp_only_layers) ? o.mlp_only_layers.length > 0 : o.mlp_only_layers != null;
  if (dense) fail(`${at(src, 'mlp_only_layers')} is ${JSON.stringify(o.mlp_only_layers)}: dense layers in a ${text} model are not implemented (only [])`);
  if (o.decoder_sparse_step !== undefined && o.decoder_sparse_step !== 1)
    fail(`${at(src, 'decoder_sparse_step')} is ${JSON.stringify(o.decoder_sparse_step)}: dense layers in a ${text} model are not implemented (only 1)`);
  // Qwen3.5-MoE always renormalises the top-k weights (its config has no norm_topk_prob); Qwen3-Next
  // follows the field
  const norm = o.norm_topk_prob ?? true;
  if (typeof norm !== 'boolean') fail(`${at(src, 'norm_topk_prob')} must be true or false`);
  if (text === 'qwen3_5_moe_text' && !norm) fail(`${at(src, 'norm_topk_prob')} is false: Qwen3.5-MoE always renormalises the chosen experts' weights`);
  return {
    num_experts: posInt(src, o, 'num_experts'),
    num_experts_per_tok: posInt(src, o, 'num_experts_per_tok'),
    moe_intermediate_size: posInt(src, o, 'moe_intermediate_size'),
    shared_expert_intermediate_size: posInt(src, o, 'shared_expert_intermediate_size'),
    norm_topk_prob: norm,
  };
}

const GGUF_TYPE: Record<string, ModelType> = { qwen35: 'qwen3_5_text', qwen35moe: 'qwen3_5_moe_text', qwen3next: 'qwen3_next' };

/** Config from the metadata of a GGUF file of arch `qwen35`, `qwen35moe` or `qwen3next` (llama.cpp's
 * keys, §10 of the spec). */
export function qwen35FromGguf(meta: Map<string, GgufValue>, src: string, vocabRows: number, hasOutput: boolean): QwenConfig {
  const arch = String(meta.get('general.architecture')),
    type = GGUF_TYPE[arch]!,
    moe = type !== 'qwen3_5_text';
  const key = (k: string) => `${arch}.${k}`;
  const name = (hf: string) => `metadata '${key(HF_TO_GGUF[hf] ?? hf)}'`;
  const n = (k: string, dflt?: number): number => {
    let v = meta.get(key(k)) ?? dflt;
    // llama.cpp reads some widths as a number or a per-layer array (get_key_or_arr): one value for all
    if (Array.isArray(v) && v.length > 0 && v.every((x) => x === (v as unknown[])[0])) v = v[0] as GgufValue;
    if (v === undefined) fail(`${src}: metadata ${quote(key(k))} is missing`);
    if (typeof v !== 'number' || !(v > 0)) fail(`${src}: metadata ${quote(key(k))} must be a positive number, got ${quote(v)}`);
    return v;
  };
  const yarn = yarnFromGguf(meta, src, arch);
  const mtpRaw = meta.get(key('nextn_predict_layers')) ?? 0;
  if (typeof mtpRaw !== 'number' || !Number.isInteger(mtpRaw) || mtpRaw < 0) fail(`${src}: metadata '${key('nextn_predict_layers')}' must be a non-negative integer, got ${quote(mtpRaw)}`);
  const mtp = mtpRaw;
  const blocks = n('block_count');
  const layers = blocks - mtp; // the MTP blocks are numbered after the decoder's (spec §8)
  if (!(layers > 0)) fail(`${src}: metadata '${key('nextn_predict_layers')}' = ${mtp} leaves no decoder layers of block_count ${blocks}`);
  const interval = n('full_attention_interval', 4);
  const rec = meta.get(key('attention.recurrent_layers'));
  if (rec !== undefined && (!Array.isArray(rec) || rec.length < layers)) fail(`${src}: metadata '${key('attention.recurrent_layers')}' must be a bool array of block_count entries`);
  const types: LayerType[] = Array.from({ length: layers }, (_, i) => ((rec ? Boolean((rec as unknown[])[i]) : (i + 1) % interval !== 0) ? 'linear_attention' : 'full_attention'));
  const headDim = n('attention.key_length');
  if (n('attention.value_length', headDim) !== headDim) fail(`${src}: metadata '${key('attention.value_length')}' differs from key_length; not implemented`);
  const dk = n('ssm.state_size'),
    nk = n('ssm.group_count'),
    nv = n('ssm.time_step_rank');
  const inner = n('ssm.inner_size');
  if (inner !== nv * dk) fail(`${src}: metadata '${key('ssm.inner_size')}' = ${inner} is not time_step_rank x state_size = ${nv * dk}`);
  const rot = n('rope.dimension_count', headDim / 4);
  const eos = meta.get('tokenizer.ggml.eos_token_id');
  const bos = meta.get('tokenizer.ggml.bos_token_id');
  if (!moe && meta.has(key('expert_count'))) fail(`${src}: metadata '${key('expert_count')}': mixture-of-experts layers are not implemented for qwen35`);
  const heads = n('attention.head_count');
  let experts: Partial<QwenConfig> = {};
  if (moe) {
    // llama.cpp's qwen35moe / qwen3next graphs: softmax gating, always renormalised, weights unscaled
    const scale = meta.get(key('expert_weights_scale'));
    if (scale !== undefined && scale !== 0 && scale !== 1) fail(`${src}: metadata '${key('expert_weights_scale')}' = ${quote(scale)}: scaled expert weights are not implemented`);
    const gating = meta.get(key('expert_gating_func'));
    if (gating !== undefined && gating !== 1) fail(`${src}: metadata '${key('expert_gating_func')}' = ${quote(gating)}: only softmax gating (1) is implemented`);
    const ff = meta.get(key('feed_forward_length'));
    experts = {
      num_experts: n('expert_count'),
      num_experts_per_tok: n('expert_used_count'),
      moe_intermediate_size: n('expert_feed_forward_length'),
      // llama.cpp: the shared expert's width defaults to the dense width
      shared_expert_intermediate_size: n('expert_shared_feed_forward_length', typeof ff === 'number' && ff > 0 ? ff : undefined),
      norm_topk_prob: true,
    };
  }
  const c: QwenConfig = {
    model_type: type,
    vocab_size: vocabRows,
    hidden_size: n('embedding_length'),
    intermediate_size: moe ? 0 : n('feed_forward_length'),
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: n('attention.head_count_kv', heads),
    head_dim: headDim,
    max_position_embeddings: yarn
      ? contextLength(yarnContext(yarn), `${src}: metadata ${quote(key('rope.scaling.factor'))} x original_context_length`)
      : contextLength(n('context_length', 32768), `${src}: metadata ${quote(key('context_length'))}`),
    rms_norm_eps: n('attention.layer_norm_rms_epsilon', 1e-6),
    rope_theta: n('rope.freq_base', 10000),
    ...(yarn && { rope_scaling: yarn }),
    hidden_act: 'silu',
    tie_word_embeddings: !hasOutput,
    bos_token_id: typeof bos === 'number' ? bos : undefined,
    eos_token_id: typeof eos === 'number' ? eos : undefined,
    layer_types: types,
    linear_num_key_heads: nk,
    linear_num_value_heads: nv,
    linear_key_head_dim: dk,
    linear_value_head_dim: dk, // llama.cpp: head_v = head_k = state_size
    linear_conv_kernel_dim: n('ssm.conv_kernel'),
    partial_rotary_factor: rot / headDim,
    mtp_num_hidden_layers: mtp,
    ...experts,
  };
  checkHybrid(c, src, name);
  return type === 'qwen3_next' ? c : { ...c, ...mropeSections(mropeFromGguf(meta, src, arch, rot, false, true)) }; // after the rotary dims are known good
}

const mropeSections = (s: number[] | undefined): Partial<QwenConfig> => (s ? { mrope_section: s, mrope_interleaved: true } : {});

// GGUF keys of the fields checkHybrid names
const HF_TO_GGUF: Record<string, string> = {
  linear_num_value_heads: 'ssm.time_step_rank',
  linear_num_key_heads: 'ssm.group_count',
  layer_types: 'attention.recurrent_layers',
  num_key_value_heads: 'attention.head_count_kv',
  partial_rotary_factor: 'rope.dimension_count',
  num_experts: 'expert_count',
  num_experts_per_tok: 'expert_used_count',
};
