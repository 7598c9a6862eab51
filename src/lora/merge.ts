// Merging an adapter into its base: W' = W + scale B A, per adapted weight, computed in float64 and
// stored in the base's float type (a quantised weight is dequantised and stored F32: requantising
// would throw away most of a small adapter's change). Offered as a TensorSource over the base's, so
// the model loader, the GGUF writer and the safetensors writer read merged weights like any file.
import { fail, quote } from '../errors.js';
import type { DType } from '../formats/dtype.js';
import type { TensorInfo, TensorSource } from '../formats/file.js';
import { dequantize, quantize } from '../formats/quant/index.js';
import type { ModelType } from '../models/config.js';
import { hfToGguf } from '../models/weights.js';
import type { LoraAdapter, LoraModule } from './adapter.js';

const FLOAT: ReadonlySet<DType> = new Set(['F32', 'F16', 'BF16']);

/** w [N, K] += scale * B A, accumulated in float64 per element. */
export function addDelta(w: Float32Array, m: LoraModule, scale = m.scale): void {
  const { r, inFeatures: K, outFeatures: N, a, b } = m;
  const row = new Float64Array(K);
  for (let n = 0; n < N; n++) {
    row.fill(0);
    for (let j = 0; j < r; j++) {
      const bj = b[n * r + j]!;
      if (bj === 0) continue;
      for (let k = 0; k < K; k++) row[k]! += bj * a[j * K + k]!;
    }
    for (let k = 0; k < K; k++) w[n * K + k] = w[n * K + k]! + scale * row[k]!;
  }
}

/**
 * `source` (a model's tensors, HF or GGUF names) with `adapter` merged into the weights it adapts.
 * Adapted tensors read as merged bytes; a quantised one becomes F32. Notes say what was dequantised.
 */
export interface MergeOptions {
  /** multiplies every module's scale */
  scale?: number;
  /** store merged weights as F32 whatever the base's type (exact up to f32 rounding) */
  f32?: boolean;
  /** receives one-line remarks (weights that were dequantised) */
  notes?: string[];
}

export function mergedSource(source: TensorSource, naming: 'hf' | 'gguf', type: ModelType, adapter: LoraAdapter, o: MergeOptions = {}): TensorSource {
  const scale = o.scale ?? 1;
  const byName = new Map<string, LoraModule>();
  for (const m of adapter.modules) {
    const hf = `${m.name}.weight`;
    const name = naming === 'hf' ? hf : hfToGguf(hf, type);
    const info = name && source.tensors.get(name);
    if (!name || !info) fail(`LoRA adapter ${quote(adapter.name)}: ${source.path} has no tensor ${quote(name ?? hf)} for module ${quote(m.name)}`);
    if (info.shape.length !== 2 || info.shape[0] !== m.outFeatures || info.shape[1] !== m.inFeatures) {
      fail(`LoRA adapter ${quote(adapter.name)}: module ${quote(m.name)} is [${m.outFeatures}, ${m.inFeatures}], but ${quote(name)} is [${info.shape.join(', ')}]`);
    }
    byName.set(name, m);
  }
  const tensors = new Map<string, TensorInfo>(source.tensors);
  let dequantised = 0;
  for (const name of byName.keys()) {
    const info = source.tensors.get(name)!;
    if (FLOAT.has(info.dtype) && !(o.f32 && info.dtype !== 'F32')) continue;
    tensors.set(name, { ...info, dtype: 'F32', byteLength: info.shape[0]! * info.shape[1]! * 4 });
    if (!FLOAT.has(info.dtype)) dequantised++;
  }
  if (dequantised) o.notes?.push(`${dequantised} adapted weights of ${source.path} are quantised: they are dequantised, merged and stored as F32`);
  const merged = (name: string): Uint8Array => {
    const info = source.tensors.get(name)!,
      m = byName.get(name)!;
    const raw = new Uint8Array(info.byteLength);
    source.readInto(name, raw);
    const w = new Float32Array(m.outFeatures * m.inFeatures);
    dequantize(info.dtype, raw, 0, w, 0, w.length);
    addDelta(w, m, m.scale * scale);
    return quantize(tensors.get(name)!.dtype, w, w.length);
  };
  return {
    path: source.path,
    tensors,
    readInto(name, dst) {
      if (!byName.has(name)) return source.readInto(name, dst);
      const b = merged(name);
      if (b.length !== dst.length) throw new Error(`readInto ${name}: destination has ${dst.length} bytes, tensor has ${b.length}`);
      dst.set(b);
    },
    close: () => source.close(),
  };
}
