// The pieces every Qwen vision tower shares (llama.cpp's clip_graph_qwen2vl / clip_graph_qwen3vl,
// VISION.md section 5): patch embedding, the order of tokens, a pre-norm block with 2-D RoPE
// attention, and the 2x2 merger. The tower files (qwen2_5_vl.ts, qwen3_5.ts) put them together.
// Every op runs on the Backend (matmuls on the stored weights, threaded and SIMD on the WASM
// backend); buffers are freed as soon as they are dead, since a tower runs outside the
// language model's passes.
import type { AttnSpan, Backend, RopeFreqs } from '../backend/backend.js';
import type { TraceHook } from '../models/model.js';
import { visionRope } from '../models/rope.js';
import type { VisionConfig } from './config.js';
import type { VisionLayer, VisionWeights } from './mmproj.js';
import type { ImageEmbedding, Pixels, RgbImage, VisionEncoder } from './types.js';
import { preprocess, smartSize } from './image/preprocess.js';

/**
 * Where each token of the tower comes from: the patches in 2x2 merge-block order (blocks
 * row-major, inside a block (dy, dx) row-major), so that the merger's 4 tokens are consecutive;
 * with windows (Qwen2.5-VL) the blocks are further grouped window by window, so that each window
 * is a contiguous span of keys. `block[j]` is the raster index of merged token j.
 */
export interface TokenOrder {
  ph: number; // patches down
  pw: number; // patches across
  /** per token (y, x) in patches: the vision RoPE's two positions, [N, 2] */
  pos: Int32Array;
  /** raster index (row * (pw/2) + col) of each merged token, in tower order */
  block: Int32Array;
  /** windows as runs of tokens: [start, length] pairs (one run of all tokens when there are none) */
  windows: Int32Array;
}

function tokenOrder(c: VisionConfig, width: number, height: number): TokenOrder {
  const P = c.patch_size,
    ph = height / P,
    pw = width / P,
    mh = ph / 2,
    mw = pw / 2;
  // windows of window_size pixels = gw x gw merged tokens, tiled row-major from the top-left (edge windows smaller)
  const gw = c.window_size ? c.window_size / P / 2 : Math.max(mh, mw);
  const nwx = Math.ceil(mw / gw),
    nwy = Math.ceil(mh / gw);
  const block = new Int32Array(mh * mw),
    windows: number[] = [];
  let j = 0;
  for (let wy = 0; wy < nwy; wy++)
    for (let wx = 0; wx < nwx; wx++) {
      const start = j;
      for (let my = wy * gw; my < Math.min(mh, (wy + 1) * gw); my++) for (let mx = wx * gw; mx < Math.min(mw, (wx + 1) * gw); mx++) block[j++] = my * mw + mx;
      windows.push(4 * start, 4 * (j - start));
    }
  const pos = new Int32Array(8 * mh * mw);
  block.forEach((b, i) => {
    const my = Math.floor(b / mw),
      mx = b % mw;
    for (let k = 0; k < 4; k++) {
      pos[2 * (4 * i + k)] = 2 * my + (k >> 1); // y
      pos[2 * (4 * i + k) + 1] = 2 * mx + (k & 1); // x
    }
  });
  return { ph, pw, pos, block, windows: Int32Array.from(windows) };
}

/** The pixels of each token's patch, as the patch kernel's (c, ky, kx) values: [N, 3*P*P]. */
function patches(be: Backend, px: Pixels, order: TokenOrder, P: number): Float32Array {
  const N = order.pos.length / 2,
    K = 3 * P * P,
    { width: W, height: H, data } = px;
  const out = be.alloc(N * K);
  for (let t = 0; t < N; t++) {
    const y0 = order.pos[2 * t]! * P,
      x0 = order.pos[2 * t + 1]! * P;
    for (let ch = 0; ch < 3; ch++)
      for (let ky = 0; ky < P; ky++) {
        const src = ch * H * W + (y0 + ky) * W + x0;
        out.set(data.subarray(src, src + P), t * K + (ch * P + ky) * P);
      }
  }
  return out;
}

/** Patch embedding: a product with the (two-frame summed) kernel [+ bias]: [N, n]. */
export function patchEmbed(be: Backend, px: Pixels, order: TokenOrder, W: VisionWeights): Float32Array {
  const c = W.config,
    N = order.pos.length / 2,
    n = c.hidden_size;
  const p = patches(be, px, order, c.patch_size); // [N, 3*P*P]
  const x = be.alloc(N * n); // [N, n]
  be.matmul(x, p, W.patch, N);
  be.free?.(p);
  if (W.patchBias) be.addBias(x, W.patchBias, N);
  return x;
}

/**
 * Qwen3-VL's learned positions: the G x G grid resized to the patch grid (ph, pw) by bilinear
 * interpolation with aligned corners (source coordinate i * (G-1) / (out-1): ggml_interpolate's
 * align-corners mode, HF's linspace(0, G-1, out)), added to each token at its (y, x).
 */
export function addPositionGrid(x: Float32Array, pe: Float32Array, order: TokenOrder, n: number): void {
  const G = Math.round(Math.sqrt(pe.length / n));
  const coord = (i: number, out: number) => (out > 1 && G > 1 ? (i * (G - 1)) / (out - 1) : 0);
  const N = order.pos.length / 2;
  for (let t = 0; t < N; t++) {
    const sy = coord(order.pos[2 * t]!, order.ph),
      sx = coord(order.pos[2 * t + 1]!, order.pw);
    const y0 = Math.min(G - 1, Math.floor(sy)),
      x0 = Math.min(G - 1, Math.floor(sx));
    const y1 = Math.min(G - 1, y0 + 1),
      x1 = Math.min(G - 1, x0 + 1),
      dy = sy - y0,
      dx = sx - x0;
    const w00 = (1 - dy) * (1 - dx),
      w01 = (1 - dy) * dx,
      w10 = dy * (1 - dx),
      w11 = dy * dx;
    const r00 = (y0 * G + x0) * n,
      r01 = (y0 * G + x1) * n,
      r10 = (y1 * G + x0) * n,
      r11 = (y1 * G + x1) * n;
    for (let i = 0; i < n; i++) x[t * n + i]! += pe[r00 + i]! * w00 + pe[r01 + i]! * w01 + pe[r10 + i]! * w10 + pe[r11 + i]! * w11;
  }
}

/** RMSNorm (weight only) or LayerNorm (weight and bias) over rows of D. */
function norm(be: Backend, out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array | undefined, R: number, D: number, eps: number): void {
  if (b) be.layerNorm(out, x, w, b, R, D, eps);
  else be.rmsNorm(out, x, w, R, D, eps);
}

/** The vision RoPE's section map and frequencies, one object per head size (ropeMulti keys tables by it). */
const ropes = new Map<number, { sect: Uint8Array; freqs: RopeFreqs }>();
function rope2d(d: number) {
  let r = ropes.get(d);
  if (!r) ropes.set(d, (r = visionRope(d)));
  return r;
}

/**
 * One pre-norm block: x + attn_out(attention(norm1(x))), then + ffn(norm2(.)). Attention is not
 * causal: every token sees its window (`windowed`) or all tokens. x [N, n] is freed; returns the
 * block's output [N, n].
 */
export function visionBlock(be: Backend, x: Float32Array, L: VisionLayer, c: VisionConfig, order: TokenOrder, windowed: boolean, il: number, cb: TraceHook): Float32Array {
  const N = order.pos.length / 2,
    n = c.hidden_size,
    H = c.num_heads,
    d = n / H,
    eps = c.layer_norm_eps;
  const h = be.alloc(N * n); // [N, n]
  norm(be, h, x, L.norm1, L.norm1Bias, N, n, eps);
  cb('ln1', il, h, [N, n]);
  const q = be.alloc(N * n),
    k = be.alloc(N * n),
    v = be.alloc(N * n); // [N, H*d] each
  be.matmulMany([q, k, v], h, [L.wq, L.wk, L.wv], N);
  be.addBias(q, L.bq, N);
  be.addBias(k, L.bk, N);
  be.addBias(v, L.bv, N);
  cb('Qcur', il, q, [N, n]);
  const { sect, freqs } = rope2d(d);
  be.ropeMulti(q, order.pos, 2, sect, N, H, d, freqs);
  be.ropeMulti(k, order.pos, 2, sect, N, H, d, freqs);
  cb('Qcur_rope', il, q, [N, n]);
  cb('Kcur_rope', il, k, [N, n]);
  // each token's keys: its window's rows (a contiguous run in tower order), or all of them
  const spans: AttnSpan[] = new Array(N);
  const runs = windowed ? order.windows : Int32Array.of(0, N);
  for (let r = 0; r < runs.length; r += 2) {
    const s0 = runs[r]!,
      len = runs[r + 1]!;
    const span: AttnSpan = { k: k.subarray(s0 * n), v: v.subarray(s0 * n), len };
    for (let t = s0; t < s0 + len; t++) spans[t] = span;
  }
  const attn = be.alloc(N * n); // [N, n]
  be.attention(attn, q, spans, H, H, d, 1 / Math.sqrt(d));
  cb('kqv_out', il, attn, [N, n]);
  const o = be.alloc(N * n);
  be.matmul(o, attn, L.wo, N);
  be.addBias(o, L.bo, N);
  const ffnInp = be.alloc(N * n); // [N, n]: residual
  be.add(ffnInp, x, o, N * n);
  cb('ffn_inp', il, ffnInp, [N, n]);
  for (const a of [x, q, k, v, attn, o]) be.free?.(a);
  norm(be, h, ffnInp, L.norm2, L.norm2Bias, N, n, eps);
  const f = ffn(be, h, L, c, N);
  be.free?.(h);
  cb('ffn_out', il, f, [N, n]);
  const out = be.alloc(N * n);
  be.add(out, ffnInp, f, N * n);
  be.free?.(ffnInp);
  be.free?.(f);
  cb('layer_out', il, out, [N, n]);
  return out;
}

/** The block's MLP on h [N, n] -> [N, n] (new buffer): SwiGLU (2.5), GELU-tanh (3.x) or quick GELU (Qwen2-VL), with biases. */
function ffn(be: Backend, h: Float32Array, L: VisionLayer, c: VisionConfig, N: number): Float32Array {
  const n = c.hidden_size,
    F = c.intermediate_size;
  const up = be.alloc(N * F); // [N, ff]
  if (L.gate && L.gateBias) {
    const gate = be.alloc(N * F);
    be.matmulMany([gate, up], h, [L.gate, L.up], N);
    be.addBias(gate, L.gateBias, N);
    be.addBias(up, L.upBias, N);
    be.siluMul(up, gate, up, N * F);
    be.free?.(gate);
  } else {
    be.matmul(up, h, L.up, N);
    be.addBias(up, L.upBias, N);
    if (c.hidden_act === 'quick_gelu') {
      // x * sigmoid(1.702 x) (HF's QuickGELU)
      const g = be.alloc(N * F);
      for (let i = 0; i < N * F; i++) g[i] = 1.702 * up[i]!;
      be.sigmoidMul(up, g, up, N * F);
      be.free?.(g);
    } else be.gelu(up, up, N * F);
  }
  const down = be.alloc(N * n);
  be.matmul(down, up, L.down, N);
  be.addBias(down, L.downBias, N);
  be.free?.(up);
  return down;
}

/**
 * The merger: norm each token, join the 4 tokens of each 2x2 block ([4n]: (0,0), (0,1), (1,0),
 * (1,1)), then mm.2(gelu(mm.0(.))) with biases. llama.cpp uses the tanh GELU here, HF's
 * Qwen2/2.5-VL merger the exact (erf) one; the difference is below ~1e-3 of a value (see
 * VISION.md, Verification) and qwen.ts follows llama.cpp. x [N, n] is freed; returns [N/4, proj].
 */
function merger(be: Backend, x: Float32Array, W: VisionWeights, N: number, cb: TraceHook): Float32Array {
  const c = W.config,
    n = c.hidden_size,
    M = N / 4,
    proj = c.out_hidden_size;
  norm(be, x, x, W.postNorm, W.postNormBias, N, n, c.layer_norm_eps);
  cb('post_ln', -1, x, [N, n]);
  const m = be.alloc(M * 4 * n); // [M, 4n]
  be.matmul(m, x, W.mm0, M); // x [N, n] read as [M, 4n]: a block's tokens are consecutive
  be.free?.(x);
  be.addBias(m, W.mm0Bias, M);
  be.gelu(m, m, M * 4 * n);
  const out = be.alloc(M * proj); // [M, proj]
  be.matmul(out, m, W.mm2, M);
  be.free?.(m);
  be.addBias(out, W.mm2Bias, M);
  return out;
}

/** The tower's output rows back in raster order of merged tokens (they are in tower order): a plain Float32Array [M, proj]. */
function rasterRows(rows: Float32Array, order: TokenOrder, proj: number): Float32Array {
  const out = new Float32Array(rows.length);
  order.block.forEach((b, j) => out.set(rows.subarray(j * proj, (j + 1) * proj), b * proj));
  return out;
}

/** Checks pixels against the tower's patch grid and gives the order of its tokens. */
export function checkPixels(c: VisionConfig, px: Pixels): TokenOrder {
  const f = c.patch_size * c.spatial_merge_size;
  if (px.width % f !== 0 || px.height % f !== 0 || px.width <= 0 || px.height <= 0)
    throw new RangeError(`vision tower: pixels of ${px.width}x${px.height}, not a multiple of patch_size * spatial_merge_size = ${f}`);
  if (px.data.length !== 3 * px.width * px.height) throw new RangeError(`vision tower: ${px.data.length} pixel values for 3 x ${px.width} x ${px.height}`);
  return tokenOrder(c, px.width, px.height);
}

/**
 * What both towers share around their forward pass (encodePixels, in the tower files): the
 * grid, the preprocessing, and an image's rows as an ImageEmbedding.
 */
export abstract class Tower implements VisionEncoder {
  /** called with every named intermediate (llama.cpp's names: ln1, Qcur_rope, kqv_out, ffn_inp, layer_out, ...) */
  trace?: TraceHook;
  constructor(
    readonly backend: Backend,
    readonly weights: VisionWeights,
  ) {}
  get config(): VisionConfig {
    return this.weights.config;
  }
  get kind(): string {
    return this.weights.config.model_type;
  }
  get projectionDim(): number {
    return this.weights.config.out_hidden_size;
  }
  grid(width: number, height: number): { nx: number; ny: number } {
    const c = this.config,
      f = c.patch_size * c.spatial_merge_size,
      t = smartSize(width, height, f, c.min_pixels, c.max_pixels);
    return { nx: t.width / f, ny: t.height / f };
  }
  /** smart size, aspect-preserving bicubic resize + black padding, normalisation (mtmd's dyn_size preprocessing) */
  preprocess(img: RgbImage): Pixels {
    const c = this.config;
    return preprocess(img, { patch: c.patch_size, merge: c.spatial_merge_size, mean: c.image_mean, std: c.image_std, minPixels: c.min_pixels, maxPixels: c.max_pixels });
  }
  encode(img: RgbImage, hash: string): ImageEmbedding {
    const px = this.preprocess(img),
      f = this.config.patch_size * this.config.spatial_merge_size;
    return { rows: this.encodePixels(px), nx: px.width / f, ny: px.height / f, dim: this.projectionDim, hash };
  }
  /** The tower on preprocessed pixels: [ny * nx, projectionDim] rows, raster order of merged tokens. */
  abstract encodePixels(px: Pixels): Float32Array;
  /** The blocks' output x [N, n] (freed) through the merger, back in raster order: [ny * nx, projectionDim]. */
  protected mergeRows(x: Float32Array, order: TokenOrder): Float32Array {
    const N = order.pos.length / 2,
      proj = this.projectionDim;
    const rows = merger(this.backend, x, this.weights, N, this.cb); // [N/4, proj], tower order
    this.cb('embeddings', -1, rows, [N / 4, proj]);
    const out = rasterRows(rows, order, proj);
    this.backend.free?.(rows);
    return out;
  }
  protected cb: TraceHook = (name, il, t, shape) => this.trace?.(name, il, t, shape);
}
