// The reference backend: plain, obvious TypeScript, accumulating in float64. It is the oracle
// every fast kernel is tested against, so it stays simple rather than fast.
import { dequantize } from '../formats/quant/index.js';
import { DTYPES, tensorBytes, type DType } from '../formats/dtype.js';
import type { AttnSpan, Backend, Weight } from './backend.js';

function rowOf(w: Weight, r: number, dst: Float32Array): Float32Array {
  const cols = w.shape[w.shape.length - 1]!;
  const rowBytes = (cols / DTYPES[w.dtype].blockSize) * DTYPES[w.dtype].blockBytes;
  dequantize(w.dtype, w.bytes, r * rowBytes, dst, 0, cols);
  return dst;
}

export class ReferenceBackend implements Backend {
  readonly name = 'reference';

  alloc(n: number): Float32Array {
    return new Float32Array(n);
  }

  weight(dtype: DType, shape: readonly number[]): Weight {
    return { dtype, shape: [...shape], bytes: new Uint8Array(tensorBytes(dtype, shape)) };
  }

  embed(out: Float32Array, table: Weight, tokens: Int32Array): void {
    const D = table.shape[1]!;
    const row = new Float32Array(D);
    tokens.forEach((tok, t) => out.set(rowOf(table, tok, row), t * D));
  }

  matmul(out: Float32Array, x: Float32Array, w: Weight, T: number): void {
    const [N, K] = w.shape as [number, number];
    const row = new Float32Array(K);
    for (let n = 0; n < N; n++) {
      rowOf(w, n, row);
      for (let t = 0; t < T; t++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += x[t * K + k]! * row[k]!;
        out[t * N + n] = s;
      }
    }
  }

  matmulMany(outs: Float32Array[], x: Float32Array, ws: Weight[], T: number): void {
    ws.forEach((w, i) => this.matmul(outs[i]!, x, w, T));
  }

  addBias(x: Float32Array, bias: Float32Array, T: number): void {
    const N = bias.length;
    for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) x[t * N + n]! += bias[n]!;
  }

  rmsNorm(out: Float32Array, x: Float32Array, w: Float32Array, R: number, D: number, eps: number): void {
    for (let r = 0; r < R; r++) {
      let ss = 0;
      for (let i = 0; i < D; i++) ss += x[r * D + i]! ** 2;
      const inv = 1 / Math.sqrt(ss / D + eps);
      for (let i = 0; i < D; i++) out[r * D + i] = x[r * D + i]! * inv * w[i]!;
    }
  }

  rope(x: Float32Array, positions: Int32Array, T: number, H: number, Dh: number, theta: number): void {
    const half = Dh / 2;
    for (let t = 0; t < T; t++) {
      const p = positions[t]!;
      for (let h = 0; h < H; h++) {
        const base = (t * H + h) * Dh;
        for (let i = 0; i < half; i++) {
          const angle = p * Math.pow(theta, (-2 * i) / Dh);
          const c = Math.cos(angle), s = Math.sin(angle);
          const a = x[base + i]!, b = x[base + i + half]!;
          x[base + i] = a * c - b * s;
          x[base + i + half] = b * c + a * s;
        }
      }
    }
  }

  attention(out: Float32Array, q: Float32Array, spans: AttnSpan[], Hq: number, Hkv: number, Dh: number, scale: number): void {
    const group = Hq / Hkv;
    const kvDim = Hkv * Dh;
    spans.forEach((span, t) => {
      const scores = new Float64Array(span.len);
      for (let h = 0; h < Hq; h++) {
        const kh = Math.floor(h / group);
        const qo = t * Hq * Dh + h * Dh;
        let max = -Infinity;
        for (let j = 0; j < span.len; j++) {
          let s = 0;
          for (let d = 0; d < Dh; d++) s += q[qo + d]! * span.k[j * kvDim + kh * Dh + d]!;
          scores[j] = s * scale;
          if (scores[j]! > max) max = scores[j]!;
        }
        let sum = 0;
        for (let j = 0; j < span.len; j++) sum += scores[j] = Math.exp(scores[j]! - max);
        for (let d = 0; d < Dh; d++) {
          let acc = 0;
          for (let j = 0; j < span.len; j++) acc += scores[j]! * span.v[j * kvDim + kh * Dh + d]!;
          out[qo + d] = acc / sum;
        }
      }
    });
  }

  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    for (let i = 0; i < n; i++) {
      const g = gate[i]!;
      out[i] = (g / (1 + Math.exp(-g))) * up[i]!;
    }
  }

  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
    for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!;
  }

  copy(dst: Float32Array, dstOff: number, src: Float32Array, srcOff: number, n: number): void {
    dst.set(src.subarray(srcOff, srcOff + n), dstOff);
  }
}
