// The many-token Q8_0 tile on engines whose i32x4.relaxed_dot_i8x16_i7x16_add_s is x86's
// vpdpbusd (V8 12.x+ on CPUs with AVX-VNNI, e.g. Node 24): unsigned bytes times signed bytes,
// four products and the addend summed exactly in each i32 lane, 16 multiply-adds per
// instruction, with no saturation. The wasm spec only defines the result for a second operand
// in 0..127 (other engines lower it to pmaddubsw, which saturates, or to ARM's signed sdot), so
// wasm.ts runs a probe (u8_dot_probe) and picks this tile only where the exact unsigned form
// is what the engine computes.
//
// Activations go in as u = q + 128 (0..255, layout Q8_U8 of quant_q8), so
//   sum w*u = sum w*q + 128 * sum w,
// and each accumulator starts at -128 * (the row's block sum of weights): the block's integer
// dot comes out exact, and the canonical sum of q8.ts (acc + f32(isum) * (dw * dx)) gives the
// same bits as the one-token kernel.
import { f16 } from './common';
import { bsz, scatter4, step, wvec } from './q8';

/** vpdpbusd where the engine lowers it so (the plain-SIMD build never calls the tile). */
@inline function dp(w: v128, u: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_dot_i8x16_i7x16_add_s(w, u, acc);
  unreachable();
  return acc;
}

/**
 * Decode eight Q8_0 / Q4_0 rows (row i at w + i*rstride; rows >= cnt read as zero) for the tile: per
 * block b and column quad j (columns 4j..4j+3), two vectors [rows 0-3], [rows 4-7] whose i32
 * lanes hold one row's four bytes: dec + b*256 + j*32 + half*16. Scales (f32) at
 * sc + b*32 + half*16; the accumulators' starting values (-128 * block sum, i32) at cp + b*32 + half*16.
 */
function decode8u<W>(w: usize, rstride: usize, cnt: i32, nb: i32, dec: usize, sc: usize, cp: usize): void {
  const z = i32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const bo = <usize>b * bsz<W>();
    for (let half = 0; half < 2; half++) {
      const r = half * 4;
      const p0 = w + <usize>r * rstride + bo, p1 = p0 + rstride, p2 = p1 + rstride, p3 = p2 + rstride;
      const ok0 = r < cnt, ok1 = r + 1 < cnt, ok2 = r + 2 < cnt, ok3 = r + 3 < cnt;
      let s = f32x4.splat(ok0 ? f16(p0) : 0);
      s = f32x4.replace_lane(s, 1, ok1 ? f16(p1) : 0);
      s = f32x4.replace_lane(s, 2, ok2 ? f16(p2) : 0);
      s = f32x4.replace_lane(s, 3, ok3 ? f16(p3) : 0);
      const o = (<usize>b << 5) + (<usize>half << 4);
      v128.store(sc + o, s);
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

/** Scratch bytes of one part of the tile for K columns: decoded rows, scales, starting values. */
export function u8_scratch_bytes(K: i32): i32 {
  return (K >> 5) * (256 + 32 + 32);
}

/**
 * Several tokens (Q8_U8 activations, 2K bytes apart): eight rows decoded once, then every token
 * passes them, two at a time; one vpdpbusd per column quad of four rows and one token.
 */
export function mm_tile_u8<W>(out: usize, w: usize, xq: usize, xd: usize, T: i32, N: i32, K: i32, n0: i32, n1: i32, dec: usize): void {
  const nb = K >> 5, rowBytes = <usize>nb * bsz<W>(), xs = <usize>K << 1;
  const sc = dec + (<usize>nb << 8), cp = sc + (<usize>nb << 5);
  const G = (n1 - n0) >> 3; // full groups: rows n0+g, n0+g+G, ... (eight streams, as in mv_q8)
  const groups = G + ((n1 - n0) & 7 ? 1 : 0);
  for (let g = 0; g < groups; g++) {
    const first = g < G ? n0 + g : n0 + 8 * G;
    const stride = g < G ? G : 1, cnt = g < G ? 8 : (n1 - n0) & 7;
    decode8u<W>(w + <usize>first * rowBytes, <usize>stride * rowBytes, cnt, nb, dec, sc, cp);
    let t = 0;
    for (; t + 2 <= T; t += 2) {
      const x0 = xq + <usize>t * xs, d0 = xd + ((<usize>t * nb) << 2), d1 = d0 + (<usize>nb << 2);
      let f0 = f32x4.splat(0), f1 = f32x4.splat(0), f2 = f32x4.splat(0), f3 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const nl = v128.load(cp + (<usize>b << 5)), nh = v128.load(cp + (<usize>b << 5), 16);
        let i0 = nl, i1 = nh, i2 = nl, i3 = nh;
        // pointers stepped, two quads per pass (see mm_tile in q8.ts)
        let pw = dec + (<usize>b << 8), pa = x0 + (<usize>b << 5);
        const pe = pw + 256;
        do {
          const wl = v128.load(pw), wh = v128.load(pw, 16);
          const a = v128.load32_splat(pa), c = v128.load32_splat(pa + xs);
          i0 = dp(wl, a, i0);
          i1 = dp(wh, a, i1);
          i2 = dp(wl, c, i2);
          i3 = dp(wh, c, i3);
          const wl2 = v128.load(pw, 32), wh2 = v128.load(pw, 48);
          const a2 = v128.load32_splat(pa, 4), c2 = v128.load32_splat(pa + xs, 4);
          i0 = dp(wl2, a2, i0);
          i1 = dp(wh2, a2, i1);
          i2 = dp(wl2, c2, i2);
          i3 = dp(wh2, c2, i3);
          pw += 64; pa += 8;
        } while (pw < pe);
        const sl = v128.load(sc + (<usize>b << 5)), sh = v128.load(sc + (<usize>b << 5), 16);
        const da = v128.load32_splat(d0 + (<usize>b << 2)), dc = v128.load32_splat(d1 + (<usize>b << 2));
        f0 = step(f0, i0, sl, da);
        f1 = step(f1, i1, sh, da);
        f2 = step(f2, i2, sl, dc);
        f3 = step(f3, i3, sh, dc);
      }
      const o0 = out + ((<usize>t * N + first) << 2), o1 = o0 + (<usize>N << 2);
      scatter4(o0, stride, f0, cnt);
      scatter4(o0 + (<usize>stride << 4), stride, f1, cnt - 4);
      scatter4(o1, stride, f2, cnt);
      scatter4(o1 + (<usize>stride << 4), stride, f3, cnt - 4);
    }
    if (t < T) {
      const x0 = xq + <usize>t * xs, d0 = xd + ((<usize>t * nb) << 2);
      let f0 = f32x4.splat(0), f1 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        let i0 = v128.load(cp + (<usize>b << 5)), i1 = v128.load(cp + (<usize>b << 5), 16);
        for (let j = 0; j < 8; j++) {
          const pw = dec + (<usize>b << 8) + (<usize>j << 5);
          const a = v128.load32_splat(x0 + (<usize>b << 5) + (<usize>j << 2));
          i0 = dp(v128.load(pw), a, i0);
          i1 = dp(v128.load(pw, 16), a, i1);
        }
        const da = v128.load32_splat(d0 + (<usize>b << 2));
        f0 = step(f0, i0, v128.load(sc + (<usize>b << 5)), da);
        f1 = step(f1, i1, v128.load(sc + (<usize>b << 5), 16), da);
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
