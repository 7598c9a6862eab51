// Stored tensor types, as ggml defines them (block size, bytes per block).
// Shapes everywhere in qwen.ts are in numpy / Hugging Face order: [rows, cols],
// the innermost (contiguous) dimension last. GGUF's `ne` is the reverse.

export type DType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q4_K' | 'Q6_K';

export interface DTypeInfo {
  /** elements per block along the innermost dimension */
  blockSize: number;
  /** bytes per block */
  blockBytes: number;
  /** ggml_type id in GGUF files */
  ggmlType: number;
}

export const DTYPES: Record<DType, DTypeInfo> = {
  F32: { blockSize: 1, blockBytes: 4, ggmlType: 0 },
  F16: { blockSize: 1, blockBytes: 2, ggmlType: 1 },
  Q4_0: { blockSize: 32, blockBytes: 18, ggmlType: 2 },
  Q8_0: { blockSize: 32, blockBytes: 34, ggmlType: 8 },
  Q4_K: { blockSize: 256, blockBytes: 144, ggmlType: 12 },
  Q6_K: { blockSize: 256, blockBytes: 210, ggmlType: 14 },
  BF16: { blockSize: 1, blockBytes: 2, ggmlType: 30 },
};

export function dtypeFromGgml(t: number): DType | undefined {
  for (const [k, v] of Object.entries(DTYPES)) if (v.ggmlType === t) return k as DType;
  return undefined;
}

/** Byte size of a tensor, or a reason it cannot be stored in this type. */
export function tensorBytes(dtype: DType, shape: readonly number[]): number {
  const info = DTYPES[dtype];
  const inner = shape.length ? shape[shape.length - 1]! : 1;
  if (inner % info.blockSize !== 0) {
    throw new Error(`innermost dimension ${inner} is not a multiple of the ${dtype} block size ${info.blockSize}`);
  }
  let rows = 1;
  for (let i = 0; i < shape.length - 1; i++) rows *= shape[i]!;
  return rows * (inner / info.blockSize) * info.blockBytes;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
