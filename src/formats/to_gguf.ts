// Convert a model's tensors (HF safetensors or GGUF) into a GGUF file of a chosen type, with the
// metadata keys llama.cpp's convert_hf_to_gguf.py writes for qwen2 / qwen3. One tensor is in
// memory at a time.
import { fail, quote } from '../errors.js';
import type { QwenConfig } from '../models/config.js';
import { hfToGguf } from '../models/weights.js';
import { numel, type DType } from './dtype.js';
import type { TensorInfo, TensorSource } from './file.js';
import type { GgufKV } from './gguf.js';
import { writeGguf, type GgufTensorOut } from './gguf_writer.js';
import { QWEN35_NOT_WRITTEN, qwen35GgufMetadata, qwen35GgufName, qwen35GgufShape, qwen35GgufTensor } from './qwen35_to_gguf.js';
import { dequantize, quantize } from './quant/index.js';
import { mixModel, planMix, pureType, QUANT_MIXES, type MixTensor, type QuantMixName } from './quant_mix.js';

/** The file types `qwen-ts quantize --type` writes: llama.cpp's mixes (src/formats/quant_mix.ts). */
export type OutType = QuantMixName;
export const OUT_TYPES: Record<OutType, { dtype: DType; fileType: number }> = Object.fromEntries(Object.entries(QUANT_MIXES).map(([k, v]) => [k, { dtype: v.base, fileType: v.fileType }])) as Record<
  OutType,
  { dtype: DType; fileType: number }
>;

/** The model hyper-parameters as GGUF metadata (llama.cpp key names). */
export function ggufModelMetadata(c: QwenConfig, name: string, type: OutType): GgufKV[] {
  const a = c.model_type === 'qwen3_5_text' ? 'qwen35' : c.model_type; // llama.cpp's arch name
  const kv: GgufKV[] = [
    { key: 'general.architecture', type: 'str', value: a },
    { key: 'general.type', type: 'str', value: 'model' },
    { key: 'general.name', type: 'str', value: name },
    { key: 'general.file_type', type: 'u32', value: OUT_TYPES[type].fileType },
    { key: 'general.quantization_version', type: 'u32', value: 2 },
    { key: `${a}.block_count`, type: 'u32', value: c.num_hidden_layers },
    { key: `${a}.context_length`, type: 'u32', value: c.max_position_embeddings },
    { key: `${a}.embedding_length`, type: 'u32', value: c.hidden_size },
    { key: `${a}.feed_forward_length`, type: 'u32', value: c.intermediate_size },
    { key: `${a}.attention.head_count`, type: 'u32', value: c.num_attention_heads },
    { key: `${a}.attention.head_count_kv`, type: 'u32', value: c.num_key_value_heads },
    { key: `${a}.rope.freq_base`, type: 'f32', value: c.rope_theta },
    { key: `${a}.attention.layer_norm_rms_epsilon`, type: 'f32', value: c.rms_norm_eps },
  ];
  if (c.head_dim * c.num_attention_heads !== c.hidden_size || a === 'qwen3') {
    kv.push({ key: `${a}.attention.key_length`, type: 'u32', value: c.head_dim });
    kv.push({ key: `${a}.attention.value_length`, type: 'u32', value: c.head_dim });
  }
  return kv;
}

/**
 * Which stored type a tensor gets (by its GGUF name and shape) when every matrix is to be `want`:
 * llama-quantize --pure's choice (vectors and the DeltaNet conv F32, rows that do not fill whole
 * blocks in a type of smaller blocks, else F16). The loader's --quantize asks here; `qwen-ts
 * quantize` asks planMix, which runs the same decision with the mix's rules on.
 */
export function targetType(name: string, shape: readonly number[], want: DType): DType {
  return pureType(name, shape, want);
}

/** One tensor of the file to write: its GGUF name, shape and chosen type. */
export interface PlannedTensor {
  name: string;
  shape: number[];
  dtype: DType;
  source: string;
}

/**
 * Write `out` from `source` (or, with `out` null, only decide: the tensors and their types, as
 * `qwen-ts quantize --dry-run` prints them). `naming` says whether source names are HF (mapped to
 * GGUF) or GGUF. `tokenizerKv` carries the vocabulary keys llama.cpp needs to load the file;
 * `modelKv`, when the source is a GGUF file, its own hyper-parameter keys (copied, rather than
 * rebuilt from the config). `pure`: no per-tensor rules (llama-quantize --pure; what the loader's
 * --quantize holds).
 */
export function convertToGguf(
  source: TensorSource,
  naming: 'hf' | 'gguf',
  config: QwenConfig,
  out: string | null,
  type: OutType,
  name: string,
  tokenizerKv: GgufKV[],
  modelKv?: GgufKV[],
  pure = false,
): PlannedTensor[] {
  // MoE files need llama.cpp's expert keys and stacked expert tensors: not written yet
  if (config.num_experts) fail(`${source.path}: writing a GGUF of a mixture-of-experts model (${config.model_type}) is not implemented yet`);
  // Qwen3.5's HF checkpoints also need their values rewritten (qwen35_to_gguf.ts)
  const q35 = config.model_type === 'qwen3_5_text' && naming === 'hf';
  const meta = modelKv
    ? [...ggufModelMetadata(config, name, type).filter((k) => k.key.startsWith('general.')), ...modelKv]
    : q35
      ? [...ggufModelMetadata(config, name, type).filter((k) => k.key.startsWith('general.')), ...qwen35GgufMetadata(config, source.path)]
      : ggufModelMetadata(config, name, type);
  const wanted: (MixTensor & { info: TensorInfo })[] = [];
  for (const info of source.tensors.values()) {
    if (/\.rotary_emb\.inv_freq$/.test(info.name)) continue;
    if (q35 && QWEN35_NOT_WRITTEN.test(info.name)) continue;
    if (config.tie_word_embeddings && (info.name === 'lm_head.weight' || info.name === 'output.weight')) continue;
    const gname = naming === 'hf' ? (q35 ? qwen35GgufName(info.name) : hfToGguf(info.name)) : info.name;
    if (!gname) fail(`${source.path}: tensor ${quote(info.name)} has no GGUF name; it is not part of a ${config.model_type} model`);
    const shape = q35 ? qwen35GgufShape(info.name, info.shape) : [...info.shape];
    // a GGUF source's tensors that llama.cpp does not quantise keep their stored type, as in
    // llama-quantize; from HF they are F32, as llama.cpp's converter writes them
    wanted.push({ name: gname, shape, stored: naming === 'gguf' ? info.dtype : undefined, info });
  }
  // the types depend on the whole model (layer counters, tied embeddings, heads): decide them at once
  const types = planMix(wanted, mixModel(meta), type, pure);
  const plan = wanted.map((w) => ({ name: w.name, shape: [...w.shape], dtype: types.get(w.name)!, source: w.info.name }));
  if (out === null) return plan;
  const tensors: GgufTensorOut[] = plan.map((p, k) => {
    const info = wanted[k]!.info;
    const floats = () => {
      const raw = new Uint8Array(info.byteLength);
      source.readInto(info.name, raw);
      const f = new Float32Array(numel(info.shape));
      dequantize(info.dtype, raw, 0, f, 0, f.length);
      return f;
    };
    const conv = q35 ? (f: Float32Array) => qwen35GgufTensor(info.name, info.shape, f, config) : undefined;
    return {
      name: p.name,
      dtype: p.dtype,
      shape: p.shape,
      data: () => {
        if (!conv && info.dtype === p.dtype) {
          const raw = new Uint8Array(info.byteLength);
          source.readInto(info.name, raw);
          return raw;
        }
        const f = conv ? conv(floats()).data : floats();
        return quantize(p.dtype, f, f.length);
      },
    };
  });
  writeGguf(out, { metadata: [...meta, ...tokenizerKv], tensors });
  return plan;
}
