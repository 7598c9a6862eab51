// Which type each tensor is stored in, for a llama.cpp file type ("mix"): a port of
// llama-quantize's rules (llama.cpp src/llama-quant.cpp at de3ff815, the commit node-llama-cpp
// 3.22.1 ships: tensor_allows_quantization, llama_tensor_get_type(_impl), tensor_type_fallback,
// llama_ftype_get_default_type), so `qwen-ts quantize --type q4_k_m` stores every tensor in the type
// `llama-quantize ... Q4_K_M` picks. Ported for the file types qwen.ts can encode; branches that only
// concern other file types (IQ1/IQ2/IQ3, Q2_K_S, MXFP4, TQ) or an architecture qwen.ts does not
// run (Falcon) are left out. Choices llama.cpp makes only with an importance matrix are left out too
// (qwen.ts has none): ffn_down of the first 1/8 of the layers goes Q4_1 / Q5_1 in Q4_0 / Q5_0 files
// with one, and IQ4_NL / IQ4_XS files keep it Q5_K only without one (as here).
import { fail } from '../errors.js';
import { DTYPES, type DType } from './dtype.js';
import type { GgufKV } from './gguf.js';

/** A llama.cpp file type: its default tensor type and its general.file_type (llama_ftype). */
export interface QuantMix {
  base: DType;
  fileType: number;
  /** no per-tensor rules, only the shape fallbacks (llama-quantize --pure) */
  pure?: boolean;
}

export const QUANT_MIXES = {
  f32: { base: 'F32', fileType: 0 },
  f16: { base: 'F16', fileType: 1 },
  bf16: { base: 'BF16', fileType: 32 },
  q8_0: { base: 'Q8_0', fileType: 7 },
  q4_0: { base: 'Q4_0', fileType: 2 },
  q4_1: { base: 'Q4_1', fileType: 3 },
  q5_0: { base: 'Q5_0', fileType: 8 },
  q5_1: { base: 'Q5_1', fileType: 9 },
  q2_k: { base: 'Q2_K', fileType: 10 },
  q3_k_s: { base: 'Q3_K', fileType: 11 },
  q3_k_m: { base: 'Q3_K', fileType: 12 },
  q3_k_l: { base: 'Q3_K', fileType: 13 },
  q4_k_s: { base: 'Q4_K', fileType: 14 },
  q4_k_m: { base: 'Q4_K', fileType: 15 },
  q5_k_s: { base: 'Q5_K', fileType: 16 },
  q5_k_m: { base: 'Q5_K', fileType: 17 },
  q6_k: { base: 'Q6_K', fileType: 18 },
  iq4_nl: { base: 'IQ4_NL', fileType: 25 },
  iq4_xs: { base: 'IQ4_XS', fileType: 30 },
  // every matrix Q4_K (what qwen.ts wrote before the mixes, and what the loader's --quantize q4_k
  // holds): `llama-quantize --pure ... Q4_K_S`, so llama.cpp names it Q4_K_S too
  q4_k: { base: 'Q4_K', fileType: 14, pure: true },
} as const satisfies Record<string, QuantMix>;
export type QuantMixName = keyof typeof QUANT_MIXES;

/** What the rules read from the model's hyper-parameters (llama.cpp's hparams). */
export interface MixModel {
  arch: string;
  /** block_count (llama.cpp's n_layer_all: MTP blocks included), the ffn counters' range */
  blockCount: number;
  /** n_head / n_head_kv of layer 0 (llama_hparams::n_gqa(0)); 0 when n_head_kv is 0 */
  gqa: number;
  expertCount: number;
  /** llama.cpp's LLM_TYPE_70B (Qwen2 with 80 layers, i.e. Qwen2-72B): attn_v gets more bits */
  is70B: boolean;
}

/** MixModel from GGUF metadata (the keys of the file being written, as llama.cpp reads them). */
export function mixModel(meta: readonly GgufKV[]): MixModel {
  const get = (k: string) => meta.find((m) => m.key === k)?.value;
  const arch = String(get('general.architecture') ?? fail('GGUF metadata without general.architecture'));
  const first = (v: unknown) => Number(Array.isArray(v) ? v[0] : (v ?? 0));
  const blockCount = first(get(`${arch}.block_count`));
  const heads = first(get(`${arch}.attention.head_count`));
  const kvKey = get(`${arch}.attention.head_count_kv`);
  const kv = kvKey === undefined ? heads : first(kvKey); // llama.cpp: n_head_kv defaults to n_head
  const nextn = first(get(`${arch}.nextn_predict_layers`));
  return {
    arch,
    blockCount,
    gqa: kv === 0 ? 0 : Math.trunc(heads / kv),
    expertCount: first(get(`${arch}.expert_count`)),
    is70B: arch === 'qwen2' && blockCount - nextn === 80,
  };
}

/** A tensor to place: GGUF name, shape in [rows, cols] order, and its stored type in a GGUF source. */
export interface MixTensor {
  name: string;
  shape: readonly number[];
  /** kept for a tensor llama.cpp does not quantise (norms, conv); F32 when absent (HF source) */
  stored?: DType;
}

const FLOATS: ReadonlySet<DType> = new Set(['F32', 'F16', 'BF16']);

// tensor_allows_quantization: name fragments llama.cpp never quantises (the architectures it lists
// that qwen.ts cannot load are kept, as they cost nothing and keep the list comparable)
const KEEP_FRAGMENTS = [
  '_norm.weight',
  'ffn_gate_inp.weight',
  'ffn_gate_tid2eid.weight',
  'altup',
  'laurel',
  'per_layer_model_proj',
  'ssm_conv1d',
  'shortconv.conv.weight',
  'indexer.k_proj.weight',
  'indexer.q_proj.weight',
  'time_mix_first.weight',
  'time_mix_w0.weight',
  'time_mix_w1.weight',
  'time_mix_w2.weight',
  'time_mix_v0.weight',
  'time_mix_v1.weight',
  'time_mix_v2.weight',
  'time_mix_a0.weight',
  'time_mix_a1.weight',
  'time_mix_a2.weight',
  'time_mix_g1.weight',
  'time_mix_g2.weight',
  'time_mix_decay_w1.weight',
  'time_mix_decay_w2.weight',
  'time_mix_lerp_fused.weight',
  'attn_rel_b.weight',
  '.position_embd',
  'sam.pos_embd',
  'sam.neck.',
  'sam.net_',
  '.rel_pos',
  '.patch_embd',
  '.patch_merger',
  'a.rvq.codebook',
  'mm.a.code_embd',
];

/** ggml_n_dims: trailing ne of 1 (leading numpy dims of 1) do not count, so [1, n] is a vector. */
function nDims(shape: readonly number[]): number {
  let i = 0;
  while (i < shape.length - 1 && shape[i] === 1) i++;
  return Math.max(1, shape.length - i);
}

function quantizable(name: string, shape: readonly number[]): boolean {
  return nDims(shape) >= 2 && name.endsWith('weight') && name !== 'position_embd.weight' && name !== 'token_types.weight' && !KEEP_FRAGMENTS.some((f) => name.includes(f));
}

// tensor_type_fallback: a row that does not fill whole blocks takes a type of smaller blocks; a row
// that fits neither (not a multiple of 32) is stored F16
const FALLBACK: Partial<Record<DType, DType>> = { IQ4_XS: 'IQ4_NL', Q2_K: 'Q4_0', Q3_K: 'Q4_0', Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q6_K: 'Q8_0' };
function fallback(type: DType, cols: number): DType {
  if (cols % DTYPES[type].blockSize === 0) return type;
  const fb = FALLBACK[type] ?? type; // the 32-block types have nothing smaller: F16 below
  return cols % DTYPES[fb].blockSize === 0 ? fb : 'F16';
}

type Category = 'output' | 'token_embd' | 'attn_qkv' | 'attn_kv_b' | 'attn_v' | 'attn_k' | 'attn_q' | 'attn_output' | 'ffn_up' | 'ffn_gate' | 'ffn_down' | 'other';
/** tensor_get_category: substring tests in llama.cpp's order (so ffn_up_shexp is ffn_up). */
function category(name: string): Category {
  if (name === 'output.weight') return 'output';
  if (name === 'token_embd.weight' || name === 'per_layer_token_embd.weight') return 'token_embd';
  for (const c of ['attn_qkv', 'attn_kv_b', 'attn_v', 'attn_k', 'attn_q', 'attn_output'] as const) if (name.includes(`${c}.weight`)) return c;
  for (const c of ['ffn_up', 'ffn_gate', 'ffn_down'] as const) if (name.includes(c)) return c;
  return 'other';
}
// attn_qkv (Qwen3.5's DeltaNet input projection) and attn_kv_b count as attn_v: same rules, same counter
const isAttnV = (c: Category) => c === 'attn_v' || c === 'attn_qkv' || c === 'attn_kv_b';

/** use_more_bits: the first and last eighth of the layers, and every third one between. */
const useMoreBits = (i: number, n: number) => i < Math.trunc(n / 8) || i >= Math.trunc((7 * n) / 8) || (i - Math.trunc(n / 8)) % 3 === 2;

/** Counters over the tensors in llama.cpp's order (quantize_state_impl). */
interface MixState {
  model: MixModel;
  tied: boolean;
  nAttnV: number;
  iAttnV: number;
  iFfnDown: number;
  iFfnGate: number;
  iFfnUp: number;
}

/** llama_tensor_get_type_impl for one quantisable tensor of a mix with a quantised base type. */
function mixRule(s: MixState, mix: QuantMix, ftype: string, name: string, cols: number): DType {
  const base = mix.base,
    m = s.model,
    cat = category(name);
  const layer = (counter: number): [number, number] => {
    if (m.expertCount <= 1) return [counter, m.blockCount];
    // experts are not stored in layer order: llama.cpp parses the layer from the name
    const l = /^blk\.(\d+)\./.exec(name);
    if (!l || Number(l[1]) >= m.blockCount) fail(`cannot tell the layer of tensor ${name}`);
    return [Number(l[1]), m.blockCount];
  };
  const is = (...f: string[]) => f.includes(ftype);
  let t: DType = base;
  if (cat === 'output' || (s.tied && cat === 'token_embd')) {
    // the output matrix (or the tied embedding that serves as it) keeps more bits
    if (cols % DTYPES[base].blockSize !== 0) t = 'Q8_0';
    else if (base !== 'Q8_0') t = 'Q6_K';
  } else if (cat === 'token_embd') {
    // untied embedding: the base type for every file type here
  } else if (isAttnV(cat)) {
    const i = s.iAttnV;
    if (is('q2_k')) t = m.gqa >= 4 ? 'Q4_K' : 'Q3_K';
    else if (is('q3_k_m')) t = i < 2 ? 'Q5_K' : 'Q4_K';
    else if (is('q3_k_l')) t = 'Q5_K';
    else if (is('iq4_nl', 'iq4_xs') && m.gqa >= 4) t = 'Q5_K';
    else if (is('q4_k_m', 'q5_k_m') && useMoreBits(i, s.nAttnV)) t = 'Q6_K';
    else if (is('q4_k_s') && i < 4) t = 'Q5_K';
    if (m.is70B && (t === 'Q3_K' || t === 'Q4_K')) t = 'Q5_K';
    if (m.expertCount === 8) t = 'Q8_0';
    s.iAttnV++;
  } else if (cat === 'attn_k') {
    if (m.expertCount === 8) t = 'Q8_0';
  } else if (cat === 'ffn_down') {
    const [i, n] = layer(s.iFfnDown);
    if (is('q2_k')) t = 'Q3_K';
    else if (is('q3_k_m')) t = i < Math.trunc(n / 16) ? 'Q5_K' : 'Q4_K';
    else if (is('q3_k_l')) t = 'Q5_K';
    else if (is('q4_k_m')) {
      if (useMoreBits(i, n)) t = 'Q6_K';
    } else if (is('iq4_nl', 'iq4_xs') && i < Math.trunc(n / 8))
      t = 'Q5_K'; // without an importance matrix only
    else if (is('q5_k_m') && useMoreBits(i, n)) t = 'Q6_K';
    else if (is('q4_k_s') && i < Math.trunc(n / 8)) t = 'Q5_K';
    s.iFfnDown++;
  } else if (cat === 'attn_output') {
    if (m.expertCount === 8) {
      if (is('q2_k', 'q3_k_s', 'q3_k_m', 'iq4_nl', 'q4_k_s', 'q4_k_m', 'iq4_xs')) t = 'Q5_K';
    } else if (is('q2_k')) t = 'Q3_K';
    else if (is('q3_k_m')) t = 'Q4_K';
    else if (is('q3_k_l')) t = 'Q5_K';
  } else if (cat === 'ffn_gate' || cat === 'ffn_up') {
    // only IQ3_XS files change these; the counters still advance (and an expert's layer must parse)
    if (cat === 'ffn_gate') layer(s.iFfnGate++);
    else layer(s.iFfnUp++);
  }
  return t;
}

/**
 * The one per-tensor decision, for `qwen-ts quantize` and the loader's --quantize: tensors
 * llama.cpp never quantises keep their stored type (F32 from an HF source); a float base type
 * (f32/f16/bf16 files) takes every other tensor; a quantised one goes through the mix's rules
 * (`state` absent: none, as --pure) and then the shape fallback.
 */
function chooseType(t: MixTensor, mix: QuantMix, ftype: string, state?: MixState): DType {
  if (!quantizable(t.name, t.shape)) return t.stored ?? 'F32';
  if (FLOATS.has(mix.base)) return mix.base;
  const cols = t.shape[t.shape.length - 1]!;
  const want = state && !mix.pure ? mixRule(state, mix, ftype, t.name, cols) : mix.base;
  return fallback(want, cols);
}

/** llama.cpp's tensor order (weight_name_comparer): by layer (-1 outside blocks), then by name. */
function llamaOrder(a: MixTensor, b: MixTensor): number {
  const la = Number(/^blk\.(\d+)\./.exec(a.name)?.[1] ?? -1),
    lb = Number(/^blk\.(\d+)\./.exec(b.name)?.[1] ?? -1);
  if (la !== lb) return la - lb;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * The stored type of every tensor of a model for file type `name`, as llama-quantize chooses them
 * (its counters run over the tensors in its own order, so the whole list is needed); `pure`: as
 * llama-quantize --pure, the base type everywhere but for the shape fallbacks.
 */
export function planMix(tensors: readonly MixTensor[], model: MixModel, name: QuantMixName, pure = false): Map<string, DType> {
  const mix: QuantMix = pure ? { ...QUANT_MIXES[name], pure } : QUANT_MIXES[name];
  const state: MixState = {
    model,
    tied: !tensors.some((t) => t.name === 'output.weight'),
    iAttnV: 0,
    iFfnDown: 0,
    iFfnGate: 0,
    iFfnUp: 0,
    nAttnV: tensors.filter((t) => isAttnV(category(t.name))).length,
  };
  const out = new Map<string, DType>();
  for (const t of [...tensors].sort(llamaOrder)) out.set(t.name, chooseType(t, mix, name, state));
  return out;
}

/** One tensor's type with no per-tensor rules (llama-quantize --pure): the loader's --quantize. */
export function pureType(name: string, shape: readonly number[], base: DType): DType {
  return chooseType({ name, shape }, { base, fileType: -1, pure: true }, '');
}
