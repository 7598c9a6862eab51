// The small set of ops the model code calls. Activations are Float32Arrays that the backend
// allocates (a WebAssembly backend hands out views on its own memory), weights are opaque
// blocks of stored bytes in their file type. Shapes are [rows, cols], row-major.
import type { DType } from '../formats/dtype.js';

/** A stored weight matrix [rows, cols] (or vector [n]), kept in its file type. */
export interface Weight {
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** raw bytes, filled by the loader straight from the file */
  readonly bytes: Uint8Array;
}

/** One sequence's key/value rows for one attention call: slots 0..len-1 are attended. */
export interface AttnSpan {
  k: Float32Array; // [capacity, kvHeads*headDim]
  v: Float32Array; // [capacity, kvHeads*headDim]
  len: number;
}

export interface Backend {
  readonly name: string;
  /** activation buffer of n floats, contents unspecified: every op writes all of its output (the
   * WebAssembly backend hands out reused blocks without clearing them) */
  alloc(n: number): Float32Array;
  /** storage for a weight, to be filled through `.bytes` */
  weight(dtype: DType, shape: readonly number[]): Weight;

  /** out[t,:] = table[tokens[t], :] (dequantised); out [T, D] */
  embed(out: Float32Array, table: Weight, tokens: Int32Array): void;
  /** out[t,n] = sum_k x[t,k] * w[n,k]; out [T, N], x [T, K], w [N, K] */
  matmul(out: Float32Array, x: Float32Array, w: Weight, T: number): void;
  /** outs[i] = x ws[i]^T for every i, as matmul: several products of one x (e.g. the q/k/v
   * projections), which a backend may run as one (one pass over x, one dispatch) */
  matmulMany(outs: Float32Array[], x: Float32Array, ws: Weight[], T: number): void;
  /** x[t,:] += bias; x [T, N] */
  addBias(x: Float32Array, bias: Float32Array, T: number): void;
  /** out[r,:] = x[r,:] / rms(x[r,:]) * w; x, out [R, D] (may alias) */
  rmsNorm(out: Float32Array, x: Float32Array, w: Float32Array, R: number, D: number, eps: number): void;
  /** NEOX-style rotary embedding in place: x [T, H*Dh], the two halves of each head rotated together */
  rope(x: Float32Array, positions: Int32Array, T: number, H: number, Dh: number, theta: number): void;
  /** out[t] = softmax(q[t] k^T * scale) v over spans[t] with grouped-query heads; q, out [T, Hq*Dh] */
  attention(out: Float32Array, q: Float32Array, spans: AttnSpan[], Hq: number, Hkv: number, Dh: number, scale: number): void;
  /** out = silu(gate) * up, elementwise over n */
  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;
  /** out = a + b, elementwise over n (may alias) */
  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  /** dst[dstOff .. dstOff+n) = src[srcOff .. srcOff+n) */
  copy(dst: Float32Array, dstOff: number, src: Float32Array, srcOff: number, n: number): void;

  // Optional memory management, for backends with their own heap (WebAssembly memory):
  /** Bracket one forward pass: buffers allocated inside it and not freed are released when the
   * next pass begins (so a pass's logits stay valid until then). */
  beginPass?(): void;
  endPass?(): void;
  /** Release a buffer from alloc() early; it must not be used afterwards. */
  free?(a: Float32Array): void;
  /** Release worker threads and memory; the backend is unusable afterwards. */
  dispose?(): void;
}
