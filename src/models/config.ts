// Model configuration, typed with Hugging Face's own config.json field names. Read from config.json
// or from GGUF metadata (qwen2.* / qwen3.* keys), validated at load: a field asking for something
// the engine does not implement is refused, naming the field, never silently ignored.
import { fail, quote } from '../errors.js';
import type { GgufValue } from '../formats/gguf.js';
import type { KvType } from '../backend/backend.js';
import { at, posInt, posNum } from './config_fields.js';
import { moeFromGguf, moeFromHf } from './config_moe.js';
import { parseQwen35Hf, qwen35FromGguf } from './config_qwen35.js';
import { yarnContext, yarnFromGguf, yarnFromHf, type YarnScaling } from './config_rope.js';
import { mropeFromGguf, parseVlHf, VL_HF_TYPES } from './config_vl.js';

/** The architecture a config selects (one model file each); HF `qwen3_5` is read as its text model. */
export type ModelType = 'qwen2' | 'qwen3' | 'qwen3_5_text' | 'qwen3_5_moe_text' | 'qwen3_next' | 'qwen2_moe' | 'qwen3_moe' | 'qwen2_5_vl' | 'qwen2_vl';
export const MODEL_TYPES: readonly ModelType[] = ['qwen2', 'qwen3', 'qwen3_5_text', 'qwen3_5_moe_text', 'qwen3_next', 'qwen2_moe', 'qwen3_moe', 'qwen2_5_vl', 'qwen2_vl'];
/** model_type values of config.json, and GGUF general.architecture values, that we read */
const HF_TYPES = ['qwen2', 'qwen3', 'qwen3_5', 'qwen3_5_text', 'qwen3_5_moe', 'qwen3_5_moe_text', 'qwen3_next', 'qwen2_moe', 'qwen3_moe', ...VL_HF_TYPES];
const GGUF_ARCHS = ['qwen2', 'qwen3', 'qwen35', 'qwen35moe', 'qwen3next', 'qwen2moe', 'qwen3moe', 'qwen2vl'];
/** Qwen2-MoE / Qwen3-MoE (config_moe.ts), and GGUF arch -> model_type where the names differ */
const MOE_TYPES: readonly string[] = ['qwen2_moe', 'qwen3_moe'];
// (qwen2vl: llama.cpp's one arch for Qwen2-VL and Qwen2.5-VL, whose language models are the same)
const GGUF_TYPE: Record<string, ModelType> = { qwen2moe: 'qwen2_moe', qwen3moe: 'qwen3_moe', qwen2vl: 'qwen2_5_vl' };
/** the hybrid (Gated DeltaNet + gated attention) architectures: config_qwen35.ts */
const HYBRID_HF = ['qwen3_5', 'qwen3_5_text', 'qwen3_5_moe', 'qwen3_5_moe_text', 'qwen3_next'];
const HYBRID_GGUF = ['qwen35', 'qwen35moe', 'qwen3next'];

export type LayerType = 'linear_attention' | 'full_attention';

/** The fields the engine reads, with HF names; `head_dim`, `rope_theta` and `max_position_embeddings`
 * (with YaRN: factor x original, see config_rope.ts) are resolved. */
export interface QwenConfig {
  model_type: ModelType;
  architectures?: string[];
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  /** YaRN context extension (config_rope.ts); absent: plain RoPE */
  rope_scaling?: YarnScaling;
  hidden_act: 'silu';
  tie_word_embeddings: boolean;
  bos_token_id?: number | null;
  eos_token_id?: number | number[] | null;
  /** stored dtype named by the file (`torch_dtype`, or the newer `dtype`), informational */
  torch_dtype?: string;

  // Qwen3.5 hybrid models only (config_qwen35.ts): Gated DeltaNet ("linear_attention") layers
  layer_types?: LayerType[];
  linear_num_key_heads?: number;
  linear_num_value_heads?: number;
  linear_key_head_dim?: number;
  linear_value_head_dim?: number;
  linear_conv_kernel_dim?: number;
  /** share of head_dim that RoPE rotates */
  partial_rotary_factor?: number;
  /** multi-token-prediction blocks stored with the model (not used for plain decoding) */
  mtp_num_hidden_layers?: number;

  /** M-RoPE (image rows, VISION.md section 6): how many rotary pairs turn by t, h and w (Qwen2.5-VL's
   * mrope_section; Qwen3.5's, interleaved); absent: the model has no M-RoPE and takes no image rows */
  mrope_section?: number[];
  /** Qwen3.5's interleaved layout of the sections (llama.cpp's IMROPE) rather than consecutive ones */
  mrope_interleaved?: boolean;

  // mixture-of-experts models only: routed experts (+ a shared expert)
  num_experts?: number;
  num_experts_per_tok?: number;
  moe_intermediate_size?: number;
  shared_expert_intermediate_size?: number;
  /** renormalise the chosen experts' softmax weights to sum 1 */
  norm_topk_prob?: boolean;
  /** qwen2_moe / qwen3_moe (config_moe.ts): layer i is MoE when (i + 1) % decoder_sparse_step == 0
   * and i is not in mlp_only_layers; the others have a dense FFN of intermediate_size */
  decoder_sparse_step?: number;
  mlp_only_layers?: number[];

  /** not a config.json field: how KV caches store keys and values (LoadOptions.cacheType; default f32) */
  kv_cache_type?: KvType;
}

// Fields that describe training, tooling or features we check explicitly below: accepted.
const KNOWN = new Set([
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
  'use_sliding_window',
  'sliding_window',
  'max_window_layers',
  'layer_types',
  'initializer_range',
  'transformers_version',
  'use_mrope',
  'output_attentions',
  'output_hidden_states',
  'return_dict',
  'is_encoder_decoder',
  'tokenizer_class',
  'unsloth_version',
  'name_or_path',
  'keys_to_ignore_at_inference',
  'vision_config',
  'quantization_config',
  'moe_intermediate_size',
  'num_experts',
  'num_experts_per_tok',
  'decoder_sparse_step',
  'mlp_only_layers',
  'norm_topk_prob',
  'output_router_logits',
  'router_aux_loss_coef',
  'shared_expert_intermediate_size',
  'pretraining_tp',
  'task_specific_params',
  'problem_type',
  'id2label',
  'label2id',
  'finetuning_task',
  'torchscript',
  'chunk_size_feed_forward',
  'prefix',
  'bad_words_ids',
  'add_cross_attention',
  'tie_encoder_decoder',
  'cross_attention_hidden_size',
  'qkv_bias',
]);

/**
 * Longest context a config may claim: far above any Qwen model (Qwen2.5-1M: 1,010,000), low enough
 * that a corrupt value (0xFFFFFFFF) is an error at load rather than a cache size later.
 */
export const MAX_CONTEXT = 1 << 24;

/** `v` as a context length, or an error naming `what` (the field or metadata key). */
export function contextLength(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v > MAX_CONTEXT) fail(`${what} = ${v} is not a plausible context length (at most ${MAX_CONTEXT}); the file is corrupt`);
  return v;
}

/** Validate a parsed config.json object. `src` names the file in messages. */
export function parseHfConfig(raw: unknown, src: string): QwenConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(`${src}: not a JSON object`);
  const o = raw as Record<string, unknown>;
  const mt = o.model_type;
  if (mt === undefined) fail(`${at(src, 'model_type')} is missing`);
  if (!HF_TYPES.includes(mt as string)) {
    fail(`${at(src, 'model_type')} is ${quote(mt)}, which qwen.ts does not implement (supported: ${HF_TYPES.join(', ')})`);
  }
  if (HYBRID_HF.includes(mt as string)) return parseQwen35Hf(o, src);
  if (VL_HF_TYPES.includes(mt as string)) return parseVlHf(o, src, parseHfConfig);
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k) && !k.startsWith('_')) fail(`${at(src, k)} is not a ${String(mt)} config field qwen.ts knows; refusing rather than ignoring it`);
  }
  if (o.vision_config != null) fail(`${at(src, 'vision_config')}: vision towers are not implemented`);
  if (o.quantization_config != null) fail(`${at(src, 'quantization_config')}: pre-quantised HF checkpoints are not supported; use the full-precision model or a GGUF file`);
  const moe = MOE_TYPES.includes(mt as string);
  if (!moe)
    for (const f of ['num_experts', 'moe_intermediate_size']) {
      if (o[f] != null && o[f] !== 0) fail(`${at(src, f)}: mixture-of-experts layers in a ${String(mt)} model are not implemented (model_type qwen2_moe / qwen3_moe are)`);
    }
  if (o.qkv_bias !== undefined && mt !== 'qwen2_moe') fail(`${at(src, 'qkv_bias')} is not a ${String(mt)} config field`);
  if (mt === 'qwen2_moe' && o.qkv_bias === false) fail(`${at(src, 'qkv_bias')} is false: qwen2_moe without q/k/v bias is not implemented`);
  if (o.use_sliding_window === true) fail(`${at(src, 'use_sliding_window')} is true: sliding-window attention is not implemented`);
  if (o.layer_types !== undefined) {
    if (!Array.isArray(o.layer_types) || o.layer_types.some((t) => t !== 'full_attention')) {
      fail(`${at(src, 'layer_types')}: only 'full_attention' layers are implemented, got ${JSON.stringify(o.layer_types)}`);
    }
  }
  if (o.hidden_act !== undefined && o.hidden_act !== 'silu') fail(`${at(src, 'hidden_act')} is ${quote(o.hidden_act)}; only 'silu' is implemented`);
  if (o.use_mrope === true) fail(`${at(src, 'use_mrope')} is true: multimodal RoPE is not implemented`);
  if ((mt === 'qwen3' || mt === 'qwen3_moe') && o.attention_bias === true) fail(`${at(src, 'attention_bias')} is true: qwen3 with q/k/v bias is not implemented`);
  if (mt === 'qwen2' && o.attention_bias === false) fail(`${at(src, 'attention_bias')} is false: qwen2 without q/k/v bias is not implemented`);

  // rope: `rope_theta` + `rope_scaling` (transformers 4.x) or `rope_parameters` (5.x)
  let ropeTheta = o.rope_theta;
  let yarn: YarnScaling | undefined;
  for (const field of ['rope_scaling', 'rope_parameters'] as const) {
    const r = o[field];
    if (r == null) continue;
    if (typeof r !== 'object' || Array.isArray(r)) fail(`${at(src, field)} must be an object or null`);
    const rr = r as Record<string, unknown>;
    const type = rr.rope_type ?? rr.type ?? 'default';
    if (type === 'yarn') {
      if (yarn) fail(`${at(src, field)}: rope_scaling and rope_parameters both ask for yarn; give one`);
      yarn = yarnFromHf(rr, src, field);
    } else if (type !== 'default') fail(`${at(src, field)} asks for rope type ${quote(type)}, which is not implemented (only 'default' and 'yarn')`);
    if (rr.rope_theta !== undefined) {
      if (ropeTheta !== undefined && ropeTheta !== rr.rope_theta) fail(`${at(src, field)}: rope_theta ${String(rr.rope_theta)} contradicts top-level rope_theta ${String(ropeTheta)}`);
      ropeTheta = rr.rope_theta;
    }
  }
  const hidden = posInt(src, o, 'hidden_size');
  const heads = posInt(src, o, 'num_attention_heads');
  const kvHeads = posInt(src, o, 'num_key_value_heads', heads);
  if (heads % kvHeads !== 0) fail(`${at(src, 'num_key_value_heads')} = ${kvHeads} does not divide num_attention_heads = ${heads}`);
  const headDimDefault = hidden % heads === 0 ? hidden / heads : undefined;
  const headDim = posInt(src, o, 'head_dim', headDimDefault);
  if (headDim % 2 !== 0) fail(`${at(src, 'head_dim')} = ${headDim} must be even for RoPE`);
  const tie = o.tie_word_embeddings ?? false;
  if (typeof tie !== 'boolean') fail(`${at(src, 'tie_word_embeddings')} must be true or false`);
  const dtype = o.torch_dtype ?? o.dtype;
  const c: QwenConfig = {
    model_type: mt as ModelType,
    architectures: Array.isArray(o.architectures) ? (o.architectures as string[]) : undefined,
    vocab_size: posInt(src, o, 'vocab_size'),
    hidden_size: hidden,
    // MoE configs need it only for dense layers (config_moe.ts checks)
    intermediate_size: moe && o.intermediate_size == null ? 0 : posInt(src, o, 'intermediate_size'),
    num_hidden_layers: posInt(src, o, 'num_hidden_layers'),
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    max_position_embeddings: yarn
      ? contextLength(yarnContext(yarn), `${at(src, 'rope_scaling')}: factor x original_max_position_embeddings`)
      : contextLength(posInt(src, o, 'max_position_embeddings', 32768), at(src, 'max_position_embeddings')),
    rms_norm_eps: posNum(src, o, 'rms_norm_eps', 1e-6),
    rope_theta: posNum(src, { rope_theta: ropeTheta }, 'rope_theta', 10000),
    ...(yarn && { rope_scaling: yarn }),
    hidden_act: 'silu',
    tie_word_embeddings: tie,
    bos_token_id: (o.bos_token_id as number | null | undefined) ?? undefined,
    eos_token_id: (o.eos_token_id as number | number[] | null | undefined) ?? undefined,
    torch_dtype: typeof dtype === 'string' ? dtype : undefined,
  };
  return moe ? { ...c, ...moeFromHf(o, src, c) } : c;
}

/**
 * Config from GGUF metadata, using llama.cpp's keys for arch qwen2 / qwen3.
 * `vocabRows` and `hasOutput` come from the tensor table (token_embd rows; an `output.weight`).
 */
export function configFromGguf(meta: Map<string, GgufValue>, src: string, vocabRows: number, hasOutput: boolean): QwenConfig {
  const arch = meta.get('general.architecture');
  if (arch === undefined) fail(`${src}: metadata 'general.architecture' is missing`);
  if (!GGUF_ARCHS.includes(arch as string)) {
    fail(`${src}: metadata 'general.architecture' is ${quote(arch)}, which qwen.ts does not implement (supported: ${GGUF_ARCHS.join(', ')})`);
  }
  if (HYBRID_GGUF.includes(arch as string)) return qwen35FromGguf(meta, src, vocabRows, hasOutput);
  const key = (k: string) => `${String(arch)}.${k}`;
  const get = (k: string) => meta.get(key(k));
  const num = (k: string, dflt?: number): number => {
    const v = get(k) ?? dflt;
    if (v === undefined) fail(`${src}: metadata ${quote(key(k))} is missing`);
    if (typeof v !== 'number' || !(v > 0)) fail(`${src}: metadata ${quote(key(k))} must be a positive number, got ${quote(v)}`);
    return v;
  };
  const yarn = yarnFromGguf(meta, src, arch as string);
  const sw = get('attention.sliding_window');
  if (sw !== undefined && sw !== 0) fail(`${src}: metadata '${key('attention.sliding_window')}' = ${quote(sw)}: sliding-window attention is not implemented`);
  const moe = arch === 'qwen2moe' || arch === 'qwen3moe';
  if (!moe && meta.has(key('expert_count')))
    fail(`${src}: metadata '${key('expert_count')}': mixture-of-experts layers in a ${String(arch)} model are not implemented (archs qwen2moe / qwen3moe are)`);
  const hidden = num('embedding_length');
  const heads = num('attention.head_count');
  const kvHeads = num('attention.head_count_kv', heads);
  if (heads % kvHeads !== 0) fail(`${src}: metadata '${key('attention.head_count_kv')}' = ${kvHeads} does not divide head_count = ${heads}`);
  const headDim = num('attention.key_length', hidden / heads);
  const valueLen = num('attention.value_length', headDim);
  if (valueLen !== headDim) fail(`${src}: metadata '${key('attention.value_length')}' = ${valueLen} differs from key_length ${headDim}; not implemented`);
  const eos = meta.get('tokenizer.ggml.eos_token_id');
  const bos = meta.get('tokenizer.ggml.bos_token_id');
  const ff = get('feed_forward_length');
  const c: QwenConfig = {
    model_type: GGUF_TYPE[arch as string] ?? (arch as ModelType),
    vocab_size: vocabRows,
    hidden_size: hidden,
    intermediate_size: moe && ff === undefined ? 0 : num('feed_forward_length'),
    num_hidden_layers: num('block_count'),
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    max_position_embeddings: yarn
      ? contextLength(yarnContext(yarn), `${src}: metadata ${quote(key('rope.scaling.factor'))} x original_context_length`)
      : contextLength(num('context_length', 32768), `${src}: metadata ${quote(key('context_length'))}`),
    rms_norm_eps: num('attention.layer_norm_rms_epsilon', 1e-6),
    rope_theta: num('rope.freq_base', 10000),
    ...(yarn && { rope_scaling: yarn }),
    hidden_act: 'silu',
    tie_word_embeddings: !hasOutput,
    bos_token_id: typeof bos === 'number' ? bos : undefined,
    eos_token_id: typeof eos === 'number' ? eos : undefined,
  };
  if (arch === 'qwen2vl') c.mrope_section = mropeFromGguf(meta, src, arch, headDim, true, false);
  return moe ? { ...c, ...moeFromGguf(meta, src, arch as 'qwen2moe' | 'qwen3moe', typeof ff === 'number' ? ff : undefined) } : c;
}
