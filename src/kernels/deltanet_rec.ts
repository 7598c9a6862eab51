// The recurrent form of the gated delta rule, one row at a time (decode), and the per-row helpers
// both forms share. S [dk][dv] row-major: a row step is SIMD over dv, in tiles of 16 columns.
import { dot_f32, madd } from './common';

/** beta = sigmoid(b[t,j]) and g = A[j] * softplus(a[t,j] + dtBias[j]) (the log of the decay), in f64. */
@inline export function row_beta(b: usize, t: i32, nv: i32, j: i32): f64 {
  return 1 / (1 + Math.exp(-<f64>load<f32>(b + ((<usize>t * nv + j) << 2))));
}

@inline export function row_g(a: usize, A: usize, dtBias: usize, t: i32, nv: i32, j: i32): f64 {
  const z = <f64>load<f32>(a + ((<usize>t * nv + j) << 2)) + <f64>load<f32>(dtBias + (<usize>j << 2));
  return <f64>load<f32>(A + (<usize>j << 2)) * (z > 20 ? z : Math.log1p(Math.exp(z)));
}

/** dst = src * scale / sqrt(sum src^2 + eps), n floats. */
export function l2_norm(dst: usize, src: usize, n: i32, scale: f64, eps: f32): void {
  const ss = dot_f32(src, src, n);
  const inv = <f32>(scale / Math.sqrt(<f64>ss + <f64>eps));
  const vi = f32x4.splat(inv);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), f32x4.mul(v128.load(src + (<usize>i << 2)), vi));
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), load<f32>(src + (<usize>i << 2)) * inv);
}

/** One row t of head j (key head kh), recurrent form: S = e^g S; S += k beta (v - S^T k)^T; o = S^T q. */
export function delta_step(out: usize, qkv: usize, a: usize, b: usize, A: usize, dtBias: usize, t: i32, S: usize, nk: i32, nv: i32, dk: i32, dv: i32, j: i32, kh: i32, eps: f32, scratch: usize): void {
  const C = 2 * nk * dk + nv * dv;
  const row = qkv + ((<usize>t * C) << 2);
  const q = scratch, k = scratch + (<usize>dk << 2);
  l2_norm(q, row + ((<usize>kh * dk) << 2), dk, 1 / Math.sqrt(<f64>dk), eps);
  l2_norm(k, row + ((<usize>(nk + kh) * dk) << 2), dk, 1, eps);
  const v = row + ((<usize>(2 * nk * dk + j * dv)) << 2);
  const o = out + ((<usize>t * nv * dv + <usize>j * dv) << 2);
  const beta = <f32>row_beta(b, t, nv, j), decay = <f32>Math.exp(row_g(a, A, dtBias, t, nv, j));
  const rowB = <usize>dv << 2;
  let c = 0;
  for (; c + 16 <= dv; c += 16) cols16(S + (<usize>c << 2), rowB, q, k, v + (<usize>c << 2), o + (<usize>c << 2), dk, beta, decay);
  for (; c + 4 <= dv; c += 4) cols4(S + (<usize>c << 2), rowB, q, k, v + (<usize>c << 2), o + (<usize>c << 2), dk, beta, decay);
  for (; c < dv; c++) col1(S + (<usize>c << 2), rowB, q, k, v + (<usize>c << 2), o + (<usize>c << 2), dk, beta, decay);
}

// Sixteen columns of S (a dk x 16 tile, 8 KiB at dk = 128, in L1 between the two passes):
// pass 1 sums S^T k, pass 2 updates S and sums S^T q with the updated S.
@inline function cols16(Sc: usize, rowB: usize, q: usize, k: usize, v: usize, o: usize, dk: i32, beta: f32, decay: f32): void {
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  let p = Sc;
  for (let i = 0; i < dk; i++, p += rowB) {
    const kv = v128.load32_splat(k + (<usize>i << 2));
    a0 = madd(v128.load(p), kv, a0);
    a1 = madd(v128.load(p, 16), kv, a1);
    a2 = madd(v128.load(p, 32), kv, a2);
    a3 = madd(v128.load(p, 48), kv, a3);
  }
  const vb = f32x4.splat(beta), vd = f32x4.splat(decay);
  const d0 = f32x4.mul(vb, f32x4.sub(v128.load(v), f32x4.mul(vd, a0)));
  const d1 = f32x4.mul(vb, f32x4.sub(v128.load(v, 16), f32x4.mul(vd, a1)));
  const d2 = f32x4.mul(vb, f32x4.sub(v128.load(v, 32), f32x4.mul(vd, a2)));
  const d3 = f32x4.mul(vb, f32x4.sub(v128.load(v, 48), f32x4.mul(vd, a3)));
  let o0 = f32x4.splat(0), o1 = o0, o2 = o0, o3 = o0;
  p = Sc;
  for (let i = 0; i < dk; i++, p += rowB) {
    const kv = v128.load32_splat(k + (<usize>i << 2)), qv = v128.load32_splat(q + (<usize>i << 2));
    const s0 = madd(kv, d0, f32x4.mul(v128.load(p), vd));
    const s1 = madd(kv, d1, f32x4.mul(v128.load(p, 16), vd));
    const s2 = madd(kv, d2, f32x4.mul(v128.load(p, 32), vd));
    const s3 = madd(kv, d3, f32x4.mul(v128.load(p, 48), vd));
    v128.store(p, s0);
    v128.store(p, s1, 16);
    v128.store(p, s2, 32);
    v128.store(p, s3, 48);
    o0 = madd(s0, qv, o0);
    o1 = madd(s1, qv, o1);
    o2 = madd(s2, qv, o2);
    o3 = madd(s3, qv, o3);
  }
  v128.store(o, o0);
  v128.store(o, o1, 16);
  v128.store(o, o2, 32);
  v128.store(o, o3, 48);
}

@inline function cols4(Sc: usize, rowB: usize, q: usize, k: usize, v: usize, o: usize, dk: i32, beta: f32, decay: f32): void {
  let a0 = f32x4.splat(0);
  let p = Sc;
  for (let i = 0; i < dk; i++, p += rowB) a0 = madd(v128.load(p), v128.load32_splat(k + (<usize>i << 2)), a0);
  const vd = f32x4.splat(decay);
  const d0 = f32x4.mul(f32x4.splat(beta), f32x4.sub(v128.load(v), f32x4.mul(vd, a0)));
  let o0 = f32x4.splat(0);
  p = Sc;
  for (let i = 0; i < dk; i++, p += rowB) {
    const s0 = madd(v128.load32_splat(k + (<usize>i << 2)), d0, f32x4.mul(v128.load(p), vd));
    v128.store(p, s0);
    o0 = madd(s0, v128.load32_splat(q + (<usize>i << 2)), o0);
  }
  v128.store(o, o0);
}

function col1(Sc: usize, rowB: usize, q: usize, k: usize, v: usize, o: usize, dk: i32, beta: f32, decay: f32): void {
  let a0: f32 = 0;
  let p = Sc;
  for (let i = 0; i < dk; i++, p += rowB) a0 += load<f32>(p) * load<f32>(k + (<usize>i << 2));
  const d0 = beta * (load<f32>(v) - decay * a0);
  let o0: f32 = 0;
  p = Sc;
  for (let i = 0; i < dk; i++, p += rowB) {
    const s0 = load<f32>(p) * decay + load<f32>(k + (<usize>i << 2)) * d0;
    store<f32>(p, s0);
    o0 += s0 * load<f32>(q + (<usize>i << 2));
  }
  store<f32>(o, o0);
}
