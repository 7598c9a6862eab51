// Conversion between stored tensor bytes (ggml layouts, little-endian) and Float32Array.
import { DTYPES, type DType } from '../dtype.js';
import { bf16ToF32, f16Table, f32ToBf16, f32ToF16 } from './half.js';
import { dequantizeQ4_0, quantizeQ4_0 } from './q4_0.js';
import { dequantizeQ4_1, quantizeQ4_1 } from './q4_1.js';
import { dequantizeQ5_0, quantizeQ5_0 } from './q5_0.js';
import { dequantizeQ5_1, quantizeQ5_1 } from './q5_1.js';
import { dequantizeQ2_K, quantizeQ2_K } from './q2_k.js';
import { dequantizeQ3_K, quantizeQ3_K } from './q3_k.js';
import { dequantizeQ4_K, quantizeQ4_K } from './q4_k.js';
import { dequantizeQ5_K, quantizeQ5_K } from './q5_k.js';
import { dequantizeQ6_K, quantizeQ6_K } from './q6_k.js';
import { dequantizeQ8_0, quantizeQ8_0 } from './q8_0.js';
import { dequantizeIQ4_NL, quantizeIQ4_NL } from './iq4_nl.js';
import { dequantizeIQ4_XS, quantizeIQ4_XS } from './iq4_xs.js';

export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './half.js';
export { dequantizeQ4_0, quantizeQ4_0 } from './q4_0.js';
export { dequantizeQ4_1, quantizeQ4_1 } from './q4_1.js';
export { dequantizeQ5_0, quantizeQ5_0 } from './q5_0.js';
export { dequantizeQ5_1, quantizeQ5_1 } from './q5_1.js';
export { dequantizeQ2_K, quantizeQ2_K } from './q2_k.js';
export { dequantizeQ3_K, quantizeQ3_K } from './q3_k.js';
export { dequantizeQ4_K, quantizeQ4_K } from './q4_k.js';
export { dequantizeQ5_K, quantizeQ5_K } from './q5_k.js';
export { dequantizeQ6_K, quantizeQ6_K } from './q6_k.js';
export { dequantizeQ8_0, quantizeQ8_0 } from './q8_0.js';
export { dequantizeIQ4_NL, quantizeIQ4_NL } from './iq4_nl.js';
export { dequantizeIQ4_XS, quantizeIQ4_XS } from './iq4_xs.js';

type BlockDecode = (src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number) => void;
type BlockEncode = (src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, nBlocks: number) => void;
/**
 * The block formats: decoder and ggml's encoder of each (the one llama-quantize runs without an
 * importance matrix: quantize_row_*_ref, and for IQ4_NL / IQ4_XS quantize_iq4_nl / _xs).
 */
const BLOCK_CODECS: Partial<Record<DType, [BlockDecode, BlockEncode]>> = {
  Q8_0: [dequantizeQ8_0, quantizeQ8_0],
  Q4_0: [dequantizeQ4_0, quantizeQ4_0],
  Q4_1: [dequantizeQ4_1, quantizeQ4_1],
  Q5_0: [dequantizeQ5_0, quantizeQ5_0],
  Q5_1: [dequantizeQ5_1, quantizeQ5_1],
  Q4_K: [dequantizeQ4_K, quantizeQ4_K],
  Q6_K: [dequantizeQ6_K, quantizeQ6_K],
  Q2_K: [dequantizeQ2_K, quantizeQ2_K],
  Q3_K: [dequantizeQ3_K, quantizeQ3_K],
  Q5_K: [dequantizeQ5_K, quantizeQ5_K],
  IQ4_NL: [dequantizeIQ4_NL, quantizeIQ4_NL],
  IQ4_XS: [dequantizeIQ4_XS, quantizeIQ4_XS],
};

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function checkCount(dtype: DType, n: number): number {
  const info = DTYPES[dtype];
  if (!info) throw new Error(`unknown dtype ${String(dtype)}`);
  if (!Number.isInteger(n) || n < 0 || n % info.blockSize !== 0) {
    throw new Error(`${dtype}: element count ${n} is not a multiple of the block size ${info.blockSize}`);
  }
  return n / info.blockSize;
}

function checkRanges(dtype: DType, srcLen: number, srcEnd: number, dstLen: number, dstEnd: number): void {
  if (srcEnd > srcLen) throw new Error(`${dtype}: source too short (${srcLen} bytes, need ${srcEnd})`);
  if (dstEnd > dstLen) throw new Error(`${dtype}: destination too short (${dstLen} floats, need ${dstEnd})`);
}

/**
 * Decode `n` elements of `dtype` starting at byte `srcOffset` of `src` into `dst[dstOffset..]`.
 * `n` must be a multiple of the type's block size.
 */
export function dequantize(dtype: DType, src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, n: number): void {
  const nBlocks = checkCount(dtype, n);
  checkRanges(dtype, src.length, srcOffset + nBlocks * DTYPES[dtype].blockBytes, dst.length, dstOffset + n);
  switch (dtype) {
    case 'F32': {
      const at = src.byteOffset + srcOffset;
      if (LITTLE_ENDIAN && at % 4 === 0) {
        dst.set(new Float32Array(src.buffer, at, n), dstOffset);
      } else {
        // unaligned (or big-endian host): go through a DataView
        const dv = new DataView(src.buffer, at, n * 4);
        for (let i = 0; i < n; i++) dst[dstOffset + i] = dv.getFloat32(4 * i, true);
      }
      return;
    }
    case 'F16': {
      const t = f16Table();
      for (let i = 0, p = srcOffset; i < n; i++, p += 2) dst[dstOffset + i] = t[src[p]! | (src[p + 1]! << 8)]!;
      return;
    }
    case 'BF16':
      for (let i = 0, p = srcOffset; i < n; i++, p += 2) dst[dstOffset + i] = bf16ToF32(src[p]! | (src[p + 1]! << 8));
      return;
    default: {
      const codec = BLOCK_CODECS[dtype];
      if (!codec) throw new Error(`dequantize: unsupported dtype ${String(dtype)}`);
      return codec[0](src, srcOffset, dst, dstOffset, nBlocks);
    }
  }
}

/**
 * Encode `src[0..n)` as `dtype`, bit-exact with ggml's quantisers as llama-quantize runs them
 * without an importance matrix (quantize_row_*_ref; quantize_iq4_nl / _xs for the IQ4 types).
 */
export function quantize(dtype: DType, src: Float32Array, n: number): Uint8Array {
  const nBlocks = checkCount(dtype, n);
  if (n > src.length) throw new Error(`${dtype}: source has ${src.length} elements, need ${n}`);
  const out = new Uint8Array(nBlocks * DTYPES[dtype].blockBytes);
  switch (dtype) {
    case 'F32': {
      const dv = new DataView(out.buffer);
      for (let i = 0; i < n; i++) dv.setFloat32(4 * i, src[i]!, true);
      return out;
    }
    case 'F16':
    case 'BF16': {
      const enc = dtype === 'F16' ? f32ToF16 : f32ToBf16;
      for (let i = 0; i < n; i++) {
        const h = enc(src[i]!);
        out[2 * i] = h & 0xff;
        out[2 * i + 1] = h >>> 8;
      }
      return out;
    }
    default: {
      const codec = BLOCK_CODECS[dtype];
      if (!codec) throw new Error(`quantize: unsupported dtype ${String(dtype)}`);
      codec[1](src, 0, out, 0, nBlocks);
      return out;
    }
  }
}
