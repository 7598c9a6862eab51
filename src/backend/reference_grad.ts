// The backward ops of the reference backend (LoRA training): plain loops accumulating in float64,
// the oracle the WebAssembly versions are tested against. The WebAssembly backend also runs the
// small ones here (rmsNormBack, siluMulBack) on its own arrays.
import { dequantize } from '../formats/quant/index.js';
import { DTYPES } from '../formats/dtype.js';
import type { Weight } from './backend.js';

/** dx [T, K] (+)= dy [T, N] w [N, K], w decoded row by row. */
export function matmulTRef(dx: Float32Array, dy: Float32Array, w: Weight, T: number, accumulate = false): void {
  const [N, K] = w.shape as [number, number];
  const rowBytes = (K / DTYPES[w.dtype].blockSize) * DTYPES[w.dtype].blockBytes;
  const row = new Float32Array(K),
    acc = new Float64Array(T * K);
  for (let n = 0; n < N; n++) {
    dequantize(w.dtype, w.bytes, n * rowBytes, row, 0, K);
    for (let t = 0; t < T; t++) {
      const g = dy[t * N + n]!;
      if (g === 0) continue;
      for (let k = 0; k < K; k++) acc[t * K + k]! += g * row[k]!;
    }
  }
  for (let i = 0; i < T * K; i++) dx[i] = accumulate ? dx[i]! + acc[i]! : acc[i]!;
}

/** out [N, K] = a [T, N]^T b [T, K]. */
export function matmulTNRef(out: Float32Array, a: Float32Array, b: Float32Array, T: number, N: number, K: number): void {
  const acc = new Float64Array(N * K);
  for (let t = 0; t < T; t++)
    for (let n = 0; n < N; n++) {
      const g = a[t * N + n]!;
      for (let k = 0; k < K; k++) acc[n * K + k]! += g * b[t * K + k]!;
    }
  out.set(acc);
}

/** y = x * inv * w, inv = 1/sqrt(mean(x^2) + eps): dx = inv * (w dy) - x * inv^3 / D * sum(x w dy). */
export function rmsNormBackRef(dx: Float32Array, dy: Float32Array, x: Float32Array, w: Float32Array, R: number, D: number, eps: number): void {
  for (let r = 0; r < R; r++) {
    const o = r * D;
    let ss = 0,
      dot = 0;
    for (let i = 0; i < D; i++) {
      ss += x[o + i]! ** 2;
      dot += x[o + i]! * w[i]! * dy[o + i]!;
    }
    const inv = 1 / Math.sqrt(ss / D + eps),
      c = (dot * inv ** 3) / D;
    for (let i = 0; i < D; i++) dx[o + i] = inv * w[i]! * dy[o + i]! - c * x[o + i]!;
  }
}

/** out = silu(g) u: dg = dout u sigmoid(g) (1 + g (1 - sigmoid(g))), du = dout silu(g). */
export function siluMulBackRef(dgate: Float32Array, dup: Float32Array, dout: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!,
      u = up[i]!,
      d = dout[i]!,
      sg = 1 / (1 + Math.exp(-g));
    dgate[i] = d * u * sg * (1 + g * (1 - sg));
    dup[i] = d * g * sg;
  }
}

/**
 * Causal attention backward (Backend.attentionBack), per sequence, query row and head, recomputing
 * the probabilities p: dv_j += p_j dout; ds_j = p_j (dout.v_j - dout.out); dq = scale sum ds_j k_j;
 * dk_j += scale ds_j q.
 */
export function attentionBackRef(
  dq: Float32Array,
  dk: Float32Array,
  dv: Float32Array,
  dout: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  out: Float32Array,
  lens: Int32Array,
  Hq: number,
  Hkv: number,
  Dh: number,
  scale: number,
): void {
  const group = Hq / Hkv,
    qW = Hq * Dh,
    kW = Hkv * Dh;
  const T = lens.reduce((a, b) => a + b, 0);
  const gk = new Float64Array(T * kW),
    gv = new Float64Array(T * kW);
  let s0 = 0;
  for (const len of lens) {
    const p = new Float64Array(len);
    for (let i = 0; i < len; i++) {
      const t = s0 + i;
      for (let h = 0; h < Hq; h++) {
        const qo = t * qW + h * Dh,
          kh = Math.floor(h / group);
        let max = -Infinity;
        for (let j = 0; j <= i; j++) {
          let s = 0;
          for (let d = 0; d < Dh; d++) s += q[qo + d]! * k[(s0 + j) * kW + kh * Dh + d]!;
          p[j] = s * scale;
          if (p[j]! > max) max = p[j]!;
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) sum += p[j] = Math.exp(p[j]! - max);
        let D = 0;
        for (let d = 0; d < Dh; d++) D += dout[qo + d]! * out[qo + d]!;
        const gq = new Float64Array(Dh);
        for (let j = 0; j <= i; j++) {
          const pj = p[j]! / sum,
            ko = (s0 + j) * kW + kh * Dh;
          let dp = 0;
          for (let d = 0; d < Dh; d++) {
            dp += dout[qo + d]! * v[ko + d]!;
            gv[ko + d]! += pj * dout[qo + d]!;
          }
          const ds = pj * (dp - D) * scale;
          for (let d = 0; d < Dh; d++) {
            gq[d]! += ds * k[ko + d]!;
            gk[ko + d]! += ds * q[qo + d]!;
          }
        }
        for (let d = 0; d < Dh; d++) dq[qo + d] = gq[d]!;
      }
    }
    s0 += len;
  }
  dk.set(gk);
  dv.set(gv);
}
