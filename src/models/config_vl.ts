// The language model of Qwen2-VL / Qwen2.5-VL (HF model_type `qwen2_vl` / `qwen2_5_vl`, GGUF arch
// `qwen2vl`): a Qwen2 decoder whose RoPE turns by three positions (t, h, w) per token, M-RoPE,
// with `mrope_section` saying how many rotary pairs take each. Older config.json files keep the
// text fields at the top level, newer ones (transformers >= 4.52) in `text_config`; the rope dict is
// `rope_scaling: {type: 'mrope', mrope_section: [16, 24, 24]}` (or `rope_parameters` with
// `rope_type: 'default'`). Also the M-RoPE sections of GGUF files (`{arch}.rope.dimension_sections`,
// Qwen3.5's too). Spec: ../shared/design/VISION.md section 6.
import { fail, quote } from '../errors.js';
import type { GgufValue } from '../formats/gguf.js';
import { at, type Obj } from './config_fields.js';
import type { QwenConfig } from './config.js';

/** config.json model_type values of the VL models read here */
export const VL_HF_TYPES: readonly string[] = ['qwen2_5_vl', 'qwen2_vl'];

// fields of the multimodal wrapper that are not the language model's: the tower and token ids
const VISION_FIELDS = ['vision_config', 'image_token_id', 'video_token_id', 'vision_start_token_id', 'vision_end_token_id', 'vision_token_id'];
// outer fields a config with text_config may hold beside it (the rest must be text fields, equal
// to text_config's where both give one)
const OUTER_ONLY = new Set(['model_type', 'architectures', 'text_config', 'transformers_version', ...VISION_FIELDS]);
// fields a wrapper may save at both levels with different spellings: merged, not compared
const SAVED_TWICE = new Set(['tie_word_embeddings', 'rope_scaling', 'rope_parameters', 'torch_dtype', 'dtype']);
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A qwen2_5_vl / qwen2_vl config.json -> the Qwen2 text config `parseText` validates (model_type
 * 'qwen2', no vision fields, the rope dict without its M-RoPE part), then the VL model_type and the
 * sections on top.
 */
export function parseVlHf(outer: Obj, src: string, parseText: (o: Obj, src: string) => QwenConfig): QwenConfig {
  const mt = String(outer.model_type);
  let o: Obj = {};
  let tsrc = src;
  for (const [k, v] of Object.entries(outer)) if (!OUTER_ONLY.has(k)) o[k] = v;
  if (outer.text_config !== undefined) {
    const t = outer.text_config;
    if (typeof t !== 'object' || t === null || Array.isArray(t)) fail(`${at(src, 'text_config')} must be an object (the language model's settings)`);
    tsrc = `${src} text_config`;
    const tc = t as Obj;
    if (tc.model_type !== undefined && tc.model_type !== `${mt}_text` && tc.model_type !== mt) fail(`${at(tsrc, 'model_type')} is ${quote(tc.model_type)}, expected ${quote(`${mt}_text`)}`);
    for (const [k, v] of Object.entries(tc)) {
      if (k in o && JSON.stringify(o[k]) !== JSON.stringify(v) && !SAVED_TWICE.has(k))
        fail(`${at(tsrc, k)} is ${quote(v)} but the top level gives ${quote(o[k])}; which one the model means is unclear`);
    }
    // the wrapper's tie_word_embeddings is the one transformers applies to lm_head; a rope dict saved
    // at both levels (one spelling the type 'mrope', the other 'default') is read as one
    const rope = (f: string) => (isObj(o[f]) || isObj(tc[f]) ? { [f]: { ...(isObj(o[f]) ? o[f] : {}), ...(isObj(tc[f]) ? tc[f] : {}) } } : {});
    o = { ...o, ...tc, ...rope('rope_scaling'), ...rope('rope_parameters'), ...(outer.tie_word_embeddings !== undefined && { tie_word_embeddings: outer.tie_word_embeddings }) };
  }
  for (const f of VISION_FIELDS) delete o[f];
  o.model_type = 'qwen2';
  delete o.use_mrope; // transformers' Qwen2-VL text config writes use_mrope: false beside mrope_section; the sections decide
  // the rope dict: its M-RoPE part here, the rest (theta, YaRN) as for Qwen2
  let section: unknown;
  for (const field of ['rope_scaling', 'rope_parameters'] as const) {
    const r = o[field];
    if (r == null || typeof r !== 'object' || Array.isArray(r)) continue; // parseText reports a bad one
    const { mrope_section: ms, ...rest } = r as Obj;
    if (ms !== undefined) {
      if (section !== undefined && JSON.stringify(section) !== JSON.stringify(ms)) fail(`${at(tsrc, field)}: mrope_section ${quote(ms)} contradicts ${quote(section)}`);
      section = ms;
    }
    const type = rest.rope_type ?? rest.type;
    if (type === 'mrope') {
      delete rest.type;
      rest.rope_type = 'default';
    }
    o[field] = rest;
  }
  if (section === undefined) fail(`${at(tsrc, 'rope_scaling')}: a ${mt} model needs rope_scaling.mrope_section (the rotary pairs of t, h and w), which is missing`);
  const c = parseText(o, tsrc);
  return { ...c, model_type: mt as QwenConfig['model_type'], mrope_section: checkSections(section, c.head_dim, `${at(tsrc, 'rope_scaling')}: mrope_section`, false) };
}

/**
 * M-RoPE sections [t, h, w] (a fourth of 0 allowed: GGUF pads them to 4) that cover the nRot/2
 * rotary pairs exactly, as HF's apply_multimodal_rotary_pos_emb needs; `what` names the field.
 */
export function checkSections(v: unknown, nRot: number, what: string, interleaved: boolean): number[] {
  const ok = Array.isArray(v) && (v.length === 3 || (v.length === 4 && v[3] === 0)) && v.every((x) => Number.isSafeInteger(x) && x >= 0);
  if (!ok) fail(`${what} must be three non-negative integers [t, h, w], got ${quote(v)}`);
  const s = (v as number[]).slice(0, 3);
  const sum = s[0]! + s[1]! + s[2]!;
  if (sum * 2 !== nRot) fail(`${what} ${JSON.stringify(s)} covers ${sum} rotary pairs, but the model rotates ${nRot / 2} (${interleaved ? 'rotary dims' : 'head_dim'} ${nRot} / 2)`);
  return s;
}

/**
 * `{arch}.rope.dimension_sections` of a GGUF file (INT32[4], the fourth 0), checked against the
 * nRot rotated dims; undefined when absent and not `required`.
 */
export function mropeFromGguf(meta: Map<string, GgufValue>, src: string, arch: string, nRot: number, required: boolean, interleaved: boolean): number[] | undefined {
  const key = `${arch}.rope.dimension_sections`;
  const v = meta.get(key);
  if (v === undefined) {
    if (required) fail(`${src}: metadata '${key}' is missing (a ${arch} model's M-RoPE sections)`);
    return undefined;
  }
  return checkSections(v, nRot, `${src}: metadata '${key}'`, interleaved);
}
