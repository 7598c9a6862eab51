// Opt-in scan of tensor data for NaN and infinite values, as llama.cpp's `--check-tensors`
// (ggml_validate_row_data, ggml/src/ggml-quants.c): F32 / F16 / BF16 elements, and in the block
// formats the f16 scales of every block (d, and m / dmin where the format has one). The other
// bytes of a block are integers, so they cannot be NaN. A corrupt scale otherwise shows up only
// as NaN logits, or not at all when the block's row is never read.
//
// A value is NaN or infinite when its exponent bits are all ones. Every checked word of the block
// types is an f16 scale: one strided loop over a Uint16Array per field. F32 / F16 / BF16 are
// scanned a 32-bit word at a time (one or two values per word), then the hit is pinned down.
// Cost: see the README (--check-tensors).
import { fail, quote } from '../errors.js';
import { DTYPES, type DType } from './dtype.js';
import type { TensorInfo } from './file.js';
import { bf16ToF32, f16ToF32 } from './quant/half.js';

/** Where a type's checked 16-bit words lie: [field, byte offset in the block] (ggml-common.h). */
interface Layout {
  /** f16 scales of a block, or '' for the element itself (float types) */
  fields: readonly (readonly [field: string, at: number])[];
  /** exponent bits of the checked word: f16 0x7c00, bf16 / f32's high half 0x7f80 */
  mask: number;
}
const D = [['d', 0]] as const;
const DM = [
  ['d', 0],
  ['m', 2],
] as const;
const D_DMIN = [
  ['d', 0],
  ['dmin', 2],
] as const;
const F16_EXP = 0x7c00,
  BF16_EXP = 0x7f80;

/** The fields ggml_validate_row_data checks, for each type qwen.ts reads. */
export const CHECKED_FIELDS: Readonly<Record<DType, Layout>> = {
  F32: { fields: [['', 2]], mask: BF16_EXP }, // the high half of a little-endian f32
  F16: { fields: [['', 0]], mask: F16_EXP },
  BF16: { fields: [['', 0]], mask: BF16_EXP },
  Q4_0: { fields: D, mask: F16_EXP }, // d, qs[16]
  Q4_1: { fields: DM, mask: F16_EXP }, // d, m, qs[16]
  Q5_0: { fields: D, mask: F16_EXP }, // d, qh[4], qs[16]
  Q5_1: { fields: DM, mask: F16_EXP }, // d, m, qh[4], qs[16]
  Q8_0: { fields: D, mask: F16_EXP }, // d, qs[32]
  Q2_K: {
    fields: [
      ['d', 80],
      ['dmin', 82],
    ],
    mask: F16_EXP,
  }, // scales[16], qs[64], d, dmin
  Q3_K: { fields: [['d', 108]], mask: F16_EXP }, // hmask[32], qs[64], scales[12], d
  Q4_K: { fields: D_DMIN, mask: F16_EXP }, // d, dmin, scales[12], qs[128]
  Q5_K: { fields: D_DMIN, mask: F16_EXP }, // d, dmin, scales[12], qh[32], qs[128]
  Q6_K: { fields: [['d', 208]], mask: F16_EXP }, // ql[128], qh[64], scales[16], d
  IQ4_NL: { fields: D, mask: F16_EXP }, // d, qs[16]
  IQ4_XS: { fields: D, mask: F16_EXP }, // d, scales_h, scales_l[4], qs[128]
};

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * F32 / F16 / BF16 a 32-bit word at a time: w & mask keeps the exponent bits of the word's one or
 * two values, + add carries into the bit above an exponent (the top bit of its half) exactly when
 * it is all ones. The sum may pass 2^31 (only on a bad value); `|` and `&` take it modulo 2^32 as
 * ToInt32 does, so the test stays exact.
 */
const DENSE: Partial<Record<DType, { mask: number; add: number; top: number; per: number }>> = {
  F32: { mask: 0x7f800000, add: 0x00800000, top: 0x80000000 | 0, per: 1 },
  F16: { mask: 0x7c007c00, add: 0x04000400, top: 0x80008000 | 0, per: 2 },
  BF16: { mask: 0x7f807f80, add: 0x00800080, top: 0x80008000 | 0, per: 2 },
};

/** Index of the first word of w[0..n) holding a value with an all-ones exponent (to within 8 words), or n. */
function denseScan(w: Int32Array, n: number, mask: number, add: number, top: number): number {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const a =
      ((w[i]! & mask) + add) |
      ((w[i + 1]! & mask) + add) |
      ((w[i + 2]! & mask) + add) |
      ((w[i + 3]! & mask) + add) |
      ((w[i + 4]! & mask) + add) |
      ((w[i + 5]! & mask) + add) |
      ((w[i + 6]! & mask) + add) |
      ((w[i + 7]! & mask) + add);
    if ((a & top) !== 0) break;
  }
  return i;
}

export interface NonFinite {
  /** block index (element index for F32 / F16 / BF16) within `bytes` */
  index: number;
  /** the scale's name (d, m, dmin), or '' for an element */
  field: string;
  value: 'NaN' | '+Inf' | '-Inf';
}

/**
 * The first NaN or infinite value in `bytes` (whole blocks of `dtype`), in block order (d before
 * m / dmin within a block), or undefined when every checked value is finite.
 */
export function findNonFinite(dtype: DType, bytes: Uint8Array): NonFinite | undefined {
  const { blockBytes } = DTYPES[dtype];
  const { fields, mask } = CHECKED_FIELDS[dtype];
  const n = Math.floor(bytes.length / blockBytes),
    stride = blockBytes >> 1; // every block size is even
  let from = 0; // blocks before it are known to be finite
  const dense = DENSE[dtype];
  if (dense && LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) {
    const words = Math.floor((n * blockBytes) / 4);
    from = denseScan(new Int32Array(bytes.buffer, bytes.byteOffset, words), words, dense.mask, dense.add, dense.top) * dense.per;
  }
  // one pass over the blocks, both fields at once (each block's words share a cache line or two)
  const at0 = fields[0]![1],
    at1 = (fields[1] ?? fields[0]!)[1];
  let i = from;
  if (LITTLE_ENDIAN && bytes.byteOffset % 2 === 0) {
    const w = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length >> 1);
    let j = (at0 >> 1) + i * stride;
    const k = (at1 - at0) >> 1;
    if (k === 0)
      for (; i < n; i++, j += stride) {
        if ((w[j]! & mask) === mask) break;
      }
    else for (; i < n; i++, j += stride) if ((w[j]! & mask) === mask || (w[j + k]! & mask) === mask) break;
  } else {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    for (let o = i * blockBytes; i < n; i++, o += blockBytes) {
      if ((dv.getUint16(o + at0, true) & mask) === mask || (dv.getUint16(o + at1, true) & mask) === mask) break;
    }
  }
  const best = i;
  if (best === n) return undefined;
  const h0 = bytes[best * blockBytes + at0]! | (bytes[best * blockBytes + at0 + 1]! << 8);
  const bestField = (h0 & mask) === mask ? 0 : 1; // d before m / dmin
  let x: number;
  if (dtype === 'F32') x = new DataView(bytes.buffer, bytes.byteOffset + best * 4, 4).getFloat32(0, true);
  else {
    const at = best * blockBytes + fields[bestField]![1],
      h = bytes[at]! | (bytes[at + 1]! << 8);
    x = dtype === 'BF16' ? bf16ToF32(h) : f16ToF32(h);
  }
  return { index: best, field: fields[bestField]![0], value: Number.isNaN(x) ? 'NaN' : x > 0 ? '+Inf' : '-Inf' };
}

/**
 * --check-tensors: fail on the first NaN or infinite value of a tensor's bytes, naming the file,
 * the tensor, the block (or element) index within the whole tensor and the field. `start` is the
 * byte offset of `bytes` within the tensor (a tensor may be checked a piece at a time).
 */
export function checkTensorData(info: TensorInfo, bytes: Uint8Array, start = 0): void {
  const bad = findNonFinite(info.dtype, bytes);
  if (!bad) return;
  const index = start / DTYPES[info.dtype].blockBytes + bad.index;
  const what = bad.field ? `block ${index}'s scale ${bad.field}` : `element ${index}`;
  fail(`${info.file}: tensor ${quote(info.name)}: ${what} is ${bad.value} (--check-tensors)`);
}
