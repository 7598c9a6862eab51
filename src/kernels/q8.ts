// Legacy block weights (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: blocks of 32 integers, an f16 scale d and,
// for Q4_1 / Q5_1, an f16 min m; see q8_fmt.ts) times activations quantised to 8-bit blocks, as
// ggml does on the CPU for every batch size: every 32 activations share one f32 scale
// d = amax/127 and are rounded to nearest-even integers. The kernels are generic over the weight
// format (W, see q8_fmt.ts), which only changes how a block's 32 integers are loaded and whether
// a min term is added.
//
// Batch invariance: a row's result must not depend on how many tokens share the call (the server
// batches concurrent requests). Every kernel here computes each (token, row) the same way:
//   acc = 0;  for each block b in order:  acc = acc + f32(isum_b) * (dw_b * dx_b)
//                                  min types, then:  acc = acc + mw_b * sx_b
// with isum_b the exact integer dot of the block (|isum| <= 32*127*127 < 2^24, so its f32 is
// exact too), dw_b * dx_b one f32 multiply, and the multiply-adds fused in the relaxed build
// (plain in the other; see step). sx_b = f32(xsum_b) * dx_b is ggml's Q8_1 "s" (there rounded to
// f16; here f32), with xsum_b the exact integer sum of the activation block, made once per token
// by quant_q8: the min term of sum (dw*q + mw) * dx*qx is mw * dx * sum qx. How isum_b is computed
// (which instruction, which lane order) cannot change it, so the one-token kernel (which reads
// weights as stored, memory-bound) and the many-token tile (pre-decoded weights, compute-bound)
// agree to the bit.
//
// Quantised activation row layouts (2*K bytes per token), chosen by wasm.ts:
//   Q8_I16:  K int16 q (the tile, and the plain-SIMD one-token kernel)
//   Q8_SIGN: K bytes |q| (0..127, the i7 operand of relaxed dot), then K bytes sign masks
//            (0xff where q < 0): relaxed one-token kernel. The sign of x moves onto the weights:
//            w*x = (w * sign(x)) * |x|, and w * sign(x) = (w ^ m) - m with m the sign mask.
//            (A weight of -128, which no format here holds, would wrap there.)
//   Q8_U8:   K bytes q + 128: the vpdpbusd tile (q8_tile.ts), where the engine has it.
import { chunkRows, claimChunk, f16x4, hadd4, hsum_i32, split } from './common';
import { DT_Q4_0, DT_Q4_1, DT_Q5_0, DT_Q5_1 } from './dequant';
import { bsz, dscale, hasMin, IQ4_NL, lut, mscale, nibbles, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, udot2, woff, wvec } from './q8_fmt';
import { DT_IQ4_NL } from './dequant_k';
import { mm_tile, mstep, scatter4, step } from './q8_tile';
import { mm_q8_small } from './small_q8';

export const Q8_I16 = 0, Q8_SIGN = 1, Q8_U8 = 2;
/** mm_q8_0's mode for a few tokens quantised in the one-token layout: small_q8.ts. */
export const Q8_SMALL = 3;

/**
 * x [T, K] f32 -> xq [T, 2K] bytes (layout `mode`), xd [T, K/32] f32 scales and, unless xs is 0,
 * xs [T, K/32] f32 block sums sx = f32(sum of the block's q) * d (the min types'). K % 32 == 0.
 */
export function quant_q8(x: usize, T: i32, K: i32, xq: usize, xd: usize, mode: i32, xs: usize): void {
  const nb = K >> 5;
  const zero = i32x4.splat(0);
  for (let t = 0; t < T; t++) {
    const xr = x + ((<usize>t * K) << 2);
    const qr = xq + <usize>t * 2 * K;
    for (let b = 0; b < nb; b++) {
      const p = xr + (<usize>b << 7);
      let m = f32x4.splat(0);
      for (let i = 0; i < 8; i++) m = f32x4.max(m, f32x4.abs(v128.load(p + (<usize>i << 4))));
      m = f32x4.max(m, v128.shuffle<f32>(m, m, 2, 3, 0, 1));
      const amax = max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1));
      const d: f32 = amax / 127;
      const id: f32 = d != 0 ? <f32>1 / d : 0;
      store<f32>(xd + ((<usize>t * nb + b) << 2), d);
      const vid = f32x4.splat(id);
      let qsum = i32x4.splat(0);
      for (let h = 0; h < 2; h++) {
        const ph = p + (<usize>h << 6);
        const i0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(ph), vid)));
        const i1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(ph, 16), vid)));
        const i2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(ph, 32), vid)));
        const i3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(ph, 48), vid)));
        const s0 = i16x8.narrow_i32x4_s(i0, i1), s1 = i16x8.narrow_i32x4_s(i2, i3);
        qsum = i32x4.add(qsum, i32x4.extadd_pairwise_i16x8_s(i16x8.add(s0, s1))); // exact: |lane| <= 4 * 254
        const o = (<usize>b << 5) + (<usize>h << 4);
        if (mode == Q8_U8) {
          v128.store(qr + o, v128.xor(i8x16.narrow_i16x8_s(s0, s1), i8x16.splat(-128))); // q + 128
        } else if (mode == Q8_SIGN) {
          const q = i8x16.narrow_i16x8_s(s0, s1);
          v128.store(qr + o, i8x16.abs(q));
          v128.store(qr + <usize>K + o, i8x16.lt_s(q, zero));
        } else {
          v128.store(qr + (o << 1), s0);
          v128.store(qr + (o << 1), s1, 16);
        }
      }
      if (xs) store<f32>(xs + ((<usize>t * nb + b) << 2), <f32>hsum_i32(qsum) * d);
    }
  }
}

/**
 * Whether the relaxed one-token kernel takes this format's weights unsigned, as stored (the
 * nibble formats: 0..15 or 0..31, the i7 operand of relaxed dot) against the signed activations:
 * no sign moves onto the weights (two instructions per 16 weights fewer than Q8_0's way), and
 * the offset (Q4_0: 8, Q5_0: 16) comes off the block's integer dot as woff * (sum of the block's
 * q), once per block for all rows: the same exact isum, so the same bits as every other kernel.
 */
@inline export function unsignedW<W>(): bool {
  return ASC_FEATURE_RELAXED_SIMD && nibbles<W>() && !lut<W>();
}

/** For unsignedW: the activation half at (|q| a, sign mask m) as signed q = (a ^ m) - m. */
@inline export function signed(a: v128, m: v128): v128 {
  return i8x16.sub(v128.xor(a, m), m);
}

/** For unsignedW with an offset: woff * (the sum of the block's q, from its signed halves s0, s1), splat. */
@inline export function offset<W>(s0: v128, s1: v128): v128 {
  if (!unsignedW<W>() || woff<W>() == 0) return i32x4.splat(0);
  const p = i16x8.add(i16x8.extadd_pairwise_i8x16_s(s0), i16x8.extadd_pairwise_i8x16_s(s1));
  return i32x4.splat(woff<W>() * hsum_i32(i32x4.extadd_pairwise_i16x8_s(p)));
}

/**
 * Lane partials (i32x4) of the integer dot of the 32-weight block at `p` with one activation
 * block, loaded once for the eight rows of a step (V8 does not merge repeated loads): relaxed:
 * a0, a1 = |q|, m0, m1 = sign masks, or, for unsignedW formats, a0, a1 = q (signed) and the dot
 * is of the stored unsigned weights (woff not subtracted); plain: a0..a3 = q as int16.
 */
@inline function bdot<W>(p: usize, a0: v128, a1: v128, m0: v128, m1: v128): v128 {
  if (unsignedW<W>()) {
    // pairs of products: |q| <= 127 times u <= 31, two of them, and two such i16 lanes summed:
    // at most 4 * 127 * 31 = 15748, no saturation
    return i32x4.extadd_pairwise_i16x8_s(udot2<W>(p, a0, a1));
  } else if (ASC_FEATURE_RELAXED_SIMD) {
    const s0 = i8x16.sub(v128.xor(wvec<W>(p, 0), m0), m0);
    const s1 = i8x16.sub(v128.xor(wvec<W>(p, 1), m1), m1);
    // i16x8.relaxed_dot (pmaddubsw) then a pairwise widening add: in this kernel V8 11.3 (Node
    // 20) once computed i32x4.relaxed_dot_i8x16_i7x16_add_s wrongly (double the dot, no addend;
    // exact on plain vectors, so it depends on the code around it), and it is no faster there.
    const p0 = i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(s0, a0));
    return i32x4.add(p0, i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(s1, a1)));
  } else {
    const w0 = wvec<W>(p, 0), w1 = wvec<W>(p, 1);
    let acc = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w0), a0);
    acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w0), a1));
    acc = i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w1), m0));
    return i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w1), m1));
  }
}

/** The activation block at a (one-token layout) as bdot's four operands. */
@inline export function act0(a: usize): v128 { return v128.load(a); }
@inline export function act1(a: usize): v128 { return v128.load(a, 16); }
@inline export function act2(a: usize, K: i32): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return v128.load(a + <usize>K);
  return v128.load(a, 32);
}
@inline export function act3(a: usize, K: i32): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return v128.load(a + <usize>K, 16);
  return v128.load(a, 48);
}

/** Byte offset of activation block b within a quantised row of the one-token layout. */
@inline export function aoff(b: i32): usize {
  if (ASC_FEATURE_RELAXED_SIMD) return <usize>b << 5;
  return <usize>b << 6;
}

/** [isum of the row at p] in lane 0 (see isum4). */
@inline export function isum1<W>(p: usize, a0: v128, a1: v128, a2: v128, a3: v128, off: v128): v128 {
  const s = i32x4.splat(hsum_i32(bdot<W>(p, a0, a1, a2, a3)));
  return unsignedW<W>() && woff<W>() != 0 ? i32x4.sub(s, off) : s;
}

/** One block of four rows w0..w3 (block offset bo) into acc: the canonical step, then the min's. */
@inline function block4<W>(acc: v128, w0: usize, w1: usize, w2: usize, w3: usize, bo: usize, a0: v128, a1: v128, a2: v128, a3: v128, off: v128, dx: v128, sx: v128): v128 {
  // the f16 scale d opens every block; Q4_1 / Q5_1's min m follows it (dscale, mscale)
  let c = step(acc, isum4<W>(w0, w1, w2, w3, bo, a0, a1, a2, a3, off), f16x4(w0 + bo, w1 + bo, w2 + bo, w3 + bo), dx);
  if (hasMin<W>()) c = mstep(c, f16x4(w0 + bo + 2, w1 + bo + 2, w2 + bo + 2, w3 + bo + 2), sx);
  return c;
}

/** [isum of rows w0..w3] for block offset bo, from the activation operands a0..a3 (see bdot)
 * and, for unsignedW, the block's offset (see offset). */
@inline export function isum4<W>(w0: usize, w1: usize, w2: usize, w3: usize, bo: usize, a0: v128, a1: v128, a2: v128, a3: v128, off: v128): v128 {
  const s = hadd4(bdot<W>(w0 + bo, a0, a1, a2, a3), bdot<W>(w1 + bo, a0, a1, a2, a3), bdot<W>(w2 + bo, a0, a1, a2, a3), bdot<W>(w3 + bo, a0, a1, a2, a3));
  return unsignedW<W>() && woff<W>() != 0 ? i32x4.sub(s, off) : s;
}

/**
 * Sixteen streams q apart, for parts of 256 rows or more (see mv_q8): with two accumulators per
 * eight rows (the canonical sum reduces each block's integer dot across lanes) sixteen streams
 * fit the registers, and the 0.5B model decodes 7% faster than with eight (Q8_0, 2 threads,
 * 4 alternating runs: 40.3-42.2 tok/s vs 37.5-39.0); 32 streams gained nothing more.
 */
function mv_q8_16<W>(out: usize, w: usize, xq: usize, xd: usize, xs: usize, K: i32, n0: i32, q: i32): void {
  const nb = K >> 5, rowBytes = <usize>nb * bsz<W>(), qb = <usize>q * rowBytes;
  for (let n = n0; n < n0 + q; n++) {
    const w0 = w + <usize>n * rowBytes;
    const w1 = w0 + qb, w2 = w1 + qb, w3 = w2 + qb, w4 = w3 + qb, w5 = w4 + qb, w6 = w5 + qb, w7 = w6 + qb;
    const w8 = w7 + qb, w9 = w8 + qb, w10 = w9 + qb, w11 = w10 + qb, w12 = w11 + qb, w13 = w12 + qb, w14 = w13 + qb, w15 = w14 + qb;
    let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const a = xq + aoff(b), bo = <usize>b * bsz<W>();
      let a0 = act0(a), a1 = act1(a);
      const a2 = act2(a, K), a3 = act3(a, K);
      if (unsignedW<W>()) { a0 = signed(a0, a2); a1 = signed(a1, a3); }
      const off = offset<W>(a0, a1);
      const dx = v128.load32_splat(xd + (<usize>b << 2)), sx = hasMin<W>() ? v128.load32_splat(xs + (<usize>b << 2)) : dx;
      c0 = block4<W>(c0, w0, w1, w2, w3, bo, a0, a1, a2, a3, off, dx, sx);
      c1 = block4<W>(c1, w4, w5, w6, w7, bo, a0, a1, a2, a3, off, dx, sx);
      c2 = block4<W>(c2, w8, w9, w10, w11, bo, a0, a1, a2, a3, off, dx, sx);
      c3 = block4<W>(c3, w12, w13, w14, w15, bo, a0, a1, a2, a3, off, dx, sx);
    }
    scatter4(out + (<usize>n << 2), q, c0, 4);
    scatter4(out + (<usize>(n + 4 * q) << 2), q, c1, 4);
    scatter4(out + (<usize>(n + 8 * q) << 2), q, c2, 4);
    scatter4(out + (<usize>(n + 12 * q) << 2), q, c3, 4);
  }
}

/**
 * Streams q rows apart whose distance is a multiple of 2 KiB fall into one or two L1 sets (4 KiB
 * apart map to the same set), and 8 or 16 of them evict each other: Qwen3.5's 2048- and 6144-row
 * products split in two ran at 60-70% of the bandwidth the others get. One row less apart avoids it
 * (the rows left over take the next path; every path sums a row the same way).
 */
@inline function unaliased(q: i32, rowBytes: usize): i32 {
  return q > 1 && ((<usize>q * rowBytes) & 2047) == 0 ? q - 1 : q;
}

/**
 * One token: rows n0..n1 of one matrix. Decode is bound by how fast the weights arrive. Eight
 * rows q apart are read together: eight separate sequential streams keep the hardware
 * prefetchers busy (0.5B model, 2 threads: 2 adjacent rows 49 ms/token, 2 streams 47, 4 streams
 * 34, 8 streams 29; touching lines ahead by loads no longer helps at 8; handing out 64-row
 * chunks through an atomic counter, to balance the threads, was slower: 30.5; running the q, k
 * and v rows as one run of streams, so that k and v make no short streams, was slower too).
 * Large parts take sixteen streams first (mv_q8_16); the rest, eight; the last n % 8 one by one.
 */
function mv_q8<W>(out: usize, w: usize, xq: usize, xd: usize, xs: usize, K: i32, n0: i32, n1: i32): void {
  const nb = K >> 5, rowBytes = <usize>nb * bsz<W>();
  if (n1 - n0 >= 256) {
    const q16 = unaliased((n1 - n0) >> 4, rowBytes);
    mv_q8_16<W>(out, w, xq, xd, xs, K, n0, q16);
    n0 += 16 * q16;
  }
  const q = unaliased((n1 - n0) >> 3, rowBytes);
  let n = n0;
  for (; n < n0 + q; n++) {
    const w0 = w + <usize>n * rowBytes, qb = <usize>q * rowBytes;
    const w1 = w0 + qb, w2 = w1 + qb, w3 = w2 + qb, w4 = w3 + qb, w5 = w4 + qb, w6 = w5 + qb, w7 = w6 + qb;
    let lo = f32x4.splat(0), hi = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const a = xq + aoff(b), bo = <usize>b * bsz<W>();
      let a0 = act0(a), a1 = act1(a);
      const a2 = act2(a, K), a3 = act3(a, K);
      if (unsignedW<W>()) { a0 = signed(a0, a2); a1 = signed(a1, a3); }
      const off = offset<W>(a0, a1);
      const dx = v128.load32_splat(xd + (<usize>b << 2)), sx = hasMin<W>() ? v128.load32_splat(xs + (<usize>b << 2)) : dx;
      lo = block4<W>(lo, w0, w1, w2, w3, bo, a0, a1, a2, a3, off, dx, sx);
      hi = block4<W>(hi, w4, w5, w6, w7, bo, a0, a1, a2, a3, off, dx, sx);
    }
    scatter4(out + (<usize>n << 2), q, lo, 4);
    scatter4(out + (<usize>(n + 4 * q) << 2), q, hi, 4);
  }
  n += 7 * q;
  for (; n < n1; n++) store<f32>(out + (<usize>n << 2), row_q8<W>(w + <usize>n * rowBytes, xq, xd, xs, K));
}

/** One row (at w0) times one quantised token (xq, xd, xs: its row): the canonical sum block by
 * block (mv_q8's last rows; small_q8.ts's too). */
@inline export function row_q8<W>(w0: usize, xq: usize, xd: usize, xs: usize, K: i32): f32 {
  const nb = K >> 5;
  let acc: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const bo = <usize>b * bsz<W>();
    const a = xq + aoff(b);
    let a0 = act0(a), a1 = act1(a);
    const a2 = act2(a, K), a3 = act3(a, K);
    if (unsignedW<W>()) { a0 = signed(a0, a2); a1 = signed(a1, a3); }
    const isum = i32x4.extract_lane(isum1<W>(w0 + bo, a0, a1, a2, a3, offset<W>(a0, a1)), 0);
    // the vector steps on lane 0: fused exactly when the tiles' steps are (wasm has no scalar fma)
    let c = step(f32x4.splat(acc), i32x4.splat(isum), f32x4.splat(dscale(w0 + bo)), f32x4.splat(load<f32>(xd + (<usize>b << 2))));
    if (hasMin<W>()) c = mstep(c, f32x4.splat(mscale(w0 + bo)), f32x4.splat(load<f32>(xs + (<usize>b << 2))));
    acc = f32x4.extract_lane(c, 0);
  }
  return acc;
}

/**
 * out_m [T, N_m] = x [T, K] w_m^T for `count` matrices of the legacy block types, any mix, sharing
 * one quantised x (xq, xd, xs by quant_q8 in layout `mode`: Q8_SIGN in the relaxed build when
 * T == 1, Q8_U8 for the vpdpbusd tile, else Q8_I16; xs only read for Q4_1 / Q5_1). desc: per
 * matrix four i32 (out, w, N, dtype id of dequant.ts). Each matrix's rows are split over the
 * parts; scratch + part*sstride is this part's tile scratch (q8_scratch_bytes).
 * xgroup, T == 1: 0, every matrix reads the one quantised row; g > 0, matrix m reads row m / g
 * of several quantised rows (one token's products of different inputs in one dispatch: a decode
 * step's expert down projections, one input per chosen expert). T > 1: 0, every matrix reads the
 * T rows; else a pointer to per matrix two i32 (first row, rows): matrix m reads those rows of
 * the quantised block and writes [rows, N_m] (a prefill's expert products, each expert on its
 * tokens, in one dispatch). Each (row, token) is summed as for its own call: the same bits.
 * mode Q8_SMALL: a few tokens (T > 1, xgroup 0) in the one-token layout, small_q8.ts.
 */
export function mm_q8_0(part: i32, parts: i32, desc: usize, count: i32, xq: usize, xd: usize, xs: usize, T: i32, K: i32, scratch: usize, sstride: i32, mode: i32, counter: usize, xgroup: i32): void {
  if (mode == Q8_SMALL) mm_q8_small(part, parts, desc, count, xq, xd, xs, T, K, counter);
  else if (T == 1 && counter != 0) mv_shared(desc, count, xq, xd, xs, K, parts, counter, xgroup);
  else if (T > 1 && xgroup != 0) tile_segments(part, parts, desc, count, xq, xd, xs, K, scratch + <usize>part * sstride, mode, counter, <usize>xgroup);
  else if (counter != 0) tile_shared(part, parts, desc, count, xq, xd, xs, T, K, scratch + <usize>part * sstride, mode, counter);
  else mm_int8(part, parts, desc, count, xq, xd, xs, T, K, scratch, sstride, mode, xgroup);
}

/** Many tokens, matrix m on rows seg[m] = (first, count) of the quantised block (see mm_q8_0):
 * chunks through the counter, or (one part, counter 0) every matrix in order. */
function tile_segments(part: i32, parts: i32, desc: usize, count: i32, xq: usize, xd: usize, xs: usize, K: i32, dec: usize, mode: i32, counter: usize, seg: usize): void {
  const sb = <usize>(K >> 5) << 2;
  let m = 0, c = 0;
  for (;;) {
    if (counter != 0) {
      const k = claimChunk(counter, desc, count, parts, TILE_UNIT);
      if (k < 0) return;
      m = <i32>(k >> 32); c = <i32>k;
    } else if (m >= count) return;
    const d = desc + <usize>m * 16, s = seg + <usize>m * 8, r = <usize>load<i32>(s), T = load<i32>(s, 4);
    const out = <usize>load<i32>(d), w = <usize>load<i32>(d, 4), N = load<i32>(d, 8), dt = load<i32>(d, 12);
    const ch = counter != 0 ? chunkRows(N, parts, TILE_UNIT) : N;
    const n0 = c * ch, n1 = min(N, (c + 1) * ch);
    const q = xq + r * 2 * <usize>K, qd = xd + r * sb, qs = xs ? xs + r * sb : 0;
    if (T > 0) {
      if (mode == Q8_U8) tile_any<u8>(dt, out, w, q, qd, qs, T, N, K, n0, n1, dec);
      else tile_any<i16>(dt, out, w, q, qd, qs, T, N, K, n0, n1, dec);
    }
    if (counter == 0) m++;
  }
}

/**
 * More tokens, the rows handed out in chunks of TILE_UNIT through the shared counter, as
 * mv_shared: a thread the host deschedules (other processes on the cores) no longer holds the
 * others up at the end of every product. The tile sums each (token, row) the same way whatever
 * rows a call covers, so the bits are the static split's.
 */
function tile_shared(part: i32, parts: i32, desc: usize, count: i32, xq: usize, xd: usize, xs: usize, T: i32, K: i32, dec: usize, mode: i32, counter: usize): void {
  for (;;) {
    const k = claimChunk(counter, desc, count, parts, TILE_UNIT);
    if (k < 0) return;
    const m = <i32>(k >> 32), c = <i32>k, d = desc + <usize>m * 16;
    const out = <usize>load<i32>(d), w = <usize>load<i32>(d, 4), N = load<i32>(d, 8), dt = load<i32>(d, 12), ch = chunkRows(N, parts, TILE_UNIT);
    const n0 = c * ch, n1 = min(N, (c + 1) * ch);
    if (mode == Q8_U8) tile_any<u8>(dt, out, w, xq, xd, xs, T, N, K, n0, n1, dec);
    else tile_any<i16>(dt, out, w, xq, xd, xs, T, N, K, n0, n1, dec);
  }
}

/** Rows of one claimed chunk of a many-token product (tile_shared; kq.ts has the same): a multiple of 64. */
const TILE_UNIT = 64;

/** The quantised activation row matrix m reads (xgroup, see mm_q8_0): its index. */
@inline function xrow(m: i32, xgroup: i32): usize {
  return xgroup > 0 ? <usize>(m / xgroup) : 0;
}

/** mv_q8 on the format with dtype id dt. */
function mv_any(dt: i32, out: usize, w: usize, xq: usize, xd: usize, xs: usize, K: i32, n0: i32, n1: i32): void {
  switch (dt) {
    case DT_Q4_0: mv_q8<Q4_0>(out, w, xq, xd, xs, K, n0, n1); break;
    case DT_Q4_1: mv_q8<Q4_1>(out, w, xq, xd, xs, K, n0, n1); break;
    case DT_Q5_0: mv_q8<Q5_0>(out, w, xq, xd, xs, K, n0, n1); break;
    case DT_Q5_1: mv_q8<Q5_1>(out, w, xq, xd, xs, K, n0, n1); break;
    case DT_IQ4_NL: mv_q8<IQ4_NL>(out, w, xq, xd, xs, K, n0, n1); break;
    default: mv_q8<Q8_0>(out, w, xq, xd, xs, K, n0, n1);
  }
}

/** mm_tile (activation layout M) on the format with dtype id dt. */
function tile_any<M>(dt: i32, out: usize, w: usize, xq: usize, xd: usize, xs: usize, T: i32, N: i32, K: i32, n0: i32, n1: i32, dec: usize): void {
  switch (dt) {
    case DT_Q4_0: mm_tile<Q4_0, M>(out, w, xq, xd, xs, T, N, K, n0, n1, dec); break;
    case DT_Q4_1: mm_tile<Q4_1, M>(out, w, xq, xd, xs, T, N, K, n0, n1, dec); break;
    case DT_Q5_0: mm_tile<Q5_0, M>(out, w, xq, xd, xs, T, N, K, n0, n1, dec); break;
    case DT_Q5_1: mm_tile<Q5_1, M>(out, w, xq, xd, xs, T, N, K, n0, n1, dec); break;
    case DT_IQ4_NL: mm_tile<IQ4_NL, M>(out, w, xq, xd, xs, T, N, K, n0, n1, dec); break;
    default: mm_tile<Q8_0, M>(out, w, xq, xd, xs, T, N, K, n0, n1, dec);
  }
}

/**
 * One token, the rows handed out in chunks through a shared counter (`counter`, zeroed by the
 * caller): a thread that finishes early takes more, so the op ends when the work does rather
 * than when the slower half does. On a 2-vCPU guest the worker's static half ran ~20% slower
 * than the main thread's and the main thread waited. Each row is summed as in the static split.
 */
function mv_shared(desc: usize, count: i32, xq: usize, xd: usize, xs: usize, K: i32, parts: i32, counter: usize, xgroup: i32): void {
  const sb = <usize>(K >> 5) << 2; // one row's scales (xd) or sums (xs), bytes
  for (;;) {
    const k = claimChunk(counter, desc, count, parts, 256); // at least 256 rows: sixteen streams
    if (k < 0) return;
    const m = <i32>(k >> 32), c = <i32>k, d = desc + <usize>m * 16, r = xrow(m, xgroup);
    const out = <usize>load<i32>(d), w = <usize>load<i32>(d, 4), N = load<i32>(d, 8), ch = chunkRows(N, parts, 256);
    mv_any(load<i32>(d, 12), out, w, xq + r * 2 * <usize>K, xd + r * sb, xs ? xs + r * sb : 0, K, c * ch, min(N, (c + 1) * ch));
  }
}

function mm_int8(part: i32, parts: i32, desc: usize, count: i32, xq: usize, xd: usize, xs: usize, T: i32, K: i32, scratch: usize, sstride: i32, mode: i32, xgroup: i32): void {
  const sb = <usize>(K >> 5) << 2;
  for (let m = 0; m < count; m++) {
    const d = desc + <usize>m * 16, r = xrow(m, xgroup);
    const out = <usize>load<i32>(d), w = <usize>load<i32>(d, 4), N = load<i32>(d, 8), dt = load<i32>(d, 12);
    const n0 = split(N, part, parts, 8), n1 = split(N, part + 1, parts, 8);
    if (n0 >= n1) continue;
    if (T == 1) mv_any(dt, out, w, xq + r * 2 * <usize>K, xd + r * sb, xs ? xs + r * sb : 0, K, n0, n1);
    else if (mode == Q8_U8) tile_any<u8>(dt, out, w, xq, xd, xs, T, N, K, n0, n1, scratch + <usize>part * sstride);
    else tile_any<i16>(dt, out, w, xq, xd, xs, T, N, K, n0, n1, scratch + <usize>part * sstride);
  }
}
