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

/**
 * How a KV cache stores its keys and values (llama.cpp's --cache-type-k/v): f32; f16 (IEEE half,
 * rounded to nearest even); q8_0 (ggml's blocks of 32: an f16 scale then 32 int8, 34 bytes, each
 * head's row a whole number of blocks).
 */
export type KvType = 'f32' | 'f16' | 'q8_0';
export const KV_TYPES: readonly KvType[] = ['f32', 'f16', 'q8_0'];

/** Bytes one head's row of `Dh` values takes as `type` (q8_0: Dh a multiple of 32). */
export function kvHeadBytes(type: KvType, Dh: number): number {
  return type === 'f32' ? 4 * Dh : type === 'f16' ? 2 * Dh : (Dh / 32) * 34;
}

/** 4-byte words one cache row of `width` values takes as `type` (rows start on a word: q8_0 pads
 * 34 * width/32 bytes up to a multiple of 4). */
export function kvRowWords(type: KvType, width: number): number {
  return Math.ceil(kvHeadBytes(type, width) / 4);
}

/** One sequence's key/value rows for one attention call: slots 0..len-1 are attended. */
export interface AttnSpan {
  /** [capacity, kvRowWords(type, kvHeads*headDim)] words: f32 values, or the bytes of f16 / q8_0 rows */
  k: Float32Array;
  v: Float32Array;
  len: number;
  /** element type of k and v (absent: f32); head h of a row starts at byte h * kvHeadBytes(type, headDim) */
  type?: KvType;
}

/**
 * One sequence's share of a batch for a recurrent (Gated DeltaNet) layer: its rows, in position
 * order, and its state for that layer, which the op reads and updates in place.
 */
export interface RecurrentSpan {
  /** batch rows of this sequence, in increasing position order */
  rows: Int32Array;
  /** [K-1, C]: the last K-1 inputs of the causal conv (zeros at sequence start) */
  conv: Float32Array;
  /** [nv, dk, dv]: one delta-rule state matrix S_j per value head, S_j[i][c] (row-major) */
  state: Float32Array;
}

/** Shape of a Gated DeltaNet layer (HF linear_* fields). */
export interface DeltaNetDims {
  nk: number; // key heads (q and k)
  nv: number; // value heads (states), a multiple of nk
  dk: number; // key head size
  dv: number; // value head size
  /** value head j reads key head j % nk (llama.cpp's "tiled" GGUF order) rather than j / (nv/nk)
   * (transformers' repeat_interleave, "grouped"); see formats' head-order note */
  tiled: boolean;
}

/** Rotary frequencies other than theta^(-2j/nRot): pair j turns by inv[j] radians per position
 * (nRot/2 of them), and its cos and sin are multiplied by mscale. */
export interface RopeFreqs {
  readonly inv: Float64Array;
  readonly mscale: number;
}

const plainFreqs = new Map<string, RopeFreqs>(); // by theta and nRot: a model has one or two

/** The frequencies rope() applies for `theta` and nRot rotated dims. */
export function ropeFreqs(theta: number | RopeFreqs, nRot: number): RopeFreqs {
  if (typeof theta !== 'number') {
    if (theta.inv.length !== nRot / 2) throw new Error(`rope: ${theta.inv.length} frequencies for ${nRot} rotated dims`);
    return theta;
  }
  const k = `${theta}/${nRot}`;
  let f = plainFreqs.get(k);
  if (!f) plainFreqs.set(k, (f = { inv: Float64Array.from({ length: nRot / 2 }, (_, j) => Math.pow(theta, (-2 * j) / nRot)), mscale: 1 }));
  return f;
}

/** ropeMulti()'s section map must name a position column for each of the nRot/2 pairs. */
export function checkSect(sect: Uint8Array, S: number, half: number): void {
  if (sect.length !== half) throw new Error(`ropeMulti: a section map of ${sect.length} pairs for ${half} rotated pairs`);
  for (const c of sect) if (c >= S) throw new Error(`ropeMulti: section column ${c} of ${S} positions per row`);
}

/** place()'s key for the tensors outside the layers: the embedding, the final norm, the output head. */
export const HEAD = -1;

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
  /**
   * Expert products (ggml's mul_mat_id), several weights of one input at once as matmulMany.
   * ws[i] is a stack of E expert matrices [E, N_i, K] (one Weight, the E matrices back to back, as
   * GGUF's `ffn_*_exps`); ids [T*k] the experts chosen for each token (slot j of token t:
   * ids[t*k + j], each in 0..E-1). For every slot s = t*k + j, with e = ids[s]:
   *   outs[i][s, n] = sum_c xrow(s)[c] * ws[i][e][n, c]      outs[i] [T*k, N_i]
   * where xrow(s) is x[t, :] (x [T, K]: the k slots of a token share its input, e.g. the gate and
   * up projections) or, with `perSlot`, x[s, :] (x [T*k, K]: e.g. the down projection).
   * A row's values are those of matmul on that expert's matrix, whatever T, k and the other slots
   * (batch-invariant); only the chosen experts' matrices need be read.
   */
  matmulExperts(outs: Float32Array[], x: Float32Array, ws: Weight[], ids: Int32Array, T: number, k: number, perSlot?: boolean): void;
  /** x[t,:] += bias; x [T, N] */
  addBias(x: Float32Array, bias: Float32Array, T: number): void;
  /** out[r,:] = x[r,:] / rms(x[r,:]) * w; x, out [R, D] (may alias) */
  rmsNorm(out: Float32Array, x: Float32Array, w: Float32Array, R: number, D: number, eps: number): void;
  /** NEOX-style rotary embedding in place: x [T, H*Dh]; the first `nRot` dims of each head (default
   * all) are rotated, dim j with j + nRot/2 at angle pos * theta^(-2j/nRot); the rest pass through.
   * `theta` may instead give each pair's frequency and a magnitude (YaRN: models/rope.ts); pass the
   * same object every call, so that a backend can keep tables keyed by it */
  rope(x: Float32Array, positions: Int32Array, T: number, H: number, Dh: number, theta: number | RopeFreqs, nRot?: number): void;
  /**
   * rope() with several positions per row (M-RoPE's t, h, w; the vision tower's y, x): pair i of
   * row t turns by pos[t*S + sect[i]] times pair i's frequency. pos [T, S]; sect [nRot/2], each < S.
   * With every column of a row equal it gives exactly what rope() gives.
   */
  ropeMulti(x: Float32Array, pos: Int32Array, S: number, sect: Uint8Array, T: number, H: number, Dh: number, theta: number | RopeFreqs, nRot?: number): void;
  /** out[t] = softmax(q[t] k^T * scale) v over spans[t] with grouped-query heads; q, out [T, Hq*Dh].
   * Keys and values are read as their span's type (every span of a call has the same one). */
  attention(out: Float32Array, q: Float32Array, spans: AttnSpan[], Hq: number, Hkv: number, Dh: number, scale: number): void;
  /** out[r,:] = (x[r,:] - mean) / sqrt(var + eps) * w + b (LayerNorm, biased variance); x, out [R, D] (may alias) */
  layerNorm(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array, R: number, D: number, eps: number): void;
  /** out = gelu(x) in its tanh form, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), elementwise over n (may alias) */
  gelu(out: Float32Array, x: Float32Array, n: number): void;
  /** out = silu(gate) * up, elementwise over n */
  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;
  /** out = x * sigmoid(gate), elementwise over n (may alias) */
  sigmoidMul(out: Float32Array, gate: Float32Array, x: Float32Array, n: number): void;
  /**
   * Causal depthwise conv then SiLU, per sequence: for row t of a sequence,
   * out[t,c] = silu(sum_i w[c,i] * xpad[t+i, c]), xpad = [span.conv; that sequence's x rows], i < K
   * (w[c,K-1] weighs the current row). Afterwards span.conv holds the last K-1 inputs.
   * x, out [T, C] (distinct); w [C, K].
   */
  ssmConv(out: Float32Array, x: Float32Array, w: Float32Array, spans: RecurrentSpan[], C: number, K: number): void;
  /**
   * The gated delta rule over each sequence's rows, in order, updating span.state. Row t of
   * qkv [T, 2*nk*dk + nv*dv] is [q | k | v]; q and k are L2-normalised per head
   * (x / sqrt(sum x^2 + eps)) and q scaled by 1/sqrt(dk). Per value head j, with key head
   * k(j) (dims.tiled): beta = sigmoid(b[t,j]), g = A[j] * softplus(a[t,j] + dtBias[j]) (A < 0),
   * S = exp(g) S; S += k (beta (v - S^T k))^T; out[t, j] = S^T q.  out [T, nv*dv]; a, b [T, nv].
   * Any evaluation order with the same result up to rounding is allowed (chunked prefill).
   */
  deltaNet(out: Float32Array, qkv: Float32Array, a: Float32Array, b: Float32Array, A: Float32Array, dtBias: Float32Array, spans: RecurrentSpan[], dims: DeltaNetDims, eps: number): void;
  /** out = a + b, elementwise over n (may alias) */
  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  /** dst[dstOff .. dstOff+n) = src[srcOff .. srcOff+n) */
  copy(dst: Float32Array, dstOff: number, src: Float32Array, srcOff: number, n: number): void;
  /**
   * Write n rows of `width` f32 values (src rows srcRow..) into KV-cache storage dst from row dstRow
   * on, stored as `type` (rows of kvRowWords(type, width) words): f32 copied; f16 rounded to
   * nearest even (GGML_FP32_TO_FP16); q8_0 as ggml's quantize_row_q8_0_ref, block by block.
   */
  storeRows(dst: Float32Array, dstRow: number, src: Float32Array, srcRow: number, n: number, width: number, type: KvType): void;

  // Backward ops (LoRA training, src/train/): gradients through the frozen base weights.
  /** dx[t,k] = sum_n dy[t,n] * w[n,k] (added to dx with `accumulate`): matmul's input gradient; dx [T, K], dy [T, N], w [N, K] in any stored type */
  matmulT(dx: Float32Array, dy: Float32Array, w: Weight, T: number, accumulate?: boolean): void;
  /** out[n,k] = sum_t a[t,n] * b[t,k]: a weight gradient; out [N, K], a [T, N], b [T, K] */
  matmulTN(out: Float32Array, a: Float32Array, b: Float32Array, T: number, N: number, K: number): void;
  /** dx = the gradient w.r.t. x of rmsNorm(x, w) given dy (w frozen); dx, dy, x [R, D]; dx may alias dy */
  rmsNormBack(dx: Float32Array, dy: Float32Array, x: Float32Array, w: Float32Array, R: number, D: number, eps: number): void;
  /** The gradients of out = silu(gate) * up given dout; all [n]; dgate, dup may alias gate, up */
  siluMulBack(dgate: Float32Array, dup: Float32Array, dout: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;
  /**
   * Causal attention's backward over consecutive sequences (rows 0..lens[0]-1 the first, and so on;
   * row i of a sequence attends to its rows 0..i), the forward being
   * out = softmax(q k^T * scale) v with grouped-query heads. q, out, dout, dq [T, Hq*Dh];
   * k, v, dk, dv [T, Hkv*Dh] (f32). Writes dq, dk, dv.
   */
  attentionBack(
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
  ): void;

  // Optional memory management, for backends with their own heap (WebAssembly memory):
  /** Bracket one forward pass: buffers allocated inside it and not freed are released when the
   * next pass begins (so a pass's logits stay valid until then). */
  beginPass?(): void;
  endPass?(): void;
  /**
   * Placement, for backends that spread a model over several memories (WebAssembly: 4 GiB each):
   * what is allocated next (weights, caches, activations) belongs to layer `layer` (HEAD: the
   * tensors outside the layers). While loading, `bytes` is the layer's weight size: a layer not
   * placed before goes where the last one went, or to a new memory when that would pass the
   * budget. Without `bytes` it only returns to the layer's memory (the forward pass, each layer;
   * the KV cache). Ops accept arrays from any memory (they copy across), so this is a hint for
   * speed and room, never needed for correctness.
   */
  place?(layer: number, bytes?: number): void;
  /** Release a buffer from alloc() early; it must not be used afterwards. */
  free?(a: Float32Array): void;
  /**
   * Quantise n values of `src` (stored as `srcType`: F32, F16 or BF16) into `dst`'s bytes from
   * byte `dstOffset`, in dst.dtype, rounding as ggml's reference quantisers do (the loader's
   * --quantize). false: no fast path for these types here; the loader uses src/formats/quant.
   */
  quantizeInto?(dst: Weight, dstOffset: number, src: Uint8Array, srcType: DType, n: number): boolean;
  /** Release worker threads and memory; the backend is unusable afterwards. */
  dispose?(): void;
}
