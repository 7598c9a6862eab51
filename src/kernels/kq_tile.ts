// The many-token tile of the K-quant products (see kq.ts for the canonical sum it must match).
// Eight rows are decoded once per call into this part's scratch as int16 products of level and
// sub-block scale, w' = sc_j * q (Q4_K, Q5_K: <= 63 * 31) or sc_j * (q - 32) (Q6_K: |w'| <= 4096;
// IQ4_XS: (ls - 32) * kv, <= 32 * 127; Q3_K: sc_j * (level - 4), <= 32 * 4),
// packed as q8_tile.ts's int16 tile packs Q8_0 (one i32 lane = one row's column pair, four rows
// a vector), and every token passes them: one pmaddwd of a column pair of four rows with the
// token's pair broadcast gives four rows' partial sums in four lanes, no horizontal sums.
//   isum = sum_k w'_k x_k   is the one-token kernel's sum_j sc_j (q_j . x_j) (- 32 sc_j bsum_j):
// the same integer (|isum| <= 256 * 4096 * 127 < 2^31), so the same bits after the same float
// steps. The Q4_K/Q5_K mins ride along as four more column pairs (m_j against the token's sums
// of 32), accumulated apart, as msum. The same code in both builds (int16 SIMD only).
import { f16, madd } from './common';
import { scatter4 } from './q8_tile';
import { bbytes, dofs, k15, k16, k48, kv_signed, lev3, scales_iq4, scales_k, scales_q3, tlook } from './kq';

// Per block in the scratch: 128 column pairs x 2 row halves x 16 B, then the mins' 4 pairs x 2
// halves x 16 B, then f32 d and dmin of rows 0-3 and 4-7 (64 B).
const PAIRS: usize = 4096, MINS: usize = 128, BLK: usize = PAIRS + MINS + 64;

/** Scratch bytes one part needs for K columns (8 rows of w' plus the transposed tile). */
export function kq_scratch_bytes(K: i32): i32 {
  return (K >> 8) * <i32>BLK + 8 * 512 + 128;
}

/** 16 levels (bytes, values < 128) times a scale in every i16 lane -> 16 i16 at t. */
@inline function put16(t: usize, q: v128, s: v128): void {
  v128.store(t, i16x8.mul(i16x8.extend_low_i8x16_s(q), s));
  v128.store(t, i16x8.mul(i16x8.extend_high_i8x16_s(q), s), 16);
}

@inline function bc(v: v128, j: i32): v128 {
  return i8x16.swizzle(v, i16x8.splat(<i16>((2 * j) | ((2 * j + 1) << 8))));
}

/** One row's block at p -> 256 w' (i16) at t; Q4_K/Q5_K: its 8 mins (i16) at mn. */
@inline function rowdec<W>(p: usize, t: usize, mn: usize): void {
  const m = k15();
  if (isSigned<W>() && sizeof<W>() == 4) {
    const sv = scales_q3(p), f4 = i8x16.splat(4);
    const sl = i16x8.extend_low_i8x16_s(sv), sh = i16x8.extend_high_i8x16_s(sv);
    const h0 = v128.load(p), h1 = v128.load(p + 16);
    for (let half = 0; half < 2; half++) {
      const q0 = v128.load(p + 32 + (<usize>half << 5)), q1 = v128.load(p + 48 + (<usize>half << 5));
      const sc = half ? sh : sl;
      for (let j = 0; j < 4; j++) {
        const o = t + (<usize>half << 8) + (<usize>j << 6);
        put16(o, i8x16.sub(lev3(q0, h0, j, 4 * half + j), f4), bc(sc, 2 * j));
        put16(o + 32, i8x16.sub(lev3(q1, h1, j, 4 * half + j), f4), bc(sc, 2 * j + 1));
      }
    }
    return;
  }
  if (isSigned<W>() && sizeof<W>() == 2) {
    const s = scales_iq4(p), tk = kv_signed();
    for (let ib = 0; ib < 8; ib++) {
      const v = v128.load(p + 8 + (<usize>ib << 4)), sb = bc(s, ib), o = t + (<usize>ib << 6);
      put16(o, tlook(tk, v128.and(v, m)), sb);
      put16(o + 32, tlook(tk, v128.and(i16x8.shr_u(v, 4), m)), sb);
    }
    return;
  }
  if (isSigned<W>()) {
    const sv = v128.load(p + 192);
    const sl = i16x8.extend_low_i8x16_s(sv), sh = i16x8.extend_high_i8x16_s(sv);
    const o32 = i8x16.splat(32), m48 = k48();
    for (let half = 0; half < 2; half++) {
      const ql = p + (<usize>half << 6), qh = p + 128 + (<usize>half << 5), th = t + (<usize>half << 8);
      const s = half ? sh : sl;
      for (let is = 0; is < 2; is++) {
        const l = <usize>is << 4;
        const a = v128.load(ql + l), c = v128.load(ql + l, 32), h = v128.load(qh + l);
        const q1 = v128.or(v128.and(a, m), v128.and(i16x8.shl(h, 4), m48));
        const q2 = v128.or(v128.and(c, m), v128.and(i16x8.shl(h, 2), m48));
        const q3 = v128.or(v128.and(i16x8.shr_u(a, 4), m), v128.and(h, m48));
        const q4 = v128.or(v128.and(i16x8.shr_u(c, 4), m), v128.and(i16x8.shr_u(h, 2), m48));
        // sub-block (16 columns) of column 128 half + 32 k + l: 8 half + 2 k + is
        put16(th + (l << 1), i8x16.sub(q1, o32), bc(s, is));
        put16(th + ((l + 32) << 1), i8x16.sub(q2, o32), bc(s, is + 2));
        put16(th + ((l + 64) << 1), i8x16.sub(q3, o32), bc(s, is + 4));
        put16(th + ((l + 96) << 1), i8x16.sub(q4, o32), bc(s, is + 6));
      }
    }
    return;
  }
  const sv = scales_k(p);
  const sc = i16x8.extend_low_i8x16_u(sv);
  v128.store(mn, i16x8.extend_high_i8x16_u(sv));
  const five = sizeof<W>() == 2, b4 = k16();
  const h0 = v128.load(p + 16), h1 = v128.load(p + 32);
  const qs = p + (five ? 48 : 16);
  for (let g = 0; g < 4; g++) {
    const v0 = v128.load(qs + (<usize>g << 5)), v1 = v128.load(qs + (<usize>g << 5), 16);
    let l0 = v128.and(v0, m), l1 = v128.and(v1, m);
    let u0 = v128.and(i16x8.shr_u(v0, 4), m), u1 = v128.and(i16x8.shr_u(v1, 4), m);
    if (five) {
      // fifth bits: bit 2g (low nibbles) and 2g+1 (high) of the qh bytes, moved to bit 4
      const s = <u32>(2 * g);
      const a0 = i16x8.shr_u(h0, s), a1 = i16x8.shr_u(h1, s);
      l0 = v128.or(l0, v128.and(i16x8.shl(a0, 4), b4));
      l1 = v128.or(l1, v128.and(i16x8.shl(a1, 4), b4));
      u0 = v128.or(u0, v128.and(i16x8.shl(a0, 3), b4));
      u1 = v128.or(u1, v128.and(i16x8.shl(a1, 3), b4));
    }
    const o = t + (<usize>g << 7), sl = bc(sc, 2 * g), sh = bc(sc, 2 * g + 1);
    put16(o, l0, sl);
    put16(o + 32, l1, sl);
    put16(o + 64, u0, sh);
    put16(o + 96, u1, sh);
  }
}

/** 4x4 transpose of i32 lanes of the vectors at a, a + s, a + 2s, a + 3s -> d, d + 32, d + 64, d + 96. */
@inline function tr4(a: usize, s: usize, d: usize): void {
  const v0 = v128.load(a), v1 = v128.load(a + s), v2 = v128.load(a + 2 * s), v3 = v128.load(a + 3 * s);
  const t0 = v128.shuffle<i32>(v0, v1, 0, 4, 1, 5), t1 = v128.shuffle<i32>(v0, v1, 2, 6, 3, 7);
  const t2 = v128.shuffle<i32>(v2, v3, 0, 4, 1, 5), t3 = v128.shuffle<i32>(v2, v3, 2, 6, 3, 7);
  v128.store(d, v128.shuffle<i32>(t0, t2, 0, 1, 4, 5));
  v128.store(d + 32, v128.shuffle<i32>(t0, t2, 2, 3, 6, 7));
  v128.store(d + 64, v128.shuffle<i32>(t1, t3, 0, 1, 4, 5));
  v128.store(d + 96, v128.shuffle<i32>(t1, t3, 2, 3, 6, 7));
}

/** Decode eight rows (row i at w + i*rs; i >= cnt repeat the last) of nb blocks into dec. */
function decode8<W>(w: usize, rs: usize, cnt: i32, nb: i32, dec: usize): void {
  const tmp = dec + <usize>nb * BLK, mt = tmp + 8 * 512;
  const bb = bbytes<W>(), dof = dofs<W>();
  for (let b = 0; b < nb; b++) {
    const db = dec + <usize>b * BLK;
    for (let r = 0; r < 8; r++) {
      const p = w + <usize>min(r, cnt - 1) * rs + <usize>b * bb;
      rowdec<W>(p, tmp + (<usize>r << 9), mt + (<usize>r << 4));
      // f32 d (and dmin) of row r: lane r & 3 of the half's vector
      const f = db + PAIRS + MINS + (<usize>(r >> 2) << 4) + (<usize>(r & 3) << 2);
      store<f32>(f, f16(p + dof));
      if (!isSigned<W>()) store<f32>(f, f16(p + 2), 32);
    }
    // column pairs 4c..4c+3 of rows 0-3 (half 0) and 4-7: to pair-major vectors at db + (pair*2 + half)*16
    for (let c = 0; c < 32; c++) {
      tr4(tmp + (<usize>c << 4), 512, db + (<usize>c << 7));
      tr4(tmp + 2048 + (<usize>c << 4), 512, db + (<usize>c << 7) + 16);
    }
    if (!isSigned<W>()) {
      tr4(mt, 16, db + PAIRS);
      tr4(mt + 64, 16, db + PAIRS + 16);
    }
  }
}

/** The canonical float steps for four rows (d, dm: their f32 d and dmin, as kq.ts's blk4). */
@inline function fstep<W>(acc: v128, ii: v128, mm: v128, d: v128, dm: v128, dx: v128): v128 {
  acc = madd(f32x4.convert_i32x4_s(ii), f32x4.mul(d, dx), acc);
  if (isSigned<W>()) return acc;
  return madd(f32x4.convert_i32x4_s(mm), f32x4.mul(dm, f32x4.neg(dx)), acc);
}

/**
 * Tokens 0..T-1 (xw: int16 activations [T, K], xd, xb as quant_q8k) times rows n0..n1: eight
 * rows decoded at a time, then every token, two at a time, as q8_tile.ts's mm_tile.
 */
export function kq_tile<W>(out: usize, w: usize, xw: usize, xd: usize, xb: usize, T: i32, N: i32, K: i32, n0: i32, n1: i32, dec: usize): void {
  const nb = K >> 8, rb = <usize>nb * bbytes<W>();
  const xs = <usize>K << 1, bs = <usize>nb * 48;
  for (let n = n0; n < n1; n += 8) {
    const cnt = min(8, n1 - n);
    decode8<W>(w + <usize>n * rb, rb, cnt, nb, dec);
    let t = 0;
    for (; t + 2 <= T; t += 2) {
      const x0 = xw + <usize>t * xs, x1 = x0 + xs, d0 = xd + ((<usize>t * nb) << 2), d1 = d0 + (<usize>nb << 2);
      const s0 = xb + <usize>t * bs, s1 = s0 + bs;
      let f0 = f32x4.splat(0), f1 = f32x4.splat(0), f2 = f32x4.splat(0), f3 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        let i0 = i32x4.splat(0), i1 = i0, i2 = i0, i3 = i0;
        // two pairs per pass, pointers stepped (see mm_tile: V8 keeps the state in registers then)
        let pw = dec + <usize>b * BLK, pa = x0 + (<usize>b << 9), pc = x1 + (<usize>b << 9);
        const pe = pw + PAIRS;
        do {
          const wl = v128.load(pw), wh = v128.load(pw, 16);
          const a = v128.load32_splat(pa), c = v128.load32_splat(pc);
          i0 = i32x4.add(i0, i32x4.dot_i16x8_s(wl, a));
          i1 = i32x4.add(i1, i32x4.dot_i16x8_s(wh, a));
          i2 = i32x4.add(i2, i32x4.dot_i16x8_s(wl, c));
          i3 = i32x4.add(i3, i32x4.dot_i16x8_s(wh, c));
          const wl2 = v128.load(pw, 32), wh2 = v128.load(pw, 48);
          const a2 = v128.load32_splat(pa, 4), c2 = v128.load32_splat(pc, 4);
          i0 = i32x4.add(i0, i32x4.dot_i16x8_s(wl2, a2));
          i1 = i32x4.add(i1, i32x4.dot_i16x8_s(wh2, a2));
          i2 = i32x4.add(i2, i32x4.dot_i16x8_s(wl2, c2));
          i3 = i32x4.add(i3, i32x4.dot_i16x8_s(wh2, c2));
          pw += 64; pa += 8; pc += 8;
        } while (pw < pe);
        let m0 = i32x4.splat(0), m1 = m0, m2 = m0, m3 = m0;
        if (!isSigned<W>()) {
          const pm = dec + <usize>b * BLK + PAIRS, sa = s0 + <usize>b * 48 + 32, sc = s1 + <usize>b * 48 + 32;
          for (let j: usize = 0; j < 4; j++) {
            const wl = v128.load(pm + (j << 5)), wh = v128.load(pm + (j << 5), 16);
            const a = v128.load32_splat(sa + (j << 2)), c = v128.load32_splat(sc + (j << 2));
            m0 = i32x4.add(m0, i32x4.dot_i16x8_s(wl, a));
            m1 = i32x4.add(m1, i32x4.dot_i16x8_s(wh, a));
            m2 = i32x4.add(m2, i32x4.dot_i16x8_s(wl, c));
            m3 = i32x4.add(m3, i32x4.dot_i16x8_s(wh, c));
          }
        }
        const fd = dec + <usize>b * BLK + PAIRS + MINS;
        const dl = v128.load(fd), dh = v128.load(fd, 16), ml = v128.load(fd, 32), mh = v128.load(fd, 48);
        const da = v128.load32_splat(d0 + (<usize>b << 2)), dc = v128.load32_splat(d1 + (<usize>b << 2));
        f0 = fstep<W>(f0, i0, m0, dl, ml, da);
        f1 = fstep<W>(f1, i1, m1, dh, mh, da);
        f2 = fstep<W>(f2, i2, m2, dl, ml, dc);
        f3 = fstep<W>(f3, i3, m3, dh, mh, dc);
      }
      const o0 = out + ((<usize>t * N + n) << 2), o1 = o0 + (<usize>N << 2);
      scatter4(o0, 1, f0, cnt);
      scatter4(o0 + 16, 1, f1, cnt - 4);
      scatter4(o1, 1, f2, cnt);
      scatter4(o1 + 16, 1, f3, cnt - 4);
    }
    if (t < T) {
      const x0 = xw + <usize>t * xs, d0 = xd + ((<usize>t * nb) << 2), s0 = xb + <usize>t * bs;
      let f0 = f32x4.splat(0), f1 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        let i0 = i32x4.splat(0), i1 = i0;
        const pb = dec + <usize>b * BLK, xb0 = x0 + (<usize>b << 9);
        for (let j: usize = 0; j < PAIRS; j += 32) {
          const a = v128.load32_splat(xb0 + (j >> 3));
          i0 = i32x4.add(i0, i32x4.dot_i16x8_s(v128.load(pb + j), a));
          i1 = i32x4.add(i1, i32x4.dot_i16x8_s(v128.load(pb + j, 16), a));
        }
        let m0 = i32x4.splat(0), m1 = m0;
        if (!isSigned<W>()) {
          const sa = s0 + <usize>b * 48 + 32;
          for (let j: usize = 0; j < 4; j++) {
            const a = v128.load32_splat(sa + (j << 2));
            m0 = i32x4.add(m0, i32x4.dot_i16x8_s(v128.load(pb + PAIRS + (j << 5)), a));
            m1 = i32x4.add(m1, i32x4.dot_i16x8_s(v128.load(pb + PAIRS + (j << 5), 16), a));
          }
        }
        const fd = pb + PAIRS + MINS, da = v128.load32_splat(d0 + (<usize>b << 2));
        f0 = fstep<W>(f0, i0, m0, v128.load(fd), v128.load(fd, 32), da);
        f1 = fstep<W>(f1, i1, m1, v128.load(fd, 16), v128.load(fd, 48), da);
      }
      const o0 = out + ((<usize>t * N + n) << 2);
      scatter4(o0, 1, f0, cnt);
      scatter4(o0 + 16, 1, f1, cnt - 4);
    }
  }
}
