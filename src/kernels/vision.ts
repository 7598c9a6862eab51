// Ops of the vision towers (src/vision/): LayerNorm with a bias (Qwen2-VL / Qwen3-VL blocks and
// merger) and the tanh GELU (Qwen3-VL's MLP, every merger). Both are parallel kernels split by
// rows / elements; the backend's reference versions (src/backend/reference.ts) are their oracle.
import { hsum, madd, split } from './common';
import { exp4 } from './ops';

/** out[r] = (x[r] - mean) / sqrt(var + eps) * w + b for this part's rows of x [R, D] (may alias). */
export function layer_norm(part: i32, parts: i32, out: usize, x: usize, w: usize, b: usize, R: i32, D: i32, eps: f32): void {
  const r0 = split(R, part, parts, 1), r1 = split(R, part + 1, parts, 1);
  for (let r = r0; r < r1; r++) {
    const xr = x + ((<usize>r * D) << 2), o = out + ((<usize>r * D) << 2);
    // two passes (a mean, then the deviations from it): one pass's E[x^2] - E[x]^2 cancels badly on
    // rows with a large mean, which a residual stream can have; the second pass also sums the
    // deviations, which corrects the first mean's own rounding (the corrected two-pass algorithm)
    let acc = f32x4.splat(0), i = 0;
    for (; i + 4 <= D; i += 4) acc = f32x4.add(acc, v128.load(xr + (<usize>i << 2)));
    let s = <f64>hsum(acc);
    for (; i < D; i++) s += <f64>load<f32>(xr + (<usize>i << 2));
    const m0 = <f32>(s / D), vm0 = f32x4.splat(m0);
    acc = f32x4.splat(0);
    let accd = f32x4.splat(0);
    for (i = 0; i + 4 <= D; i += 4) {
      const d = f32x4.sub(v128.load(xr + (<usize>i << 2)), vm0);
      accd = f32x4.add(accd, d);
      acc = madd(d, d, acc);
    }
    let ss = <f64>hsum(acc), sd = <f64>hsum(accd);
    for (; i < D; i++) {
      const d = load<f32>(xr + (<usize>i << 2)) - m0;
      sd += <f64>d;
      ss += <f64>(d * d);
    }
    const mean = <f32>(<f64>m0 + sd / D), vm = f32x4.splat(mean);
    ss = ss / D - (sd / D) * (sd / D);
    const inv = <f32>(1 / Math.sqrt(ss + eps)), vi = f32x4.splat(inv);
    for (i = 0; i + 4 <= D; i += 4) {
      const k = <usize>i << 2;
      const n = f32x4.mul(f32x4.sub(v128.load(xr + k), vm), vi);
      v128.store(o + k, f32x4.add(f32x4.mul(n, v128.load(w + k)), v128.load(b + k)));
    }
    for (; i < D; i++) {
      const k = <usize>i << 2;
      store<f32>(o + k, (load<f32>(xr + k) - mean) * inv * load<f32>(w + k) + load<f32>(b + k));
    }
  }
}

/** GELU, tanh form, on four lanes: 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3).
 *  exp4 clamps its argument, so very negative x gives x / 3e38 (a denormal-sized 0) and large x gives x. */
@inline function gelu4(x: v128): v128 {
  const x3 = f32x4.mul(f32x4.mul(x, x), x);
  const u2 = f32x4.mul(f32x4.splat(-2 * 0.7978845608028654), madd(x3, f32x4.splat(0.044715), x));
  return f32x4.div(x, f32x4.add(f32x4.splat(1), exp4(u2)));
}

/** out = gelu_tanh(x) over this part of n floats (may alias). */
export function gelu(part: i32, parts: i32, out: usize, x: usize, _unused: usize, n: i32): void {
  const i0 = split(n, part, parts, 16), i1 = split(n, part + 1, parts, 16);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const k = <usize>i << 2;
    v128.store(out + k, gelu4(v128.load(x + k)));
  }
  // the tail through the same lanes: an element's value must not depend on where it falls
  for (; i < i1; i++) {
    const k = <usize>i << 2;
    store<f32>(out + k, f32x4.extract_lane(gelu4(f32x4.splat(load<f32>(x + k))), 0));
  }
}
