// The chunked form of the gated delta rule (prefill; QWEN35.md §6): one head of one sequence, its
// rows in chunks of BT. Within a chunk (rows i = 0..m-1, g_i the log decays, gamma_i = sum_{r<=i} g_r,
// D_is = e^(gamma_i - gamma_s) <= 1 for s <= i), with S the state before the chunk:
//   L_is = beta_i (k_i . k_s) D_is (s < i),   P_is = (q_i . k_s) D_is (s <= i)
//   V' = (I + L)^-1 (beta (V - e^gamma (K S)))          forward substitution, row by row
//   O  = e^gamma (Q S) + P V'
//   S  = e^gamma_{m-1} S + (K e^(gamma_{m-1} - gamma))^T V'
// (V' folds §6's U - W S into one solve, as the inverse is linear.) Every factor e^x has x <= 0,
// so nothing overflows. The work is five products of BT x dk x dv and two of BT x BT x d, run by
// one register-tiled product (gemm); the chunk split depends only on the sequence's own row
// count, so its result does not depend on the batch.
import { madd } from './common';
import { exp4 } from './ops';
import { l2_norm, row_beta, row_g } from './deltanet_rec';

const BT = 64;

/** Scratch floats of one part: Q, K, K^T, [QS; KS], V', L, P (+ per-row factors). */
export function chunk_scratch_floats(dk: i32, dv: i32): i32 {
  return 3 * BT * dk + 2 * BT * dv + (BT + dk) * (dv + PAD) + 2 * BT * BT + 6 * BT;
}

// The state (copied in) and V' have rows of dv + PAD floats: at dv = 128 a 512-byte stride puts a
// column block's 128 rows in 8 of L1's 64 sets, too few ways for them to stay between passes.
const PAD = 4;

export function delta_chunked(out: usize, qkv: usize, a: usize, b: usize, A: usize, dtBias: usize, rows: usize, n: i32, S: usize, nk: i32, nv: i32, dk: i32, dv: i32, j: i32, kh: i32, eps: f32, scratch: usize): void {
  const C = 2 * nk * dk + nv * dv;
  // Q and K rows (and QS, KS) are one block of 2m rows, so that one product reads S once for both
  const Q = scratch, KT = Q + ((<usize>2 * BT * dk) << 2);
  const ld = dv + PAD, QS = KT + ((<usize>BT * dk) << 2), V = QS + ((<usize>2 * BT * dv) << 2);
  const Sp = V + ((<usize>BT * ld) << 2), L = Sp + ((<usize>dk * ld) << 2), P = L + ((<usize>BT * BT) << 2);
  const gam = P + ((<usize>BT * BT) << 2); // f64 [BT]
  const beta = gam + (<usize>BT << 3), eg = beta + (<usize>BT << 2), egn = eg + (<usize>BT << 2);
  const qscale = 1 / Math.sqrt(<f64>dk);
  const rowS = <usize>dv << 2, rowP = <usize>ld << 2;
  for (let i = 0; i < dk; i++) memory.copy(Sp + <usize>i * rowP, S + <usize>i * rowS, rowS);
  for (let r0 = 0; r0 < n; r0 += BT) {
    const m = min(BT, n - r0);
    const K = Q + ((<usize>m * dk) << 2), KS = QS + ((<usize>m * dv) << 2);
    // rows: normalised q and k (k also transposed), beta, cumulative log decay
    let g: f64 = 0;
    for (let i = 0; i < m; i++) {
      const t = load<i32>(rows + (<usize>(r0 + i) << 2));
      const row = qkv + ((<usize>t * C) << 2);
      const ki = K + ((<usize>i * dk) << 2);
      l2_norm(Q + ((<usize>i * dk) << 2), row + ((<usize>kh * dk) << 2), dk, qscale, eps);
      l2_norm(ki, row + ((<usize>(nk + kh) * dk) << 2), dk, 1, eps);
      for (let c = 0; c < dk; c++) store<f32>(KT + ((<usize>c * BT + i) << 2), load<f32>(ki + (<usize>c << 2)));
      store<f32>(beta + (<usize>i << 2), <f32>row_beta(b, t, nv, j));
      g += row_g(a, A, dtBias, t, nv, j);
      store<f64>(gam + (<usize>i << 3), g);
      store<f32>(eg + (<usize>i << 2), <f32>Math.exp(g));
    }
    for (let i = 0; i < m; i++) store<f32>(egn + (<usize>i << 2), <f32>Math.exp(g - load<f64>(gam + (<usize>i << 3))));
    // products with the incoming state, and the Gram matrices (lower triangles)
    gemm(QS, dv, Q, dk, Sp, ld, 2 * m, dk, dv, false, 1, 0);
    gemm(L, BT, K, dk, KT, BT, m, dk, m, false, 1, TRI_N);
    gemm(P, BT, Q, dk, KT, BT, m, dk, m, false, 1, TRI_N);
    decay_masks(L, P, gam, beta, m);
    // V' by forward substitution; QS scaled by e^gamma on the way
    for (let i = 0; i < m; i++) {
      const t = load<i32>(rows + (<usize>(r0 + i) << 2));
      const v = qkv + ((<usize>t * C + 2 * nk * dk + j * dv) << 2);
      substitute(V, ld, L, KS, QS, v, i, dv, load<f32>(beta + (<usize>i << 2)), load<f32>(eg + (<usize>i << 2)));
    }
    // O = e^gamma QS + P V', to the output rows
    gemm(QS, dv, P, BT, V, ld, m, m, dv, true, 1, TRI_K);
    const orow = (<usize>nv * dv) << 2;
    for (let i = 0; i < m; i++) {
      const t = load<i32>(rows + (<usize>(r0 + i) << 2));
      memory.copy(out + <usize>t * orow + ((<usize>j * dv) << 2), QS + ((<usize>i * dv) << 2), <usize>dv << 2);
    }
    // S = e^gamma_{m-1} S + (K e^(gamma_{m-1} - gamma))^T V'
    for (let c = 0; c < dk; c++) {
      const kt = KT + ((<usize>c * BT) << 2);
      let i = 0;
      for (; i + 4 <= m; i += 4) v128.store(kt + (<usize>i << 2), f32x4.mul(v128.load(kt + (<usize>i << 2)), v128.load(egn + (<usize>i << 2))));
      for (; i < m; i++) store<f32>(kt + (<usize>i << 2), load<f32>(kt + (<usize>i << 2)) * load<f32>(egn + (<usize>i << 2)));
    }
    gemm(Sp, ld, KT, BT, V, ld, dk, m, dv, true, <f32>Math.exp(g), 0);
  }
  for (let i = 0; i < dk; i++) memory.copy(S + <usize>i * rowS, Sp + <usize>i * rowP, rowS);
}

/** L_is *= beta_i D_is (s < i), P_is *= D_is (s <= i), P_is = 0 for i < s < m (gemm TRI_K reads it). */
function decay_masks(L: usize, P: usize, gam: usize, beta: usize, m: i32): void {
  for (let i = 0; i < m; i++) {
    const li = L + ((<usize>i * BT) << 2), pi = P + ((<usize>i * BT) << 2);
    const gi = f64x2.splat(load<f64>(gam + (<usize>i << 3)));
    const bi = f32x4.splat(load<f32>(beta + (<usize>i << 2)));
    let s = 0;
    // blocks of four columns up to the diagonal's block; the diagonal and beyond are fixed below
    for (; s + 4 <= i + 1; s += 4) {
      const g0 = f64x2.sub(gi, v128.load(gam + (<usize>s << 3))), g1 = f64x2.sub(gi, v128.load(gam + (<usize>s << 3), 16));
      const D = exp4(v128.shuffle<f32>(f32x4.demote_f64x2_zero(g0), f32x4.demote_f64x2_zero(g1), 0, 1, 4, 5));
      v128.store(pi + (<usize>s << 2), f32x4.mul(v128.load(pi + (<usize>s << 2)), D));
      v128.store(li + (<usize>s << 2), f32x4.mul(v128.load(li + (<usize>s << 2)), f32x4.mul(bi, D)));
    }
    for (; s <= i; s++) {
      const D = f32x4.extract_lane(exp4(f32x4.splat(<f32>(load<f64>(gam + (<usize>i << 3)) - load<f64>(gam + (<usize>s << 3))))), 0);
      store<f32>(pi + (<usize>s << 2), load<f32>(pi + (<usize>s << 2)) * D);
      store<f32>(li + (<usize>s << 2), load<f32>(li + (<usize>s << 2)) * (load<f32>(beta + (<usize>i << 2)) * D));
    }
    for (; s < m; s++) store<f32>(pi + (<usize>s << 2), 0);
  }
}

/** Row i of V' = beta_i (v - e^gamma_i KS_i) - sum_{s<i} L_is V'_s; and QS_i *= e^gamma_i. */
function substitute(V: usize, ld: i32, L: usize, KS: usize, QS: usize, v: usize, i: i32, dv: i32, beta: f32, eg: f32): void {
  const vi = V + ((<usize>i * ld) << 2), ks = KS + ((<usize>i * dv) << 2), qs = QS + ((<usize>i * dv) << 2);
  const li = L + ((<usize>i * BT) << 2), rowB = <usize>ld << 2;
  const vb = f32x4.splat(beta), ve = f32x4.splat(eg);
  let c = 0;
  for (; c + 16 <= dv; c += 16) {
    const o = <usize>c << 2;
    let a0 = f32x4.mul(vb, f32x4.sub(v128.load(v + o), f32x4.mul(ve, v128.load(ks + o))));
    let a1 = f32x4.mul(vb, f32x4.sub(v128.load(v + o, 16), f32x4.mul(ve, v128.load(ks + o, 16))));
    let a2 = f32x4.mul(vb, f32x4.sub(v128.load(v + o, 32), f32x4.mul(ve, v128.load(ks + o, 32))));
    let a3 = f32x4.mul(vb, f32x4.sub(v128.load(v + o, 48), f32x4.mul(ve, v128.load(ks + o, 48))));
    let p = V + o;
    for (let s = 0; s < i; s++, p += rowB) {
      const l = f32x4.neg(v128.load32_splat(li + (<usize>s << 2)));
      a0 = madd(l, v128.load(p), a0);
      a1 = madd(l, v128.load(p, 16), a1);
      a2 = madd(l, v128.load(p, 32), a2);
      a3 = madd(l, v128.load(p, 48), a3);
    }
    v128.store(vi + o, a0);
    v128.store(vi + o, a1, 16);
    v128.store(vi + o, a2, 32);
    v128.store(vi + o, a3, 48);
  }
  for (; c + 4 <= dv; c += 4) {
    const o = <usize>c << 2;
    let a0 = f32x4.mul(vb, f32x4.sub(v128.load(v + o), f32x4.mul(ve, v128.load(ks + o))));
    let p = V + o;
    for (let s = 0; s < i; s++, p += rowB) a0 = madd(f32x4.neg(v128.load32_splat(li + (<usize>s << 2))), v128.load(p), a0);
    v128.store(vi + o, a0);
  }
  for (; c < dv; c++) {
    const o = <usize>c << 2;
    let a0 = beta * (load<f32>(v + o) - eg * load<f32>(ks + o));
    let p = V + o;
    for (let s = 0; s < i; s++, p += rowB) a0 -= load<f32>(li + (<usize>s << 2)) * load<f32>(p);
    store<f32>(vi + o, a0);
  }
  c = 0;
  for (; c + 4 <= dv; c += 4) v128.store(qs + (<usize>c << 2), f32x4.mul(v128.load(qs + (<usize>c << 2)), ve));
  for (; c < dv; c++) store<f32>(qs + (<usize>c << 2), load<f32>(qs + (<usize>c << 2)) * eg);
}

/** gemm flags: a row block [r, r+R) sums only k < r+R (A is zero beyond: lower triangular A) ... */
const TRI_K = 1;
/** ... or needs only the columns c < r+R (a lower triangle of C). */
const TRI_N = 2;

/**
 * C[m, nc] = (acc ? alpha C : 0) + A[m, kd] B[kd, nc]; all row-major f32 with row strides ldc,
 * lda, ldb (floats). Tiles of 4 rows x 8 columns (8 accumulators); every element sums its k in
 * order, and which tile computes it depends only on (m, nc, tri).
 */
function gemm(C: usize, ldc: i32, A: usize, lda: i32, B: usize, ldb: i32, m: i32, kd: i32, nc: i32, acc: bool, alpha: f32, tri: i32): void {
  const cB = <usize>ldc << 2, aB = <usize>lda << 2, bB = <usize>ldb << 2;
  const m4 = m & ~3;
  // column blocks outside, row blocks inside: B's kd x 8 block (4 KiB at kd = 128) stays in L1
  let c = 0;
  for (; c + 8 <= nc; c += 8) {
    for (let r = 0; r < m4; r += 4) {
      const kmax = tri & TRI_K ? min(kd, r + 4) : kd, cmax = tri & TRI_N ? min(c + 8, r + 4) : c + 8;
      if (cmax == c + 8) tile4x8(C + <usize>r * cB + (<usize>c << 2), cB, A + <usize>r * aB, aB, B + (<usize>c << 2), bB, kmax, acc, alpha);
      else if (cmax > c) for (let rr = 0; rr < 4; rr++) cols(C + <usize>(r + rr) * cB, A + <usize>(r + rr) * aB, B, bB, kmax, acc, alpha, c, cmax);
    }
  }
  for (let r = 0; r < m4; r += 4) {
    const kmax = tri & TRI_K ? min(kd, r + 4) : kd, cmax = tri & TRI_N ? min(nc, r + 4) : nc;
    if (cmax > c) for (let rr = 0; rr < 4; rr++) cols(C + <usize>(r + rr) * cB, A + <usize>(r + rr) * aB, B, bB, kmax, acc, alpha, c, cmax);
  }
  for (let r = m4; r < m; r++) {
    const kmax = tri & TRI_K ? min(kd, r + 1) : kd, cmax = tri & TRI_N ? min(nc, r + 1) : nc;
    cols(C + <usize>r * cB, A + <usize>r * aB, B, bB, kmax, acc, alpha, 0, cmax);
  }
}

/** One row of C, columns c0 .. c1: vectors of 4, then single columns. */
function cols(Cr: usize, Ar: usize, B: usize, bB: usize, kmax: i32, acc: bool, alpha: f32, c0: i32, c1: i32): void {
  let c = c0;
  const va = f32x4.splat(alpha);
  for (; c + 4 <= c1; c += 4) {
    const o = <usize>c << 2;
    let s = acc ? f32x4.mul(v128.load(Cr + o), va) : f32x4.splat(0);
    let p = B + o;
    for (let k = 0; k < kmax; k++, p += bB) s = madd(v128.load32_splat(Ar + (<usize>k << 2)), v128.load(p), s);
    v128.store(Cr + o, s);
  }
  for (; c < c1; c++) {
    const o = <usize>c << 2;
    let s: f32 = acc ? load<f32>(Cr + o) * alpha : 0;
    let p = B + o;
    for (let k = 0; k < kmax; k++, p += bB) s += load<f32>(Ar + (<usize>k << 2)) * load<f32>(p);
    store<f32>(Cr + o, s);
  }
}

@inline function tile4x8(Cp: usize, cB: usize, Ap: usize, aB: usize, Bp: usize, bB: usize, kmax: i32, acc: bool, alpha: f32): void {
  let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  if (acc) {
    const va = f32x4.splat(alpha);
    c00 = f32x4.mul(v128.load(Cp), va);
    c01 = f32x4.mul(v128.load(Cp, 16), va);
    c10 = f32x4.mul(v128.load(Cp + cB), va);
    c11 = f32x4.mul(v128.load(Cp + cB, 16), va);
    c20 = f32x4.mul(v128.load(Cp + 2 * cB), va);
    c21 = f32x4.mul(v128.load(Cp + 2 * cB, 16), va);
    c30 = f32x4.mul(v128.load(Cp + 3 * cB), va);
    c31 = f32x4.mul(v128.load(Cp + 3 * cB, 16), va);
  }
  const A1 = Ap + aB, A2 = A1 + aB, A3 = A2 + aB;
  let p = Bp;
  for (let k = 0; k < kmax; k++, p += bB) {
    const o = <usize>k << 2;
    // one splat live at a time: 8 accumulators + 2 B vectors + 1 splat fit x64's 16 registers
    const b0 = v128.load(p), b1 = v128.load(p, 16);
    const a0 = v128.load32_splat(Ap + o);
    c00 = madd(a0, b0, c00);
    c01 = madd(a0, b1, c01);
    const a1 = v128.load32_splat(A1 + o);
    c10 = madd(a1, b0, c10);
    c11 = madd(a1, b1, c11);
    const a2 = v128.load32_splat(A2 + o);
    c20 = madd(a2, b0, c20);
    c21 = madd(a2, b1, c21);
    const a3 = v128.load32_splat(A3 + o);
    c30 = madd(a3, b0, c30);
    c31 = madd(a3, b1, c31);
  }
  v128.store(Cp, c00);
  v128.store(Cp, c01, 16);
  v128.store(Cp + cB, c10);
  v128.store(Cp + cB, c11, 16);
  v128.store(Cp + 2 * cB, c20);
  v128.store(Cp + 2 * cB, c21, 16);
  v128.store(Cp + 3 * cB, c30);
  v128.store(Cp + 3 * cB, c31, 16);
}
