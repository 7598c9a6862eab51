// Shared helpers for the kernels. Every pointer is a byte offset into the one shared memory;
// the JS side (src/backend/wasm.ts) owns allocation, the kernels never allocate.

/** f16 -> f32 lookup table (65536 floats), filled once by init_tables(); below the JS heap. */
export const F16_TAB: usize = 65536;
/** First byte the JS allocator may hand out (tables and AssemblyScript statics live below). */
export const HEAP_BASE: usize = 1 << 20;

export function init_tables(): void {
  for (let h: u32 = 0; h < 65536; h++) store<f32>(F16_TAB + (<usize>h << 2), f16_to_f32(h));
}

/** Exact half -> float, subnormals, infinities and NaN included. */
export function f16_to_f32(h: u32): f32 {
  const sign = (h & 0x8000) << 16;
  const e = h & 0x7c00;
  if (e == 0x7c00) return reinterpret<f32>(sign | 0x7f800000 | ((h & 0x3ff) << 13));
  // (h & 0x7fff) << 13 is the half's bit pattern with the exponent 112 too small; 2^112 fixes it,
  // and the product is exact for normal and subnormal halves alike.
  const mag = reinterpret<f32>((h & 0x7fff) << 13) * reinterpret<f32>(0x77800000);
  return reinterpret<f32>(reinterpret<u32>(mag) | sign);
}

@inline export function f16(p: usize): f32 {
  return load<f32>(F16_TAB + (<usize>load<u16>(p) << 2));
}

@inline export function hsum(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

@inline export function hsum_i32(v: v128): i32 {
  const s = i32x4.add(v, v128.shuffle<i32>(v, v, 2, 3, 0, 1));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1);
}

/** a*b + c, fused where relaxed SIMD allows (results may differ in the last bit). */
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Start of part `part` of `n` items split `parts` ways in chunks rounded up to `align`. */
@inline export function split(n: i32, part: i32, parts: i32, align: i32): i32 {
  let c = (n + parts - 1) / parts;
  c = ((c + align - 1) / align) * align;
  const s = part * c;
  return s < n ? s : n;
}

/** sum_k a[k]*b[k] over n floats (any n). */
export function dot_f32(a: usize, b: usize, n: i32): f32 {
  let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0);
  let k = 0;
  for (; k + 8 <= n; k += 8) {
    const o = <usize>k << 2;
    acc0 = madd(v128.load(a + o), v128.load(b + o), acc0);
    acc1 = madd(v128.load(a + o, 16), v128.load(b + o, 16), acc1);
  }
  let s = hsum(f32x4.add(acc0, acc1));
  for (; k < n; k++) s += load<f32>(a + (<usize>k << 2)) * load<f32>(b + (<usize>k << 2));
  return s;
}

/** out[0..3] = x . w_i for four f32 rows w0..w3 (any K): weight rows in a matmul, key rows in attention. */
@inline export function dot4(out: usize, x: usize, w0: usize, w1: usize, w2: usize, w3: usize, K: i32): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let k = 0;
  for (; k + 4 <= K; k += 4) {
    const o = <usize>k << 2, xv = v128.load(x + o);
    a0 = madd(v128.load(w0 + o), xv, a0);
    a1 = madd(v128.load(w1 + o), xv, a1);
    a2 = madd(v128.load(w2 + o), xv, a2);
    a3 = madd(v128.load(w3 + o), xv, a3);
  }
  let s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
  for (; k < K; k++) {
    const o = <usize>k << 2, xs = load<f32>(x + o);
    s0 += load<f32>(w0 + o) * xs;
    s1 += load<f32>(w1 + o) * xs;
    s2 += load<f32>(w2 + o) * xs;
    s3 += load<f32>(w3 + o) * xs;
  }
  store<f32>(out, s0);
  store<f32>(out, s1, 4);
  store<f32>(out, s2, 8);
  store<f32>(out, s3, 12);
}

/** [sum a, sum b, sum c, sum d] of four i32x4 (exact): four rows' integer dots at once. */
@inline export function hadd4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(v128.shuffle<i32>(a, b, 0, 1, 4, 5), v128.shuffle<i32>(a, b, 2, 3, 6, 7));
  const cd = i32x4.add(v128.shuffle<i32>(c, d, 0, 1, 4, 5), v128.shuffle<i32>(c, d, 2, 3, 6, 7));
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 2, 4, 6), v128.shuffle<i32>(ab, cd, 1, 3, 5, 7));
}

/** The f16 values at p0..p3 as one f32x4 (four rows' block scales, or their mins). */
@inline export function f16x4(p0: usize, p1: usize, p2: usize, p3: usize): v128 {
  let s = f32x4.splat(f16(p0));
  s = f32x4.replace_lane(s, 1, f16(p1));
  s = f32x4.replace_lane(s, 2, f16(p2));
  return f32x4.replace_lane(s, 3, f16(p3));
}

/** Rows of one chunk of a one-token product: about 1/(8 parts) of the matrix, a multiple of `unit` (a power of two). */
@inline export function chunkRows(N: i32, parts: i32, unit: i32): i32 {
  const want = (N + 8 * parts - 1) / (8 * parts);
  return max(unit, (want + unit - 1) & ~(unit - 1));
}

/**
 * The next chunk of a one-token product over `count` matrices (desc: 16 bytes each, N at +8),
 * claimed through the shared counter so that a thread finishing early takes more: -1 when every
 * chunk is taken, else (m << 32) | the chunk's index within matrix m.
 */
export function claimChunk(counter: usize, desc: usize, count: i32, parts: i32, unit: i32): i64 {
  let c = atomic.add<i32>(counter, 1);
  for (let m = 0; m < count; m++) {
    const N = load<i32>(desc + <usize>m * 16, 8), ch = chunkRows(N, parts, unit), n = (N + ch - 1) / ch;
    if (c < n) return (<i64>m << 32) | <i64>c;
    c -= n;
  }
  return -1;
}

/** A store of v's lane 0 to sink, a slot of the caller's output that it writes again later. V8
 * 11.3 (Node 20) schedules a function's loads as early as the effect chain allows (all of a
 * loop body's at its top) and spills most of them; a store between two steps keeps each step's
 * loads next to their use (Q6_K one-token: 2,937 stack moves -> 261). */
@inline export function pin(sink: usize, v: v128): void { store<i32>(sink, i32x4.extract_lane(v, 0)); }
