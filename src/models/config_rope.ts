// YaRN rope scaling in a config (how Qwen2.5 and Qwen3 reach 128K): HF `rope_scaling` /
// `rope_parameters` {rope_type: 'yarn', factor, original_max_position_embeddings, ...} or GGUF
// `{arch}.rope.scaling.*`, validated into one shape with transformers' field names. The math that
// uses it is in rope.ts.
import { fail, quote } from '../errors.js';
import type { GgufValue } from '../formats/gguf.js';
import { at, posInt, posNum, type Obj } from './config_fields.js';

/** rope_scaling of type 'yarn', every field resolved (transformers' `_compute_yarn_parameters`). */
export interface YarnScaling {
  rope_type: 'yarn';
  /** context extension factor, > 1: the interpolated frequencies are the original ones / factor */
  factor: number;
  /** the context the model was pretrained with; the ramp between interpolated and original
   * frequencies is placed by it */
  original_max_position_embeddings: number;
  /** rotations over the original context above which a dimension keeps its frequency (default 32) */
  beta_fast: number;
  /** ... and below which it is fully interpolated (default 1) */
  beta_slow: number;
  /** multiplier of cos and sin (so of q and k): default 0.1 ln(factor) + 1 */
  attention_factor: number;
  /** round the ramp's ends to whole dimensions (default true, as llama.cpp always does) */
  truncate: boolean;
}

// transformers' yarn fields (plus the type's two spellings and rope_parameters' rope_theta);
// anything else in a yarn dict is refused by name rather than ignored
const HF_YARN_FIELDS = new Set(['rope_type', 'type', 'rope_theta', 'factor', 'original_max_position_embeddings', 'attention_factor', 'beta_fast', 'beta_slow', 'mscale', 'mscale_all_dim', 'truncate']);

/** transformers' get_mscale: the attention magnitude YaRN's paper suggests for a scale. */
const mscaleOf = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);

/**
 * The context a YaRN model serves: factor x original_max_position_embeddings. This is vLLM's
 * max_model_len for yarn; HF Qwen configs keep max_position_embeddings = original (32768), and
 * llama.cpp defaults to that (GGUF context_length) but runs longer contexts when asked. Serving
 * only the original length would make YaRN pointless, so we follow vLLM.
 */
export function yarnContext(y: YarnScaling): number {
  return Math.floor(y.factor * y.original_max_position_embeddings);
}

/** A yarn dict from config.json (`field` is rope_scaling or rope_parameters), validated; `other`:
 * further fields of that dict the caller reads (Qwen3.5's rotary share and M-RoPE sections). */
export function yarnFromHf(r: Obj, src: string, field: string, other: readonly string[] = []): YarnScaling {
  const f = (k: string) => `${field}.${k}`;
  for (const k of Object.keys(r))
    if (!HF_YARN_FIELDS.has(k) && !other.includes(k)) fail(`${at(src, f(k))} is not a yarn rope-scaling field qwen.ts knows (${[...HF_YARN_FIELDS].join(', ')}); refusing rather than ignoring it`);
  const o: Obj = Object.fromEntries(Object.entries(r).map(([k, v]) => [f(k), v]));
  const factor = posNum(src, o, f('factor'));
  if (!(factor > 1)) fail(`${at(src, f('factor'))} = ${factor}: a yarn factor must be greater than 1`);
  const orig = posInt(src, o, f('original_max_position_embeddings'));
  const opt = (k: string, dflt: number) => posNum(src, o, f(k), dflt);
  // transformers: an explicit attention_factor wins; else mscale / mscale_all_dim (DeepSeek-style)
  // when both are set; else get_mscale(factor)
  const mscale = r.mscale == null ? 0 : opt('mscale', 1),
    mscaleAll = r.mscale_all_dim == null ? 0 : opt('mscale_all_dim', 1);
  const dfltAttn = mscale && mscaleAll ? mscaleOf(factor, mscale) / mscaleOf(factor, mscaleAll) : mscaleOf(factor);
  const truncate = r.truncate ?? true;
  if (typeof truncate !== 'boolean') fail(`${at(src, f('truncate'))} must be true or false`);
  return {
    rope_type: 'yarn',
    factor,
    original_max_position_embeddings: orig,
    // transformers reads beta_fast / beta_slow with `or`: null means the default
    beta_fast: opt('beta_fast', 32),
    beta_slow: opt('beta_slow', 1),
    attention_factor: opt('attention_factor', dfltAttn),
    truncate,
  };
}

/**
 * YaRN from GGUF metadata (`{arch}.rope.scaling.*`), or undefined when the file asks for no
 * scaling. llama.cpp reads type, factor, original_context_length and attn_factor (a multiplier of
 * its magnitude) for every arch. convert_hf_to_gguf.py writes the HF dict's beta_fast / beta_slow /
 * attention_factor as yarn_beta_fast / yarn_beta_slow / yarn_attn_factor, which llama.cpp's qwen2 /
 * qwen3 loaders do not read; we apply them as transformers does (at their defaults, when absent,
 * both agree). Keys neither implements for Qwen are refused unless they hold the no-op value.
 */
export function yarnFromGguf(meta: Map<string, GgufValue>, src: string, arch: string): YarnScaling | undefined {
  const key = (k: string) => `${arch}.rope.scaling.${k}`;
  const bad = (k: string, why: string): never => fail(`${src}: metadata ${quote(key(k))} ${why}`);
  const num = (k: string, dflt?: number): number => {
    const v = meta.get(key(k)) ?? dflt;
    if (v === undefined) bad(k, 'is missing (needed for yarn rope scaling)');
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) bad(k, `must be a positive number, got ${quote(v)}`);
    return v as number;
  };
  const type = meta.get(key('type'));
  if (type === undefined || type === 'none') {
    // llama.cpp reads a missing type as 'linear': a factor other than 1 would then scale positions
    const lf = meta.get(key('factor'));
    if (type === undefined && lf !== undefined && lf !== 0 && lf !== 1)
      bad('factor', `= ${quote(lf)} with no rope.scaling.type: llama.cpp reads that as linear rope scaling, which is not implemented`);
    return undefined;
  }
  if (type !== 'yarn') bad('type', `is ${quote(type)}: only 'yarn' rope scaling is implemented`);
  const factor = num('factor');
  if (!(factor > 1)) bad('factor', `= ${factor}: a yarn factor must be greater than 1`);
  const orig = num('original_context_length');
  if (!Number.isSafeInteger(orig)) bad('original_context_length', `must be an integer, got ${orig}`);
  for (const [k, noop] of [
    ['yarn_ext_factor', 1],
    ['yarn_log_multiplier', 0],
  ] as const) {
    const v = meta.get(key(k));
    if (v !== undefined && v !== noop) bad(k, `= ${quote(v)} is not implemented for ${arch} (only ${noop})`);
  }
  return {
    rope_type: 'yarn',
    factor,
    original_max_position_embeddings: orig,
    beta_fast: num('yarn_beta_fast', 32),
    beta_slow: num('yarn_beta_slow', 1),
    // llama.cpp: magnitude get_mscale(factor) times rope.scaling.attn_factor (default 1)
    attention_factor: num('yarn_attn_factor', mscaleOf(factor)) * num('attn_factor', 1),
    truncate: true,
  };
}
