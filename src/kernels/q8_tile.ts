// The many-token tiles of the legacy block products (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1; see q8.ts for the activation layouts and
// the canonical sum that keeps a row's result independent of the batch), and the helpers the
// one-token kernels in q8.ts share with them.
//
// Two tiles, one loop (mm_tile): int16 pmaddwd everywhere, and vpdpbusd on engines whose
// i32x4.relaxed_dot_i8x16_i7x16_add_s is x86's vpdpbusd (V8 12.x+ on CPUs with AVX-VNNI, e.g.
// Node 24): unsigned bytes times signed bytes, four products and the addend summed exactly in
// each i32 lane, 16 multiply-adds per instruction, no saturation. The wasm spec only defines
// the result for a second operand in 0..127 (other engines lower it to pmaddubsw, which
// saturates, or to ARM's signed sdot), so wasm.ts runs a probe (u8_dot_probe) and picks the
// vpdpbusd tile only where the exact unsigned form is what the engine computes.
//
// That tile takes activations as u = q + 128 (0..255, layout Q8_U8 of quant_q8), so
//   sum w*u = sum w*q + 128 * sum w,
// and each accumulator starts at -128 * (the row's block sum of weights): the block's integer
// dot comes out exact, and the canonical sum (acc + f32(isum) * (dw * dx)) gives the same bits
// as the int16 tile and the one-token kernel.
import { madd } from './common';
import { bsz, dscale, hasMin, mscale, wvec } from './q8_fmt';

/**
 * One step of the canonical sum, four (token, row) pairs per lane: acc + f32(isum) * (dw * dx),
 * fused where the build has relaxed SIMD (the engine's choice is fixed for the process, so every
 * kernel of one build still sums alike; fused saves an instruction per step of the tiles).
 */
@inline export function step(acc: v128, isum: v128, dw: v128, dx: v128): v128 {
  return madd(f32x4.convert_i32x4_s(isum), f32x4.mul(dw, dx), acc);
}

/** The min types' second step of a block: acc + mw * sx (sx = f32(xsum) * dx, see q8.ts), fused as step. */
@inline export function mstep(acc: v128, mw: v128, sx: v128): v128 {
  return madd(mw, sx, acc);
}

/** The scales d (or, with min, the mins m) of the blocks at p0..p3 as f32, rows not ok as 0. */
@inline function scales4ok(p0: usize, p1: usize, p2: usize, p3: usize, ok0: bool, ok1: bool, ok2: bool, ok3: bool, min: bool): v128 {
  let s = f32x4.splat(ok0 ? (min ? mscale(p0) : dscale(p0)) : 0);
  s = f32x4.replace_lane(s, 1, ok1 ? (min ? mscale(p1) : dscale(p1)) : 0);
  s = f32x4.replace_lane(s, 2, ok2 ? (min ? mscale(p2) : dscale(p2)) : 0);
  return f32x4.replace_lane(s, 3, ok3 ? (min ? mscale(p3) : dscale(p3)) : 0);
}

/** Store lane i of v at out + i*stride floats (i < cnt). */
@inline export function scatter4(out: usize, stride: usize, v: v128, cnt: i32): void {
  if (cnt > 0) store<f32>(out, f32x4.extract_lane(v, 0));
  if (cnt > 1) store<f32>(out + (stride << 2), f32x4.extract_lane(v, 1));
  if (cnt > 2) store<f32>(out + (stride << 3), f32x4.extract_lane(v, 2));
  if (cnt > 3) store<f32>(out + stride * 12, f32x4.extract_lane(v, 3));
}

/** vpdpbusd where the engine lowers it so (the plain-SIMD build never calls the tile). */
@inline function dp(w: v128, u: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_dot_i8x16_i7x16_add_s(w, u, acc);
  unreachable();
  return acc;
}

/**
 * Decode eight rows of format W (row i at w + i*rstride bytes; rows >= cnt read as zero) into the tile
 * layout: per block b and pair p of columns (2p, 2p+1), two i16x8 vectors [rows 0-3], [rows 4-7]
 * with each i32 lane holding one row's pair: dec + ((b*16 + p)*2 + half)*16. Scales as f32:
 * sc + b*32 (rows 0-3), sc + b*32 + 16 (rows 4-7); the min types' mins likewise at mn.
 */
function decode8<W>(w: usize, rstride: usize, cnt: i32, nb: i32, dec: usize, sc: usize, mn: usize): void {
  const z = i32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const bo = <usize>b * bsz<W>();
    for (let half = 0; half < 2; half++) {
      const r = half * 4;
      const p0 = w + <usize>r * rstride + bo, p1 = p0 + rstride, p2 = p1 + rstride, p3 = p2 + rstride;
      const ok0 = r < cnt, ok1 = r + 1 < cnt, ok2 = r + 2 < cnt, ok3 = r + 3 < cnt;
      v128.store(sc + (<usize>b << 5) + (<usize>half << 4), scales4ok(p0, p1, p2, p3, ok0, ok1, ok2, ok3, false));
      if (hasMin<W>()) v128.store(mn + (<usize>b << 5) + (<usize>half << 4), scales4ok(p0, p1, p2, p3, ok0, ok1, ok2, ok3, true));
      for (let c = 0; c < 4; c++) {
        // 8 weights (4 column pairs) of each of the four rows, widened to i16
        const h = c >> 1;
        const lo = (c & 1) == 0;
        const v0 = ok0 ? (lo ? i16x8.extend_low_i8x16_s(wvec<W>(p0, h)) : i16x8.extend_high_i8x16_s(wvec<W>(p0, h))) : z;
        const v1 = ok1 ? (lo ? i16x8.extend_low_i8x16_s(wvec<W>(p1, h)) : i16x8.extend_high_i8x16_s(wvec<W>(p1, h))) : z;
        const v2 = ok2 ? (lo ? i16x8.extend_low_i8x16_s(wvec<W>(p2, h)) : i16x8.extend_high_i8x16_s(wvec<W>(p2, h))) : z;
        const v3 = ok3 ? (lo ? i16x8.extend_low_i8x16_s(wvec<W>(p3, h)) : i16x8.extend_high_i8x16_s(wvec<W>(p3, h))) : z;
        // 4x4 transpose of i32 lanes: row-major pairs -> pair-major rows
        const t0 = v128.shuffle<i32>(v0, v1, 0, 4, 1, 5), t1 = v128.shuffle<i32>(v0, v1, 2, 6, 3, 7);
        const t2 = v128.shuffle<i32>(v2, v3, 0, 4, 1, 5), t3 = v128.shuffle<i32>(v2, v3, 2, 6, 3, 7);
        const d = dec + ((<usize>(b * 16 + c * 4) * 2 + half) << 4);
        v128.store(d, v128.shuffle<i32>(t0, t2, 0, 1, 4, 5));
        v128.store(d + 32, v128.shuffle<i32>(t0, t2, 2, 3, 6, 7));
        v128.store(d + 64, v128.shuffle<i32>(t1, t3, 0, 1, 4, 5));
        v128.store(d + 96, v128.shuffle<i32>(t1, t3, 2, 3, 6, 7));
      }
    }
  }
}

/**
 * Decode eight rows of format W (row i at w + i*rstride; rows >= cnt read as zero) for the tile: per
 * block b and column quad j (columns 4j..4j+3), two vectors [rows 0-3], [rows 4-7] whose i32
 * lanes hold one row's four bytes: dec + b*256 + j*32 + half*16. Scales (f32) at
 * sc + b*32 + half*16, the min types' mins at mn + b*32 + half*16; the accumulators' starting
 * values (-128 * block sum, i32) at cp + b*32 + half*16.
 */
function decode8u<W>(w: usize, rstride: usize, cnt: i32, nb: i32, dec: usize, sc: usize, cp: usize, mn: usize): void {
  const z = i32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const bo = <usize>b * bsz<W>();
    for (let half = 0; half < 2; half++) {
      const r = half * 4;
      const p0 = w + <usize>r * rstride + bo, p1 = p0 + rstride, p2 = p1 + rstride, p3 = p2 + rstride;
      const ok0 = r < cnt, ok1 = r + 1 < cnt, ok2 = r + 2 < cnt, ok3 = r + 3 < cnt;
      const o = (<usize>b << 5) + (<usize>half << 4);
      v128.store(sc + o, scales4ok(p0, p1, p2, p3, ok0, ok1, ok2, ok3, false));
      if (hasMin<W>()) v128.store(mn + o, scales4ok(p0, p1, p2, p3, ok0, ok1, ok2, ok3, true));
      let sum = i32x4.splat(0);
      for (let c = 0; c < 2; c++) {
        // 16 weights (4 quads) of each of the four rows, then a 4x4 transpose of the i32 lanes
        const v0 = ok0 ? wvec<W>(p0, c) : z, v1 = ok1 ? wvec<W>(p1, c) : z;
        const v2 = ok2 ? wvec<W>(p2, c) : z, v3 = ok3 ? wvec<W>(p3, c) : z;
        const t0 = v128.shuffle<i32>(v0, v1, 0, 4, 1, 5), t1 = v128.shuffle<i32>(v0, v1, 2, 6, 3, 7);
        const t2 = v128.shuffle<i32>(v2, v3, 0, 4, 1, 5), t3 = v128.shuffle<i32>(v2, v3, 2, 6, 3, 7);
        const q0 = v128.shuffle<i32>(t0, t2, 0, 1, 4, 5), q1 = v128.shuffle<i32>(t0, t2, 2, 3, 6, 7);
        const q2 = v128.shuffle<i32>(t1, t3, 0, 1, 4, 5), q3 = v128.shuffle<i32>(t1, t3, 2, 3, 6, 7);
        const d = dec + (<usize>b << 8) + (<usize>c << 7) + (<usize>half << 4);
        v128.store(d, q0);
        v128.store(d, q1, 32);
        v128.store(d, q2, 64);
        v128.store(d, q3, 96);
        sum = i32x4.add(sum, i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(q0)));
        sum = i32x4.add(sum, i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(q1)));
        sum = i32x4.add(sum, i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(q2)));
        sum = i32x4.add(sum, i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(q3)));
      }
      v128.store(cp + o, i32x4.mul(sum, i32x4.splat(-128)));
    }
  }
}

/** Tile accumulator start for rows 0-3 (h = 0) or 4-7 (h = 1) of block b: zero (M = i16) or
 * decode8u's -128 * block sum (M = u8). */
@inline function acc0<M>(cp: usize, b: i32, h: i32): v128 {
  if (sizeof<M>() == 1) return v128.load(cp + (<usize>b << 5) + (<usize>h << 4));
  return i32x4.splat(0);
}

/** One tile product of decoded weights w and a broadcast activation unit a: pmaddwd of column
 * pairs (M = i16) or vpdpbusd of column quads (M = u8). */
@inline function tdot<M>(w: v128, a: v128, acc: v128): v128 {
  if (sizeof<M>() == 1) return dp(w, a, acc);
  return i32x4.add(acc, i32x4.dot_i16x8_s(w, a));
}

/** Scratch bytes one part of mm_q8_0 needs for K columns (the int16 tile's: decoded rows, scales,
 * mins; the u8 tile needs less). */
export function q8_scratch_bytes(K: i32): i32 {
  return (K >> 5) * (512 + 32 + 32);
}

/**
 * Several tokens: eight rows (W: the block format) decoded once into this part's scratch, then
 * every token passes them, two at a time. M picks the tile:
 * - M = i16 (Q8_I16 activations): rows widened to int16 and packed so that one pmaddwd of a
 *   column pair of four rows with the token's pair broadcast gives four rows' partial sums in
 *   four lanes: no horizontal sums, 8 multiply-adds per instruction (an f32 FMA does 4).
 * - M = u8 (Q8_U8 activations): rows kept as bytes, packed by column quads; one vpdpbusd does
 *   16 multiply-adds (see the top of this file).
 * Each 32-byte unit of a block's decoded scratch is one column pair (i16) or quad (u8) of the
 * eight rows, and each 4 bytes of activations the matching pair or quad of one token.
 */
export function mm_tile<W, M>(out: usize, w: usize, xq: usize, xd: usize, xs: usize, T: i32, N: i32, K: i32, n0: i32, n1: i32, dec: usize): void {
  const nb = K >> 5, rowBytes = <usize>nb * bsz<W>(), xstride = <usize>K << 1;
  const blk: usize = 256 * sizeof<M>(), ab: usize = 32 * sizeof<M>(); // scratch / activation bytes per block
  const sc = dec + <usize>nb * blk, mn = sc + (<usize>nb << 5), cp = mn + (<usize>nb << 5);
  const G = (n1 - n0) >> 3; // full groups: rows n0+g, n0+g+G, ... (eight streams, as in mv_q8)
  const groups = G + ((n1 - n0) & 7 ? 1 : 0);
  for (let g = 0; g < groups; g++) {
    const first = g < G ? n0 + g : n0 + 8 * G;
    const stride = g < G ? G : 1, cnt = g < G ? 8 : (n1 - n0) & 7;
    if (sizeof<M>() == 1) decode8u<W>(w + <usize>first * rowBytes, <usize>stride * rowBytes, cnt, nb, dec, sc, cp, mn);
    else decode8<W>(w + <usize>first * rowBytes, <usize>stride * rowBytes, cnt, nb, dec, sc, mn);
    let t = 0;
    for (; t + 2 <= T; t += 2) {
      const x0 = xq + <usize>t * xstride, x1 = x0 + xstride, d0 = xd + ((<usize>t * nb) << 2), d1 = d0 + (<usize>nb << 2);
      const s0 = xs + ((<usize>t * nb) << 2), s1 = s0 + (<usize>nb << 2);
      let f0 = f32x4.splat(0), f1 = f32x4.splat(0), f2 = f32x4.splat(0), f3 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        let i0 = acc0<M>(cp, b, 0), i1 = acc0<M>(cp, b, 1);
        let i2 = i0, i3 = i1;
        // two units per pass, pointers stepped: V8 keeps loop state in registers then (a
        // counter-indexed loop reloaded five spilled values per pass: 23 GMAC/s on one core for
        // the int16 tile); unrolling further makes it load everything first and spill the vectors
        let pw = dec + <usize>b * blk, pa = x0 + <usize>b * ab, pc = x1 + <usize>b * ab;
        const pe = pw + blk;
        do {
          const wl = v128.load(pw), wh = v128.load(pw, 16);
          const a = v128.load32_splat(pa), c = v128.load32_splat(pc);
          i0 = tdot<M>(wl, a, i0);
          i1 = tdot<M>(wh, a, i1);
          i2 = tdot<M>(wl, c, i2);
          i3 = tdot<M>(wh, c, i3);
          const wl2 = v128.load(pw, 32), wh2 = v128.load(pw, 48);
          const a2 = v128.load32_splat(pa, 4), c2 = v128.load32_splat(pc, 4);
          i0 = tdot<M>(wl2, a2, i0);
          i1 = tdot<M>(wh2, a2, i1);
          i2 = tdot<M>(wl2, c2, i2);
          i3 = tdot<M>(wh2, c2, i3);
          pw += 64; pa += 8; pc += 8;
        } while (pw < pe);
        const sl = v128.load(sc + (<usize>b << 5)), sh = v128.load(sc + (<usize>b << 5), 16);
        const da = v128.load32_splat(d0 + (<usize>b << 2)), dc = v128.load32_splat(d1 + (<usize>b << 2));
        f0 = step(f0, i0, sl, da);
        f1 = step(f1, i1, sh, da);
        f2 = step(f2, i2, sl, dc);
        f3 = step(f3, i3, sh, dc);
        if (hasMin<W>()) {
          const ml = v128.load(mn + (<usize>b << 5)), mh = v128.load(mn + (<usize>b << 5), 16);
          const sa = v128.load32_splat(s0 + (<usize>b << 2)), sc2 = v128.load32_splat(s1 + (<usize>b << 2));
          f0 = mstep(f0, ml, sa);
          f1 = mstep(f1, mh, sa);
          f2 = mstep(f2, ml, sc2);
          f3 = mstep(f3, mh, sc2);
        }
      }
      const o0 = out + ((<usize>t * N + first) << 2), o1 = o0 + (<usize>N << 2);
      scatter4(o0, stride, f0, cnt);
      scatter4(o0 + (<usize>stride << 4), stride, f1, cnt - 4);
      scatter4(o1, stride, f2, cnt);
      scatter4(o1 + (<usize>stride << 4), stride, f3, cnt - 4);
    }
    if (t < T) {
      const x0 = xq + <usize>t * xstride, d0 = xd + ((<usize>t * nb) << 2), s0 = xs + ((<usize>t * nb) << 2);
      let f0 = f32x4.splat(0), f1 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        let i0 = acc0<M>(cp, b, 0), i1 = acc0<M>(cp, b, 1);
        const pb = dec + <usize>b * blk, xb = x0 + <usize>b * ab;
        for (let j: usize = 0; j < blk; j += 32) {
          const a = v128.load32_splat(xb + (j >> 3));
          i0 = tdot<M>(v128.load(pb + j), a, i0);
          i1 = tdot<M>(v128.load(pb + j, 16), a, i1);
        }
        const da = v128.load32_splat(d0 + (<usize>b << 2));
        f0 = step(f0, i0, v128.load(sc + (<usize>b << 5)), da);
        f1 = step(f1, i1, v128.load(sc + (<usize>b << 5), 16), da);
        if (hasMin<W>()) {
          const sa = v128.load32_splat(s0 + (<usize>b << 2));
          f0 = mstep(f0, v128.load(mn + (<usize>b << 5)), sa);
          f1 = mstep(f1, v128.load(mn + (<usize>b << 5), 16), sa);
        }
      }
      const o0 = out + ((<usize>t * N + first) << 2);
      scatter4(o0, stride, f0, cnt);
      scatter4(o0 + (<usize>stride << 4), stride, f1, cnt - 4);
    }
  }
}

/**
 * out[0..3] = relaxed_dot_i8x16_i7x16_add_s(a, b, c) for the 16-byte vectors at a, b, c: wasm.ts
 * checks on it whether this engine computes the exact unsigned form the tile above needs.
 */
export function u8_dot_probe(a: usize, b: usize, c: usize, out: usize): void {
  v128.store(out, dp(v128.load(a), v128.load(b), v128.load(c)));
}
