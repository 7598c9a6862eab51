// IEEE binary16 (f16) and bfloat16 (bf16) <-> binary32 conversions, bit-exact with ggml:
// f32 -> f16 is GGML_FP32_TO_FP16 (round to nearest even, subnormals kept, NaN -> quiet NaN),
// f32 -> bf16 is ggml_compute_fp32_to_bf16 (round to nearest even, NaN forced quiet).

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Bits of `x` after rounding it to binary32 (what a C `float` argument would hold). */
export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

/** The binary32 value with bit pattern `bits`. */
export function f32FromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0]!;
}

function f16ToF32Slow(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero or subnormal
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

let table: Float32Array | undefined;

/** Lazily built table of all 65536 f16 values, for bulk dequantisation. */
export function f16Table(): Float32Array {
  if (!table) {
    const t = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) t[h] = f16ToF32Slow(h);
    table = t;
  }
  return table;
}

/** Decode an f16 bit pattern (0..0xffff) to its value. */
export function f16ToF32(h: number): number {
  return f16Table()[h & 0xffff]!;
}

/** Round half to even on a non-negative double (used for the f16 subnormal range). */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const r = v - f;
  if (r > 0.5 || (r === 0.5 && (f & 1) === 1)) return f + 1;
  return f;
}

/** Encode `x` (first rounded to binary32, as ggml takes a float) to f16 bits. */
export function f32ToF16(x: number): number {
  const u = f32Bits(x);
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00; // NaN
  if (a >= 0x477ff000) return sign | 0x7c00; // >= 65520 rounds (ties to even) to inf
  if (a < 0x38800000) {
    // below 2^-14: f16 subnormal, an integer count of 2^-24 (1024 carries into the smallest normal)
    return sign | roundHalfEven(Math.abs(f32[0]!) * 2 ** 24);
  }
  // rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits to nearest even;
  // a carry out of the mantissa correctly bumps the exponent
  const r = a - 0x38000000;
  return sign | ((r + 0xfff + ((r >>> 13) & 1)) >>> 13);
}

/** Decode a bf16 bit pattern to its value. */
export function bf16ToF32(h: number): number {
  return f32FromBits((h & 0xffff) << 16);
}

/** Encode `x` (first rounded to binary32) to bf16 bits. */
export function f32ToBf16(x: number): number {
  const u = f32Bits(x);
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 64) & 0xffff; // NaN: force quiet
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}
