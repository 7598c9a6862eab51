// Convert a model's tensors (HF safetensors or GGUF) into a GGUF file of a chosen type, with the
// metadata keys llama.cpp's convert_hf_to_gguf.py writes for qwen2 / qwen3. One tensor is in
// memory at a time.
import { fail, quote } from '../errors.js';
import type { QwenConfig } from '../models/config.js';
import { hfToGguf } from '../models/weights.js';
import { DTYPES, numel, type DType } from './dtype.js';
import type { TensorSource } from './file.js';
import type { GgufKV } from './gguf.js';
import { writeGguf, type GgufTensorOut } from './gguf_writer.js';
import { QWEN35_NOT_WRITTEN, qwen35GgufMetadata, qwen35GgufName, qwen35GgufShape, qwen35GgufTensor } from './qwen35_to_gguf.js';
import { dequantize, quantize } from './quant/index.js';

export type OutType = 'f32' | 'f16' | 'q8_0' | 'q4_0' | 'q4_k';
export const OUT_TYPES: Record<OutType, { dtype: DType; fileType: number }> = {
  // general.file_type values are llama.cpp's llama_ftype (14: MOSTLY_Q4_K_S, what `llama-quantize --pure` names a Q4_K file)
  f32: { dtype: 'F32', fileType: 0 },
  f16: { dtype: 'F16', fileType: 1 },
  q4_0: { dtype: 'Q4_0', fileType: 2 },
  q8_0: { dtype: 'Q8_0', fileType: 7 },
  q4_k: { dtype: 'Q4_K', fileType: 14 },
};

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

// llama-quantize's tensor_type_fallback: a 256-block type whose rows do not fill whole blocks
// takes a 32-block type instead; a row that fits neither is stored F16.
const FALLBACK: Partial<Record<DType, DType>> = { Q4_K: 'Q5_0', Q6_K: 'Q8_0' };

/**
 * Which stored type a tensor gets (by its GGUF name and shape): vectors stay F32 (as llama.cpp
 * does), matrices take the target. `qwen-ts quantize` and load-time quantisation
 * (LoadOptions.quantize) both ask here, so they store every tensor alike.
 */
export function targetType(name: string, shape: readonly number[], want: DType): DType {
  if (shape.length < 2 || /ssm_conv1d/.test(name)) return 'F32'; // llama.cpp keeps the DeltaNet conv F32 too
  const inner = shape[shape.length - 1]!;
  if (inner % DTYPES[want].blockSize === 0) return want;
  const fb = FALLBACK[want];
  return fb && inner % DTYPES[fb].blockSize === 0 ? fb : 'F16';
}

/**
 * Write `out` from `source`. `naming` says whether source names are HF (mapped to GGUF) or GGUF.
 * `tokenizerKv` carries the vocabulary keys llama.cpp needs to load the file; `modelKv`, when the
 * source is a GGUF file, its own hyper-parameter keys (copied, rather than rebuilt from the config).
 */
export function convertToGguf(source: TensorSource, naming: 'hf' | 'gguf', config: QwenConfig, out: string, type: OutType, name: string, tokenizerKv: GgufKV[], modelKv?: GgufKV[]): void {
  // Qwen3.5's HF checkpoints also need their values rewritten (qwen35_to_gguf.ts)
  const q35 = config.model_type === 'qwen3_5_text' && naming === 'hf';
  const want = OUT_TYPES[type].dtype;
  const tensors: GgufTensorOut[] = [];
  for (const info of source.tensors.values()) {
    if (/\.rotary_emb\.inv_freq$/.test(info.name)) continue;
    if (q35 && QWEN35_NOT_WRITTEN.test(info.name)) continue;
    if (config.tie_word_embeddings && (info.name === 'lm_head.weight' || info.name === 'output.weight')) continue;
    const gname = naming === 'hf' ? (q35 ? qwen35GgufName(info.name) : hfToGguf(info.name)) : info.name;
    if (!gname) fail(`${source.path}: tensor ${quote(info.name)} has no GGUF name; it is not part of a ${config.model_type} model`);
    const floats = () => {
      const raw = new Uint8Array(info.byteLength);
      source.readInto(info.name, raw);
      const f = new Float32Array(numel(info.shape));
      dequantize(info.dtype, raw, 0, f, 0, f.length);
      return f;
    };
    const conv = q35 ? (f: Float32Array) => qwen35GgufTensor(info.name, info.shape, f, config) : undefined;
    const shape = q35 ? qwen35GgufShape(info.name, info.shape) : [...info.shape];
    const dtype = targetType(gname, shape, want);
    tensors.push({
      name: gname,
      dtype,
      shape,
      data: () => {
        if (!conv && info.dtype === dtype) {
          const raw = new Uint8Array(info.byteLength);
          source.readInto(info.name, raw);
          return raw;
        }
        const f = conv ? conv(floats()).data : floats();
        return quantize(dtype, f, f.length);
      },
    });
  }
  const meta = modelKv ? [...ggufModelMetadata(config, name, type).filter((k) => k.key.startsWith('general.')), ...modelKv]
    : q35 ? [...ggufModelMetadata(config, name, type).filter((k) => k.key.startsWith('general.')), ...qwen35GgufMetadata(config, source.path)]
      : ggufModelMetadata(config, name, type);
  writeGguf(out, { metadata: [...meta, ...tokenizerKv], tensors });
}
