// The reference backend: plain, obvious TypeScript, accumulating in float64. It is the oracle
// every fast kernel is tested against, so it stays simple rather than fast.
import { dequantize, quantize } from '../formats/quant/index.js';
import { DTYPES, tensorBytes, type DType } from '../formats/dtype.js';
import { checkSect, kvHeadBytes, kvRowWords, ropeFreqs, type AttnSpan, type Backend, type DeltaNetDims, type KvType, type RecurrentSpan, type RopeFreqs, type Weight } from './backend.js';
import { checkExperts } from './experts.js';
import { attentionBackRef, matmulTNRef, matmulTRef, rmsNormBackRef, siluMulBackRef } from './reference_grad.js';

function rowOf(w: Weight, r: number, dst: Float32Array): Float32Array {
  const cols = w.shape[w.shape.length - 1]!;
  const rowBytes = (cols / DTYPES[w.dtype].blockSize) * DTYPES[w.dtype].blockBytes;
  dequantize(w.dtype, w.bytes, r * rowBytes, dst, 0, cols);
  return dst;
}

const KV_DTYPE: Record<KvType, DType> = { f32: 'F32', f16: 'F16', q8_0: 'Q8_0' };
const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Head kh's rows 0..len-1 of a KV cache (rows of kvDim values stored as `type`), decoded: [len, Dh]. */
function headRows(a: Float32Array, type: KvType, kvDim: number, Dh: number, kh: number, len: number): Float32Array {
  const out = new Float32Array(len * Dh),
    rb = 4 * kvRowWords(type, kvDim),
    hb = kvHeadBytes(type, Dh),
    b = bytesOf(a);
  for (let j = 0; j < len; j++) dequantize(KV_DTYPE[type], b, j * rb + kh * hb, out, j * Dh, Dh);
  return out;
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

  matmulExperts(outs: Float32Array[], x: Float32Array, ws: Weight[], ids: Int32Array, T: number, k: number, perSlot = false): void {
    checkExperts(outs, x, ws, ids, T, k, perSlot);
    ws.forEach((w, i) => {
      const [, N, K] = w.shape as [number, number, number];
      const row = new Float32Array(K),
        out = outs[i]!;
      for (let s = 0; s < T * k; s++) {
        const e = ids[s]!,
          xo = (perSlot ? s : Math.floor(s / k)) * K;
        for (let n = 0; n < N; n++) {
          rowOf(w, e * N + n, row); // row n of expert e's matrix
          let acc = 0;
          for (let c = 0; c < K; c++) acc += x[xo + c]! * row[c]!;
          out[s * N + n] = acc;
        }
      }
    });
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

  ropeMulti(x: Float32Array, pos: Int32Array, S: number, sect: Uint8Array, T: number, H: number, Dh: number, theta: number | RopeFreqs, nRot = Dh): void {
    const half = nRot / 2,
      { inv, mscale } = ropeFreqs(theta, nRot);
    checkSect(sect, S, half);
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const base = (t * H + h) * Dh;
        for (let i = 0; i < half; i++) {
          const angle = pos[t * S + sect[i]!]! * inv[i]!;
          const c = Math.cos(angle) * mscale,
            s = Math.sin(angle) * mscale;
          const a = x[base + i]!,
            b = x[base + i + half]!;
          x[base + i] = a * c - b * s;
          x[base + i + half] = b * c + a * s;
        }
      }
  }

  rope(x: Float32Array, positions: Int32Array, T: number, H: number, Dh: number, theta: number | RopeFreqs, nRot = Dh): void {
    this.ropeMulti(x, positions, 1, new Uint8Array(nRot / 2), T, H, Dh, theta, nRot); // one position column for every pair
  }

  attention(out: Float32Array, q: Float32Array, spans: AttnSpan[], Hq: number, Hkv: number, Dh: number, scale: number): void {
    const group = Hq / Hkv;
    const kvDim = Hkv * Dh;
    spans.forEach((span, t) => {
      const scores = new Float64Array(span.len);
      const type = span.type ?? 'f32';
      const ks = Array.from({ length: Hkv }, (_, kh) => headRows(span.k, type, kvDim, Dh, kh, span.len));
      const vs = Array.from({ length: Hkv }, (_, kh) => headRows(span.v, type, kvDim, Dh, kh, span.len));
      for (let h = 0; h < Hq; h++) {
        const kh = Math.floor(h / group),
          kr = ks[kh]!,
          vr = vs[kh]!;
        const qo = t * Hq * Dh + h * Dh;
        let max = -Infinity;
        for (let j = 0; j < span.len; j++) {
          let s = 0;
          for (let d = 0; d < Dh; d++) s += q[qo + d]! * kr[j * Dh + d]!;
          scores[j] = s * scale;
          if (scores[j]! > max) max = scores[j]!;
        }
        let sum = 0;
        for (let j = 0; j < span.len; j++) sum += scores[j] = Math.exp(scores[j]! - max);
        for (let d = 0; d < Dh; d++) {
          let acc = 0;
          for (let j = 0; j < span.len; j++) acc += scores[j]! * vr[j * Dh + d]!;
          out[qo + d] = acc / sum;
        }
      }
    });
  }

  layerNorm(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array, R: number, D: number, eps: number): void {
    for (let r = 0; r < R; r++) {
      let s = 0;
      for (let i = 0; i < D; i++) s += x[r * D + i]!;
      const mean = s / D;
      let ss = 0;
      for (let i = 0; i < D; i++) ss += (x[r * D + i]! - mean) ** 2;
      const inv = 1 / Math.sqrt(ss / D + eps);
      for (let i = 0; i < D; i++) out[r * D + i] = (x[r * D + i]! - mean) * inv * w[i]! + b[i]!;
    }
  }

  gelu(out: Float32Array, x: Float32Array, n: number): void {
    const c = Math.sqrt(2 / Math.PI);
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      out[i] = 0.5 * v * (1 + Math.tanh(c * (v + 0.044715 * v * v * v)));
    }
  }

  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    for (let i = 0; i < n; i++) {
      const g = gate[i]!;
      out[i] = (g / (1 + Math.exp(-g))) * up[i]!;
    }
  }

  sigmoidMul(out: Float32Array, gate: Float32Array, x: Float32Array, n: number): void {
    for (let i = 0; i < n; i++) out[i] = x[i]! / (1 + Math.exp(-gate[i]!));
  }

  ssmConv(out: Float32Array, x: Float32Array, w: Float32Array, spans: RecurrentSpan[], C: number, K: number): void {
    for (const span of spans) {
      // xpad: the K-1 remembered inputs, then this sequence's rows
      const xpad = (r: number, c: number) => (r < K - 1 ? span.conv[r * C + c]! : x[span.rows[r - (K - 1)]! * C + c]!);
      const n = span.rows.length;
      span.rows.forEach((t, r) => {
        for (let c = 0; c < C; c++) {
          let s = 0;
          for (let i = 0; i < K; i++) s += w[c * K + i]! * xpad(r + i, c);
          out[t * C + c] = s / (1 + Math.exp(-s));
        }
      });
      const keep = Float32Array.from({ length: (K - 1) * C }, (_, j) => xpad(n + Math.floor(j / C), j % C));
      span.conv.set(keep);
    }
  }

  deltaNet(out: Float32Array, qkv: Float32Array, a: Float32Array, b: Float32Array, A: Float32Array, dtBias: Float32Array, spans: RecurrentSpan[], d: DeltaNetDims, eps: number): void {
    const { nk, nv, dk, dv } = d;
    const C = 2 * nk * dk + nv * dv,
      r = nv / nk;
    const q = new Float64Array(dk),
      k = new Float64Array(dk),
      v = new Float64Array(dv),
      sk = new Float64Array(dv);
    const l2 = (dst: Float64Array, off: number, scale: number) => {
      let ss = 0;
      for (let i = 0; i < dk; i++) ss += qkv[off + i]! ** 2;
      const inv = scale / Math.sqrt(ss + eps);
      for (let i = 0; i < dk; i++) dst[i] = qkv[off + i]! * inv;
    };
    for (const span of spans) {
      for (const t of span.rows) {
        for (let j = 0; j < nv; j++) {
          const kh = d.tiled ? j % nk : Math.floor(j / r);
          l2(q, t * C + kh * dk, 1 / Math.sqrt(dk));
          l2(k, t * C + nk * dk + kh * dk, 1);
          for (let c = 0; c < dv; c++) v[c] = qkv[t * C + 2 * nk * dk + j * dv + c]!;
          const beta = 1 / (1 + Math.exp(-b[t * nv + j]!));
          const z = a[t * nv + j]! + dtBias[j]!;
          const softplus = z > 20 ? z : Math.log1p(Math.exp(z));
          const decay = Math.exp(A[j]! * softplus);
          const S = span.state.subarray(j * dk * dv, (j + 1) * dk * dv); // S[i][c]
          sk.fill(0);
          for (let i = 0; i < dk; i++) for (let c = 0; c < dv; c++) sk[c]! += S[i * dv + c]! * decay * k[i]!;
          for (let c = 0; c < dv; c++) sk[c] = beta * (v[c]! - sk[c]!); // delta
          for (let i = 0; i < dk; i++) for (let c = 0; c < dv; c++) S[i * dv + c] = S[i * dv + c]! * decay + k[i]! * sk[c]!;
          for (let c = 0; c < dv; c++) {
            let o = 0;
            for (let i = 0; i < dk; i++) o += S[i * dv + c]! * q[i]!;
            out[t * nv * dv + j * dv + c] = o;
          }
        }
      }
    }
  }

  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
    for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!;
  }

  copy(dst: Float32Array, dstOff: number, src: Float32Array, srcOff: number, n: number): void {
    dst.set(src.subarray(srcOff, srcOff + n), dstOff);
  }

  storeRows(dst: Float32Array, dstRow: number, src: Float32Array, srcRow: number, n: number, width: number, type: KvType): void {
    const words = kvRowWords(type, width),
      b = bytesOf(dst);
    if (dstRow < 0 || srcRow < 0 || (dstRow + n) * words > dst.length || (srcRow + n) * width > src.length) throw new RangeError(`storeRows: ${n} rows at ${srcRow} -> ${dstRow} out of bounds`);
    for (let r = 0; r < n; r++) b.set(quantize(KV_DTYPE[type], src.subarray((srcRow + r) * width, (srcRow + r + 1) * width), width), 4 * (dstRow + r) * words);
  }

  // backward ops (LoRA training): reference_grad.ts
  matmulT = matmulTRef;
  matmulTN = matmulTNRef;
  rmsNormBack = rmsNormBackRef;
  siluMulBack = siluMulBackRef;
  attentionBack = attentionBackRef;
}
