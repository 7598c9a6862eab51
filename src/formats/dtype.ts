// Stored tensor types, as ggml defines them (block size, bytes per block).
// Shapes everywhere in qwen.ts are in numpy / Hugging Face order: [rows, cols],
// the innermost (contiguous) dimension last. GGUF's `ne` is the reverse.

export type DType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q2_K' | 'Q3_K' | 'Q4_K' | 'Q5_K' | 'Q6_K' | 'IQ4_NL' | 'IQ4_XS';

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
  Q4_1: { blockSize: 32, blockBytes: 20, ggmlType: 3 },
  Q5_0: { blockSize: 32, blockBytes: 22, ggmlType: 6 },
  Q5_1: { blockSize: 32, blockBytes: 24, ggmlType: 7 },
  Q8_0: { blockSize: 32, blockBytes: 34, ggmlType: 8 },
  Q2_K: { blockSize: 256, blockBytes: 84, ggmlType: 10 },
  Q3_K: { blockSize: 256, blockBytes: 110, ggmlType: 11 },
  Q4_K: { blockSize: 256, blockBytes: 144, ggmlType: 12 },
  Q5_K: { blockSize: 256, blockBytes: 176, ggmlType: 13 },
  Q6_K: { blockSize: 256, blockBytes: 210, ggmlType: 14 },
  IQ4_NL: { blockSize: 32, blockBytes: 18, ggmlType: 20 },
  IQ4_XS: { blockSize: 256, blockBytes: 136, ggmlType: 23 },
  BF16: { blockSize: 1, blockBytes: 2, ggmlType: 30 },
};

/**
 * Names of the ggml types qwen.ts does not read (ggml.h's enum ggml_type), so a file holding
 * one is refused by name.
 */
export const GGML_TYPE_NAMES: Readonly<Record<number, string>> = {
  4: 'Q4_2 (removed from ggml)',
  5: 'Q4_3 (removed from ggml)',
  9: 'Q8_1',
  15: 'Q8_K',
  16: 'IQ2_XXS',
  17: 'IQ2_XS',
  18: 'IQ3_XXS',
  19: 'IQ1_S',
  21: 'IQ3_S',
  22: 'IQ2_S',
  24: 'I8',
  25: 'I16',
  26: 'I32',
  27: 'I64',
  28: 'F64',
  29: 'IQ1_M',
  31: 'Q4_0_4_4 (removed from GGUF)',
  32: 'Q4_0_4_8 (removed from GGUF)',
  33: 'Q4_0_8_8 (removed from GGUF)',
  34: 'TQ1_0',
  35: 'TQ2_0',
  36: 'IQ4_NL_4_4 (removed from GGUF)',
  37: 'IQ4_NL_4_8 (removed from GGUF)',
  38: 'IQ4_NL_8_8 (removed from GGUF)',
  39: 'MXFP4',
  40: 'NVFP4',
  41: 'Q1_0',
  42: 'Q2_0',
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
