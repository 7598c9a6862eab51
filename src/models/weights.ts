// The one map between Hugging Face and GGUF (llama.cpp) tensor names, and a loader that checks
// each tensor against the shape the config implies before reading it into backend storage.
import { fail, quote } from '../errors.js';
import { dequantize, quantize } from '../formats/quant/index.js';
import type { TensorInfo, TensorSource } from '../formats/file.js';
import { HEAD, type Backend, type Weight } from '../backend/backend.js';
import { tensorBytes, type DType } from '../formats/dtype.js';
import { checkTensorData } from '../formats/check.js';
import { OUT_TYPES, targetType } from '../formats/to_gguf.js';
import { qwen35HfToGgufValues } from '../formats/qwen35_values.js';
import type { ModelType } from './config.js';

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
// Qwen3.5 (GGUF arch qwen35): the post-attention norm keeps its HF name, and the DeltaNet tensors
const QWEN35_LAYER_NAMES: [hf: string, gguf: string][] = [
  ...LAYER_NAMES.filter(([hf]) => hf !== 'post_attention_layernorm'),
  ['post_attention_layernorm', 'post_attention_norm'],
  ['linear_attn.in_proj_qkv', 'attn_qkv'],
  ['linear_attn.in_proj_z', 'attn_gate'],
  ['linear_attn.in_proj_b', 'ssm_beta'],
  ['linear_attn.in_proj_a', 'ssm_alpha'],
  ['linear_attn.conv1d', 'ssm_conv1d'],
  ['linear_attn.norm', 'ssm_norm'],
  ['linear_attn.out_proj', 'ssm_out'],
];
// HF parameters without a .weight suffix
const QWEN35_BARE: [hf: string, gguf: string][] = [
  ['linear_attn.dt_bias', 'ssm_dt.bias'],
  ['linear_attn.A_log', 'ssm_a'],
];
const GLOBAL_NAMES: [string, string][] = [
  ['model.embed_tokens', 'token_embd'],
  ['model.norm', 'output_norm'],
  ['lm_head', 'output'],
];

// Mixture-of-experts layers: the router, the shared expert and its gate; `mlp.experts.*_proj`
// stand for GGUF's expert stacks (HF stores one tensor per expert, or fused stacks: experts())
export const MOE_LAYER_NAMES: [hf: string, gguf: string][] = [
  ['mlp.gate', 'ffn_gate_inp'],
  ['mlp.experts.gate_proj', 'ffn_gate_exps'],
  ['mlp.experts.up_proj', 'ffn_up_exps'],
  ['mlp.experts.down_proj', 'ffn_down_exps'],
  ['mlp.experts.gate_up_proj', 'ffn_gate_up_exps'],
  ['mlp.shared_expert.gate_proj', 'ffn_gate_shexp'],
  ['mlp.shared_expert.up_proj', 'ffn_up_shexp'],
  ['mlp.shared_expert.down_proj', 'ffn_down_shexp'],
  ['mlp.shared_expert_gate', 'ffn_gate_inp_shexp'],
];
// Qwen3.5-MoE: Qwen3.5's names + MoE's
const QWEN35_MOE_LAYER_NAMES = [...QWEN35_LAYER_NAMES, ...MOE_LAYER_NAMES];
// Qwen2-MoE / Qwen3-MoE: the dense names (attention, and dense FFN layers of HF configs) + MoE's
const QWEN_MOE_LAYER_NAMES = [...LAYER_NAMES, ...MOE_LAYER_NAMES];
// Qwen3-Next's fused DeltaNet projections, per key head [q, k, v, z] and [b, a] (llama.cpp's
// older files: ssm_in; newer ones split it into attn_qkv + attn_gate, Qwen3.5's names)
const QWEN3_NEXT_LAYER_NAMES: [hf: string, gguf: string][] = [...QWEN35_MOE_LAYER_NAMES, ['linear_attn.in_proj_qkvz', 'ssm_in'], ['linear_attn.in_proj_ba', 'ssm_ba']];
/** the hybrid architectures (Gated DeltaNet layers, zero-centred norms in HF files) */
const HYBRID: ReadonlySet<ModelType> = new Set(['qwen3_5_text', 'qwen3_5_moe_text', 'qwen3_next']);

function layerNames(arch: ModelType) {
  if (arch === 'qwen3_next') return QWEN3_NEXT_LAYER_NAMES;
  if (arch === 'qwen2_moe' || arch === 'qwen3_moe') return QWEN_MOE_LAYER_NAMES;
  return arch === 'qwen3_5_moe_text' ? QWEN35_MOE_LAYER_NAMES : arch === 'qwen3_5_text' ? QWEN35_LAYER_NAMES : LAYER_NAMES;
}

/** GGUF name for an HF tensor name (`model.layers.3.mlp.up_proj.weight` -> `blk.3.ffn_up.weight`). */
export function hfToGguf(name: string, arch: ModelType = 'qwen2'): string | undefined {
  const bare = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
  const b = bare && HYBRID.has(arch) && QWEN35_BARE.find(([hf]) => hf === bare[2]);
  if (b) return `blk.${bare![1]}.${b[1]}`;
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
  if (m) {
    const e = layerNames(arch).find(([hf]) => hf === m[2]);
    return e ? `blk.${m[1]}.${e[1]}.${m[3]}` : undefined;
  }
  const g = /^(.+)\.(weight|bias)$/.exec(name);
  const e = g && GLOBAL_NAMES.find(([hf]) => hf === g[1]);
  return e ? `${e[1]}.${g![2]}` : undefined;
}

/** HF name for a GGUF tensor name. */
export function ggufToHf(name: string, arch: ModelType = 'qwen2'): string | undefined {
  const bare = /^blk\.(\d+)\.(.+)$/.exec(name);
  const b = bare && HYBRID.has(arch) && QWEN35_BARE.find(([, g]) => g === bare[2]);
  if (b) return `model.layers.${bare![1]}.${b[0]}`;
  const m = /^blk\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
  if (m) {
    const e = layerNames(arch).find(([, g]) => g === m[2]);
    return e ? `model.layers.${m[1]}.${e[0]}.${m[3]}` : undefined;
  }
  const g = /^(.+)\.(weight|bias)$/.exec(name);
  const e = g && GLOBAL_NAMES.find(([, gg]) => gg === g[1]);
  return e ? `${e[0]}.${g![2]}` : undefined;
}

// The multi-token-prediction block's own tensors, HF `mtp.X` / GGUF `blk.L.nextn.Y` (L = num_hidden_layers;
// llama.cpp's conversion/qwen.py _QwenMtpMixin); its decoder layer is HF `mtp.layers.0.*` / GGUF `blk.L.*`.
const MTP_NAMES: [hf: string, gguf: string][] = [
  ['fc', 'eh_proj'],
  ['pre_fc_norm_embedding', 'enorm'],
  ['pre_fc_norm_hidden', 'hnorm'],
  ['norm', 'shared_head_norm'],
];

/** WeightLoader.rename for the MTP block: its layer asked for as `model.layers.L.*`, its own tensors as HF's `mtp.*`. */
export function mtpRename(naming: 'hf' | 'gguf', L: number): (name: string) => string {
  const layer = `model.layers.${L}.`;
  if (naming === 'hf') return (n) => (n.startsWith(layer) ? `mtp.layers.0.${n.slice(layer.length)}` : n);
  return (n) => {
    const m = /^mtp\.(\w+)\.weight$/.exec(n);
    const e = m && MTP_NAMES.find(([hf]) => hf === m[1]);
    return e ? `blk.${L}.nextn.${e[1]}.weight` : n;
  };
}

// Tensors some checkpoints carry that the forward pass derives itself.
const IGNORABLE = [/\.rotary_emb\.inv_freq$/, /^rope_freqs\.weight$/];
// a layer's tensors, by HF name (what the models ask for) and by stored name (HF or GGUF)
const HF_LAYER = /^model\.layers\.(\d+)\./;
const STORED_LAYER = /^(?:blk\.|model\.(?:language_model\.)?layers\.)(\d+)\./;

/** Types a model can be quantised to as it loads (LoadOptions.quantize, the CLI's --quantize). */
export const LOAD_QUANT_TYPES = ['q8_0', 'q4_0', 'q4_k'] as const;
export type LoadQuantType = (typeof LOAD_QUANT_TYPES)[number];
const FLOAT_TYPES: ReadonlySet<DType> = new Set(['F32', 'F16', 'BF16']);

export class WeightLoader {
  /** F32 bytes converted per piece: a float matrix is never held whole in F32 (a 151936 x 1024
   * embedding would be 620 MB), so peak memory stays near the quantised model's size. (Tests
   * lower it to exercise the pieces.) */
  static convertPiece = 8 << 20;
  private used = new Set<string>();
  private bytesRead = 0;
  private readonly totalBytes: number;
  /** HF prefix of the language model: `model.language_model.` in multimodal checkpoints */
  private readonly hfPrefix: string;
  /** an HF checkpoint saved from the bare model (`layers.N...`, no `model.` prefix, no LM head of its own) */
  readonly bare: boolean;
  /** one-line remarks for the user (e.g. a part of the checkpoint that is not loaded) */
  readonly notes: string[] = [];
  /** maps a requested name before the lookup (the MTP block's: mtpRename) */
  rename?: (hfName: string) => string;
  constructor(
    readonly source: TensorSource,
    readonly naming: 'hf' | 'gguf',
    readonly backend: Backend,
    /** called after each tensor with the bytes read so far and the total */
    private readonly onProgress?: (done: number, total: number) => void,
    readonly arch: ModelType = 'qwen2',
    /** quantise float matrices to this type as they load */
    readonly quantize?: LoadQuantType,
    /** fail on a NaN / infinite element or block scale as each tensor lands (--check-tensors) */
    readonly checkTensors = false,
  ) {
    if (quantize !== undefined && !(LOAD_QUANT_TYPES as readonly string[]).includes(quantize)) {
      fail(`quantize must be one of ${LOAD_QUANT_TYPES.join(', ')}, got ${quote(quantize)}`);
    }
    this.totalBytes = [...source.tensors.values()].reduce((a, t) => a + t.byteLength, 0);
    const vl = naming === 'hf' && [...source.tensors.keys()].some((n) => n.startsWith('model.language_model.'));
    // Qwen3-Embedding's checkpoints are saved from the bare Qwen3Model: `layers.0...`, no `model.`
    const flat = naming === 'hf' && ![...source.tensors.keys()].some((n) => n.startsWith('model.'));
    this.hfPrefix = vl ? 'model.language_model.' : flat ? '' : 'model.';
    this.bare = flat;
  }

  /**
   * Whether value head j of a Gated DeltaNet reads key head j % nk ("tiled") rather than
   * j / (nv/nk) ("grouped"): llama.cpp's converter reorders every V-head-indexed qwen35 and
   * qwen35moe tensor to tiled order; HF checkpoints and qwen3next files keep transformers'
   * grouped order (spec §5).
   */
  get linearHeadsTiled(): boolean {
    return this.naming === 'gguf' && this.arch !== 'qwen3_next'; // llama.cpp's qwen3next keeps HF's order
  }

  private read(name: string, dst: Uint8Array): void {
    this.source.readInto(name, dst);
    if (this.checkTensors) checkTensorData(this.source.tensors.get(name)!, dst);
    this.bytesRead += dst.length;
    this.onProgress?.(this.bytesRead, this.totalBytes);
  }

  private stored(hfName: string): string {
    if (this.rename) hfName = this.rename(hfName);
    if (this.naming === 'hf') return hfName.startsWith('model.') ? this.hfPrefix + hfName.slice(6) : hfName;
    return hfToGguf(hfName, this.arch) ?? hfName;
  }

  has(hfName: string): boolean {
    return this.source.tensors.has(this.stored(hfName));
  }

  private info(hfName: string, shape: readonly number[], why: string) {
    const name = this.stored(hfName);
    const info = this.source.tensors.get(name);
    if (!info) fail(`${this.source.path}: tensor ${quote(name)} is missing (the config asks for it: ${why})`);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      fail(`${this.source.path}: tensor ${quote(name)} has shape [${info.shape.join(', ')}], but the config implies [${shape.join(', ')}] (${why})`);
    }
    this.used.add(name);
    this.place(hfName);
    return info;
  }

  private placed: number | undefined;
  private layerBytes: Map<number, number> | undefined;
  /** Tell the backend which layer's tensors come next, with their stored size (a backend of
   * several memories places layers by it: see Backend.place). */
  private place(hfName: string): void {
    const m = HF_LAYER.exec(hfName),
      layer = m ? Number(m[1]) : HEAD;
    if (layer === this.placed || !this.backend.place) return;
    if (!this.layerBytes) {
      this.layerBytes = new Map();
      for (const t of this.source.tensors.values()) {
        const l = STORED_LAYER.exec(t.name),
          k = l ? Number(l[1]) : HEAD;
        this.layerBytes.set(k, (this.layerBytes.get(k) ?? 0) + t.byteLength);
      }
    }
    this.placed = layer;
    this.backend.place(layer, this.layerBytes.get(layer) ?? 0);
  }

  /** The type a matrix is held in: as stored, or the quantize target's choice for a float matrix. */
  private heldAs(hfName: string, info: TensorInfo): DType {
    if (!this.quantize) return info.dtype;
    if (!FLOAT_TYPES.has(info.dtype)) {
      this.storedQuantised.set(info.dtype, (this.storedQuantised.get(info.dtype) ?? 0) + 1);
      return info.dtype;
    }
    const gguf = this.naming === 'gguf' ? info.name : (hfToGguf(hfName, this.arch) ?? info.name);
    return targetType(gguf, info.shape, OUT_TYPES[this.quantize].dtype);
  }
  private readonly storedQuantised = new Map<DType, number>();

  /** Read a tensor into `dst` as `dtype`: its bytes, or converted a piece of rows at a time
   * (blocks never cross rows, so the bytes are those of converting it whole), by the backend's
   * quantiser when `dst` is weight `w`'s storage and the backend has one, else by
   * src/formats/quant (the same bytes). */
  private readAs(info: TensorInfo, dtype: DType, dst: Uint8Array, w?: Weight, base = 0): void {
    if (dtype === info.dtype) return this.read(info.name, dst);
    const cols = info.shape[info.shape.length - 1]!;
    const rows = info.byteLength / tensorBytes(info.dtype, [1, cols]);
    const srcRow = info.byteLength / rows,
      dstRow = tensorBytes(dtype, [1, cols]);
    const per = Math.max(1, Math.floor(WeightLoader.convertPiece / (cols * 4)));
    const readRange = this.source.readRange?.bind(this.source);
    const whole = readRange ? undefined : new Uint8Array(info.byteLength);
    if (whole) this.source.readInto(info.name, whole);
    const raw = readRange ? new Uint8Array(Math.min(rows, per) * srcRow) : undefined;
    let f: Float32Array | undefined;
    for (let r = 0; r < rows; r += per) {
      const n = Math.min(per, rows - r);
      let part: Uint8Array;
      if (readRange) readRange(info.name, r * srcRow, (part = raw!.subarray(0, n * srcRow)));
      else part = whole!.subarray(r * srcRow, (r + n) * srcRow);
      if (this.checkTensors) checkTensorData(info, part, r * srcRow);
      if (!(w && this.backend.quantizeInto?.(w, base + r * dstRow, part, info.dtype, n * cols))) {
        f ??= new Float32Array(Math.min(rows, per) * cols);
        dequantize(info.dtype, part, 0, f, 0, n * cols);
        dst.set(quantize(dtype, f, n * cols), r * dstRow);
      }
      this.bytesRead += part.length;
      this.onProgress?.(this.bytesRead, this.totalBytes);
    }
  }

  /** A weight matrix kept in its stored type (or quantised, with `quantize`). */
  matrix(hfName: string, shape: [number, number] | [number, number, number], why: string): Weight {
    const info = this.info(hfName, shape, why);
    const dtype = this.heldAs(hfName, info);
    const w = this.backend.weight(dtype, info.shape);
    this.readAs(info, dtype, w.bytes, w);
    return w;
  }

  /**
   * A matrix widened to an F32 weight [rows, cols] whatever its stored type (a MoE router, a shared
   * expert's gate: kept in f32 as llama.cpp's converter keeps them); size-1 dims of the file's
   * shape are dropped (a shared expert gate is [1, D] in HF files, [D] in some GGUF files).
   */
  f32Matrix(hfName: string, shape: [number, number], why: string): Weight {
    const name = this.stored(hfName),
      info = this.source.tensors.get(name);
    if (!info) fail(`${this.source.path}: tensor ${quote(name)} is missing (the config asks for it: ${why})`);
    const want = shape.filter((d) => d !== 1),
      got = info.shape.filter((d) => d !== 1);
    if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
      fail(`${this.source.path}: tensor ${quote(name)} has shape [${info.shape.join(', ')}], but the config implies [${shape.join(', ')}] (${why})`);
    }
    this.used.add(name);
    this.place(hfName);
    const w = this.backend.weight('F32', shape);
    this.readAs(info, 'F32', w.bytes);
    return w;
  }

  /**
   * One MoE layer's expert matrices, each projection stacked into one weight [E, rows, cols] (expert
   * e's matrix from byte e * its size, as GGUF's `ffn_{gate,up,down}_exps` store them). From GGUF
   * (or HF stacked names) read as stored; from HF's one tensor per expert
   * (`mlp.experts.{e}.{gate,up,down}_proj.weight`) copied into the stack; from HF's fused
   * `mlp.experts.gate_up_proj` [E, 2F, D] (each expert's gate rows, then its up rows) split, and
   * `mlp.experts.down_proj` [E, D, F] read as stored.
   */
  experts(layer: number, E: number, F: number, D: number, why: string): { gate: Weight; up: Weight; down: Weight } {
    const p = `model.layers.${layer}.mlp.experts`;
    const shapes = { gate: [F, D], up: [F, D], down: [D, F] } as const;
    const stackedWhy = (proj: string) => `num_experts x ${proj === 'down' ? 'hidden_size x moe_intermediate_size' : 'moe_intermediate_size x hidden_size'}; ${why}`;
    // (GGUF: llama.cpp's converter with --fuse-gate-up-exps writes ffn_gate_up_exps, laid out as HF's fused stack)
    if (this.has(`${p}.gate_proj.weight`) || (this.naming === 'gguf' && !this.has(`${p}.gate_up_proj.weight`))) {
      const one = (proj: 'gate' | 'up' | 'down') => this.matrix(`${p}.${proj}_proj.weight`, [E, ...shapes[proj]], stackedWhy(proj));
      return { gate: one('gate'), up: one('up'), down: one('down') };
    }
    const fused = [`${p}.gate_up_proj`, `${p}.gate_up_proj.weight`].find((n) => this.has(n));
    if (fused) {
      // gate and up rows of every expert in one tensor: read in the held type, then split by rows
      const info = this.info(fused, [E, 2 * F, D], `num_experts x 2*moe_intermediate_size x hidden_size; ${why}`);
      const dtype = this.heldAs(`${p}.gate_proj.weight`, info);
      const all = new Uint8Array(tensorBytes(dtype, info.shape));
      this.readAs(info, dtype, all);
      const half = tensorBytes(dtype, [F, D]);
      const gate = this.backend.weight(dtype, [E, F, D]),
        up = this.backend.weight(dtype, [E, F, D]);
      for (let e = 0; e < E; e++) {
        gate.bytes.set(all.subarray(2 * e * half, (2 * e + 1) * half), e * half);
        up.bytes.set(all.subarray((2 * e + 1) * half, (2 * e + 2) * half), e * half);
      }
      // down_proj is already a stack (its type chosen as for GGUF's ffn_down_exps: the name may lack `.weight`)
      const dn = [`${p}.down_proj`, `${p}.down_proj.weight`].find((n) => this.has(n)) ?? `${p}.down_proj`;
      const dinfo = this.info(dn, [E, D, F], stackedWhy('down'));
      const down = this.backend.weight(this.heldAs(`${p}.down_proj.weight`, dinfo), dinfo.shape);
      this.readAs(dinfo, down.dtype, down.bytes, down);
      return { gate, up, down };
    }
    // one tensor per expert
    if (this.has(`${p}.${E}.gate_proj.weight`)) fail(`${this.source.path}: tensor ${quote(this.stored(`${p}.${E}.gate_proj.weight`))} is one expert more than the config's num_experts = ${E}`);
    const stack = (proj: 'gate' | 'up' | 'down') => {
      let w: Weight | undefined,
        size = 0,
        first: TensorInfo | undefined;
      for (let e = 0; e < E; e++) {
        const info = this.info(
          `${p}.${e}.${proj}_proj.weight`,
          shapes[proj],
          `expert ${e} of num_experts = ${E}: ${proj === 'down' ? 'hidden_size x moe_intermediate_size' : 'moe_intermediate_size x hidden_size'}; ${why}`,
        );
        if (first && info.dtype !== first.dtype)
          fail(`${this.source.path}: tensor ${quote(info.name)} is ${info.dtype}, but ${quote(first.name)} is ${first.dtype}; the experts of a layer must share one type`);
        first ??= info;
        if (!w) {
          w = this.backend.weight(this.heldAs(`${p}.${proj}_proj.weight`, info), [E, ...shapes[proj]]);
          size = tensorBytes(w.dtype, shapes[proj]);
        }
        this.readAs(info, w.dtype, w.bytes.subarray(e * size, (e + 1) * size), w, e * size);
      }
      return w!;
    };
    return { gate: stack('gate'), up: stack('up'), down: stack('down') };
  }

  /** A small vector (norm weight, bias), widened to float32. */
  vector(hfName: string, n: number, why: string): Float32Array {
    const info = this.info(hfName, [n], why);
    const bytes = new Uint8Array(info.byteLength);
    this.read(info.name, bytes);
    const out = this.backend.alloc(n);
    dequantize(info.dtype, bytes, 0, out, 0, n);
    if (this.naming === 'hf' && HYBRID.has(this.arch)) qwen35HfToGgufValues(hfName, out); // the model reads GGUF's convention
    return out;
  }

  /** A small tensor widened to float32 [rows, cols]; size-1 dims of the file's shape are dropped
   * (HF stores a depthwise conv weight as [C, 1, K], GGUF as [C, K]). */
  floats(hfName: string, shape: [number, number], why: string): Float32Array {
    const name = this.stored(hfName);
    const info = this.source.tensors.get(name);
    if (!info) fail(`${this.source.path}: tensor ${quote(name)} is missing (the config asks for it: ${why})`);
    const squeezed = info.shape.filter((d) => d !== 1);
    if (squeezed.length !== 2 || squeezed[0] !== shape[0] || squeezed[1] !== shape[1]) {
      fail(`${this.source.path}: tensor ${quote(name)} has shape [${info.shape.join(', ')}], but the config implies [${shape.join(', ')}] (${why})`);
    }
    this.used.add(name);
    this.place(hfName);
    const bytes = new Uint8Array(info.byteLength);
    this.read(name, bytes);
    const out = this.backend.alloc(shape[0] * shape[1]);
    dequantize(info.dtype, bytes, 0, out, 0, shape[0] * shape[1]);
    return out;
  }

  /**
   * A matrix whose rows interleave several matrices in repeating groups (`groups` rows of each,
   * in turn), returned as one weight per group: Qwen3.5's q_proj stores, per head, the query rows
   * then the output-gate rows. With `into`, group i goes to output into[i], the groups of one
   * output one after the other (Qwen3-Next's in_proj_qkvz, per key head [q, k, v, z]: q, k and v
   * into one [q all heads | k all heads | v all heads] weight, z into another). Rows are whole
   * blocks in every stored type, so this is a copy.
   */
  splitRows(hfName: string, shape: [number, number], groups: number[], why: string, into: number[] = groups.map((_, i) => i)): Weight[] {
    const info = this.info(hfName, shape, why);
    const cycle = groups.reduce((a, b) => a + b, 0);
    if (shape[0] % cycle !== 0) fail(`${this.source.path}: tensor ${quote(info.name)} has ${shape[0]} rows, not a multiple of ${cycle} (${why})`);
    const dtype = this.heldAs(hfName, info);
    const all = new Uint8Array(tensorBytes(dtype, info.shape));
    this.readAs(info, dtype, all);
    const rowBytes = tensorBytes(dtype, [1, shape[1]]);
    const reps = shape[0] / cycle;
    const first = groups.map((_, gi) => groups.slice(0, gi).reduce((a, b) => a + b, 0));
    return Array.from({ length: Math.max(...into) + 1 }, (_, o) => {
      const mine = groups.flatMap((_g, gi) => (into[gi] === o ? [gi] : []));
      const w = this.backend.weight(dtype, [mine.reduce((a, gi) => a + groups[gi]!, 0) * reps, shape[1]]);
      let dst = 0;
      for (const gi of mine) {
        const g = groups[gi]!;
        for (let r = 0; r < reps; r++, dst += g * rowBytes) {
          const src = (r * cycle + first[gi]!) * rowBytes;
          w.bytes.set(all.subarray(src, src + g * rowBytes), dst);
        }
      }
      return w;
    });
  }

  /** Mark every tensor whose stored name matches as deliberately unused; returns how many. */
  skipMatching(re: RegExp): number {
    let n = 0;
    for (const name of this.source.tensors.keys())
      if (re.test(name)) {
        this.used.add(name);
        n++;
      }
    return n;
  }

  /** Mark a tensor as deliberately unused (e.g. a tied lm_head copy). */
  skip(hfName: string): void {
    this.used.add(this.stored(hfName));
  }

  /** Every tensor in the file must have been used: an unknown tensor means an unknown model. */
  finish(): void {
    for (const name of this.source.tensors.keys()) {
      if (this.used.has(name) || IGNORABLE.some((r) => r.test(name))) continue;
      fail(`${this.source.path}: tensor ${quote(name)} is not part of this model architecture; refusing to run a model we do not understand`);
    }
    if (this.storedQuantised.size) {
      // llama-quantize refuses to requantise without --allow-requantize (quality loss); loading as
      // stored keeps the file's own quality, and says so
      const kinds = [...this.storedQuantised].map(([t, n]) => `${n} ${t}`).join(', ');
      this.notes.push(`${this.source.path}: --quantize ${this.quantize} converts only F32/F16/BF16 matrices; ${kinds} matrices are already quantised and load as stored`);
    }
  }
}
