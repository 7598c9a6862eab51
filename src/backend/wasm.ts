// The fast backend: AssemblyScript kernels compiled to WebAssembly SIMD (relaxed SIMD where the
// engine has it), run by a pool of worker threads on shared WebAssembly memories. Weights are
// read by the loader straight into that memory (no copy in the JS heap); activations are views
// on it. See src/kernels/ for the kernels and the accuracy notes of each.
//
// A model larger than one 4 GiB memory is spread over several (shard_router.ts: placement by
// layer, each op run in the memory of its weight, operands copied across); a model that fits one
// runs in one memory with no copies. memory64 is not an option: AssemblyScript cannot target it
// and Node 20 lacks it.
import { tensorBytes, type DType } from '../formats/dtype.js';
import { checkSect, kvRowWords, ropeFreqs, type AttnSpan, type Backend, type DeltaNetDims, type KvType, type RecurrentSpan, type RopeFreqs, type Weight } from './backend.js';
import { quantize } from '../formats/quant/index.js';
import { matmulExpertsGrouped } from './experts.js';
import { align, type Shard } from './shard.js';
import { ShardRouter } from './shard_router.js';
import { platform } from './platform.js';
import { attentionBackRef, rmsNormBackRef } from './reference_grad.js';
import {
  K_ADD,
  K_ATTN,
  K_CONV,
  K_DELTA,
  K_MM_KQ,
  K_MM_Q8,
  K_MM_ROWS,
  K_ATTN_BACK,
  K_MATMUL_T,
  K_MV_BF16,
  K_MV_F16,
  K_SIGMOID,
  K_SILU,
  K_SILU_BACK,
  K_LAYER_NORM,
  K_GELU,
  relaxedModule,
  simdModule,
} from './wasm_module.js';

export { SHARD_BYTES } from './shard_router.js';

// the ids of src/kernels/dequant.ts
const DT_ID: Record<DType, number> = { F32: 0, F16: 1, BF16: 2, Q8_0: 3, Q4_0: 4, Q4_K: 5, Q6_K: 6, Q4_1: 7, Q5_0: 8, Q5_1: 9, Q2_K: 10, Q3_K: 11, Q5_K: 12, IQ4_NL: 13, IQ4_XS: 14 };
// the K-quants with int8 kernels (src/kernels/kq.ts); Q2_K still decodes to f32 (mm_rows)
const QUANT_IN = new Set<DType>(['F32', 'F16', 'BF16']);
const KQ_TYPES = new Set<DType>(['Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'IQ4_XS']);
// the legacy block types (and IQ4_NL, blocks of 32 too) on the int8 kernels (src/kernels/q8.ts),
// any mix in one call; Q4_1 and Q5_1 (a min per block) also need the activations' block sums
const Q8_TYPES = new Set<DType>(['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'IQ4_NL']);
const MIN_TYPES = new Set<DType>(['Q4_1', 'Q5_1']);

// deltaNet: a sequence with at least this many rows in a call runs the chunked form (src/kernels/deltanet_chunk.ts).
// At Qwen3.5-0.8B's heads (dk = dv = 128; bench/deltanet.ts --sweep) the chunked form is slower per
// row below ~4 rows and 1.1-1.5x faster from ~8; 16 leaves a margin. Both forms do ~3 dk dv
// multiply-adds per row and head: the chunked one wins by running them as tiled products.
export const DELTA_CHUNK_MIN = 16;

// F16 / BF16 products of up to this many rows run small16 (each weight read once, every row's sum
// that of the row alone); more run mm_rows: bench/smallbatch.ts, 0.5B shapes, Node 20, 1 thread:
// BF16 2 rows 0.5-0.65x mm_rows's time, 3 0.6-0.8x, 5 0.75-1.0x, 8 about even, 16 1.2-1.4x.
export const SMALL_ROWS = 8;
// F16: its conversion in registers (shifts, shuffles, a multiply) is redone per token group, while
// mm_rows decodes a row once: the small path wins at 2 rows (0.65-0.75x), is even at 3, loses from 5
export const SMALL_F16_ROWS = 3;
// legacy block weights (Q8_0, Q4_0, ...): up to this many rows on small_q8.ts, more on the tiles
// (int16 tile, Node 20: 2-3 rows 0.3-0.55x the tile's time, 5 0.6-0.85x, 8 0.6-1.25x, 16 up to 1.6x)
export const SMALL_Q8_ROWS = 8;
// K-quants (Q3_K..Q6_K, IQ4_XS): up to this many rows on the one-token kernel, row group by row group
// (small_kq in kq.ts); Node 20, 1 thread: 2-3 rows 0.4-0.75x the tile's time, 5 0.6-0.9x, 8 0.85-1.25x
export const SMALL_KQ_ROWS = 6;

let u8DotExact: boolean | undefined; // see Shard.u8DotExact

export interface WasmBackendOptions {
  /** threads including the main one; default: the number of cores */
  threads?: number;
  /** use relaxed SIMD when available (default true) */
  relaxed?: boolean;
  /** how long idle workers (and the main thread waiting for them) spin before sleeping, ms
   * (default 2: a sleeping hand-off costs 10-60 µs, and a token makes a few hundred) */
  spinMs?: number;
  /** use the vpdpbusd tile for many-token Q8_0 products where the engine computes it exactly
   * (default true; see u8DotExact) */
  u8dot?: boolean;
  /** Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS products on int8 (Q8_K) activations, src/kernels/kq.ts (default true);
   * false: rows decoded to f32 (mm_rows), the way before, kept as the tests' and bench's reference */
  kquant?: boolean;
  /** Q4_1, Q5_0 and Q5_1 products on int8 (Q8_0 / Q8_1-like) activations, src/kernels/q8.ts
   * (default true); false: rows decoded to f32 (mm_rows), kept as the tests' and bench's reference */
  legacyInt8?: boolean;
  /** products of a few rows on the small-batch kernels (default true: BF16 up to SMALL_ROWS, F16 SMALL_F16_ROWS,
   * legacy blocks up to SMALL_Q8_ROWS, K-quants up to SMALL_KQ_ROWS); false: mm_rows / the tiles,
   * the way before (bench, tests) */
  smallBatch?: boolean;
  /** fill every alloc() with NaN (tests: shows that no op reads a buffer before writing it) */
  poison?: boolean;
  /** scale of the least work worth a thread (default 1; tests use tiny values to split tiny ops) */
  grain?: number;
  /** weights one memory takes before a new layer starts another (default SHARD_BYTES; tests
   * use tiny values to spread tiny models over several memories) */
  shardBytes?: number;
  /** bytes one memory may grow to (default and most 4 GiB; tests use small values to make caches
   * spill into other memories) */
  memoryLimit?: number;
}

// KV-cache row types (src/kernels/kv.ts)
const KVT: Record<KvType, number> = { f32: 0, f16: 1, q8_0: 2 };

// quant_q8 layouts (src/kernels/q8.ts)
const Q8_I16 = 0,
  Q8_SIGN = 1,
  Q8_U8 = 2,
  Q8_SMALL = 3;

export class WasmBackend extends ShardRouter implements Backend {
  readonly name: string;
  readonly threads: number;
  readonly relaxed: boolean;
  /** many-token Q8_0 products run on vpdpbusd (src/kernels/q8_u8.ts) */
  readonly u8dot: boolean;
  /** K-quant products run on the int8 kernels (kq.ts) */
  readonly kquant: boolean;
  /** Q4_1, Q5_0, Q5_1 products run on the int8 kernels (q8.ts) */
  readonly legacyInt8: boolean;
  /** most rows of a product on the one-token and small-batch kernels (1: mm_rows / the tiles for
   * every product of more rows, the way before; bench/speculative.ts changes it) */
  smallRows: number;
  private f16Checked = new WeakMap<Uint8Array, boolean>();
  private readonly grain: number;
  /** deltaNet: rows of one sequence from which it runs the chunked form (benchmarks change it) */
  deltaChunkMin = DELTA_CHUNK_MIN;

  constructor(opts: WasmBackendOptions = {}) {
    const threads = Math.max(1, Math.floor(opts.threads ?? platform().cores()));
    const rm = opts.relaxed === false ? null : relaxedModule();
    super(rm ?? simdModule(), { threads, spinMs: opts.spinMs ?? 2, poison: opts.poison ?? false, shardBytes: opts.shardBytes, memoryLimit: opts.memoryLimit });
    this.threads = threads;
    this.grain = opts.grain ?? 1;
    this.relaxed = rm !== null;
    this.u8dot = this.relaxed && opts.u8dot !== false && (u8DotExact ??= this.cur.u8DotExact()); // the engine's, once per process
    this.kquant = opts.kquant !== false;
    this.legacyInt8 = opts.legacyInt8 !== false;
    this.smallRows = opts.smallBatch === false ? 1 : SMALL_ROWS;
    this.name = `wasm-${this.relaxed ? 'relaxed-simd' : 'simd'}${this.u8dot ? '-u8dot' : ''}${this.kquant ? '' : '-f32kquant'}${this.legacyInt8 ? '' : '-f32legacy'}${this.smallRows > 1 ? '' : '-nosmall'}-x${this.threads}`;
  }

  private parts(work: number, grain: number): number {
    return Math.max(1, Math.min(this.threads, Math.floor(work / Math.max(1e-9, grain * this.grain))));
  }

  // ---- ops ----

  embed(out: Float32Array, table: Weight, tokens: Int32Array): void {
    const D = table.shape[1]!,
      s = this.wshard(table);
    try {
      s.ex.embed_rows(DT_ID[table.dtype], this.own(table).bytes.byteOffset, s.i32('tokens', tokens), tokens.length, D, this.at(s, out, true));
    } finally {
      this.unstage();
    }
  }

  matmul(out: Float32Array, x: Float32Array, w: Weight, T: number): void {
    this.matmulMany([out], x, [w], T);
  }

  /**
   * Several products of one x (e.g. the q/k/v projections): legacy block weights (any mix of
   * Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) share one activation quantisation and one dispatch, K-quant
   * weights (any mix of Q4_K, Q5_K, Q6_K) another, F16
   * weights for up to SMALL_ROWS tokens one prescale and one dispatch, BF16 weights one dispatch. Every kernel sums a (token, row) the
   * same way whatever T is (see src/kernels/q8.ts, kq.ts and float.ts), so a request's logits do
   * not depend on the batch it shares.
   */
  matmulMany(outs: Float32Array[], x: Float32Array, ws: Weight[], T: number): void {
    this.products(outs, x, ws, T, 0);
  }

  /**
   * One token, one input row per group of matrices: outs[i] [1, N_i] = x row floor(i / group) times
   * ws[i]^T (x [ws.length / group, K]). The int8 kinds run as one dispatch, every row quantised
   * once (a decode step's k expert down projections, each on its slot's row: one dispatch instead
   * of k); the bits are each product's alone.
   */
  matmulRows(outs: Float32Array[], x: Float32Array, ws: Weight[], group = 1): void {
    if (!(group >= 1 && ws.length % group === 0)) throw new RangeError(`matmulRows: ${ws.length} weights in groups of ${group}`);
    this.products(outs, x, ws, 1, group);
  }

  /**
   * Many tokens, each matrix on its own rows of x [R, K]: outs[i] [seg[2i+1], N_i] = x rows
   * seg[2i] .. seg[2i] + seg[2i+1] times ws[i]^T. The int8 kinds run as one dispatch on one
   * quantisation of x (a prefill's expert products, every expert on its tokens); the bits are
   * each product's alone.
   */
  matmulSegments(outs: Float32Array[], x: Float32Array, ws: Weight[], seg: Int32Array, R: number): void {
    if (seg.length < 2 * ws.length) throw new RangeError(`matmulSegments: ${seg.length / 2} segments for ${ws.length} weights`);
    for (let i = 0; i < ws.length; i++)
      if (!(seg[2 * i]! >= 0 && seg[2 * i + 1]! >= 0 && seg[2 * i]! + seg[2 * i + 1]! <= R)) throw new RangeError(`matmulSegments: segment ${i} (${seg[2 * i]}, ${seg[2 * i + 1]}) outside ${R} rows`);
    this.products(outs, x, ws, R, seg);
  }

  /** matmulMany (xsel 0), matmulRows (xsel = group > 0, T = 1), matmulSegments (xsel: segments, T = R). */
  private products(outs: Float32Array[], x: Float32Array, ws: Weight[], T: number, xsel: number | Int32Array): void {
    const K = ws[0]!.shape[1]!,
      s = this.wshard(ws[0]!);
    const all = (f: (w: Weight) => boolean) => ws.every((w) => w.shape[1] === K && f(w));
    const q8 = all((w) => Q8_TYPES.has(w.dtype) && (this.legacyInt8 || w.dtype === 'Q8_0' || w.dtype === 'Q4_0')); // mixed legacy types share one call
    // 16-bit float weights: one token, or a few (small16 in src/kernels/small.ts), converted in registers
    const f16 = !q8 && T <= Math.min(this.smallRows, SMALL_F16_ROWS) && all((w) => w.dtype === 'F16' && !this.hasF16Specials(w));
    const kq = this.kquant && all((w) => KQ_TYPES.has(w.dtype)); // mixed K-quant types share one call
    const bf16 = T <= this.smallRows && all((w) => w.dtype === 'BF16');
    const seg = typeof xsel === 'number' ? null : xsel,
      xgroup = typeof xsel === 'number' ? xsel : 0;
    if (seg) {
      if (!(q8 || kq) || T === 1 || ws.some((w) => this.wshard(w) !== s)) {
        ws.forEach((w, i) => {
          const r = seg[2 * i]!,
            n = seg[2 * i + 1]!;
          if (n > 0) this.products([outs[i]!], x.subarray(r * K, (r + n) * K), [w], n, 0);
        });
        return;
      }
    }
    const rowsOf = (i: number) => (xgroup > 0 ? x.subarray(Math.floor(i / xgroup) * K, (Math.floor(i / xgroup) + 1) * K) : x);
    if (ws.length > 1 && (!(q8 || f16 || kq || bf16) || ws.some((w) => this.wshard(w) !== s) || (xgroup > 0 && !(q8 || kq)))) {
      ws.forEach((w, i) => this.products([outs[i]!], rowsOf(i), [w], T, 0)); // one by one (also: weights in different memories)
      return;
    }
    if (xgroup > 0 && ws.length === 1) return this.products(outs, rowsOf(0), ws, T, 0);
    const R = xgroup > 0 ? ws.length / xgroup : T; // activation rows to quantise
    const work = ws.reduce((n, w, i) => n + w.shape[0]! * K * (seg ? seg[2 * i + 1]! : T), 0);
    const parts = this.parts(work, 1 << 16);
    try {
      const px = this.at(s, xgroup > 0 || seg ? x.subarray(0, R * K) : x);
      const sel = seg ? s.i32('mmseg', seg.subarray(0, 2 * ws.length)) : xgroup;
      if (q8) {
        // ggml's way for every batch size: int8 activations (the nibble formats become int8 as
        // loaded; Q4_1 / Q5_1 add min * the activation block's sum, ggml's Q8_1). One token: the
        // weights are read as stored (memory-bound); more: tiles of decoded rows (compute-bound),
        // on vpdpbusd where the engine has it exactly, else on int16 pmaddwd.
        // a few tokens (not segments): the one-token layout, on small_q8.ts (mode Q8_SMALL)
        const small = T > 1 && !seg && T <= Math.min(this.smallRows, SMALL_Q8_ROWS);
        const mode = T === 1 || small ? (this.relaxed ? Q8_SIGN : Q8_I16) : this.u8dot ? Q8_U8 : Q8_I16;
        const xq = s.scratchBlock('xq', 2 * R * K),
          xd = s.scratchBlock('xd', R * (K / 32) * 4);
        const xs = ws.some((w) => MIN_TYPES.has(w.dtype)) ? s.scratchBlock('xs8', R * (K / 32) * 4) : 0;
        s.ex.quant_q8(px, R, K, xq, xd, mode, xs);
        const sstride = align(s.ex.q8_scratch_bytes(K));
        const sc = T > 1 ? s.scratchBlock('q8tile', sstride * this.threads) : 0;
        let counter = 0; // several parts: rows handed out in chunks (mv_shared, tile_shared in q8.ts)
        if (parts > 1) {
          counter = s.scratchBlock('mvcounter', 4);
          new Int32Array(s.buf, counter, 1)[0] = 0;
        }
        this.run(s, K_MM_Q8, parts, [this.desc(s, outs, ws, true), ws.length, xq, xd, xs, T, K, sc, sstride, small ? Q8_SMALL : mode, counter, sel]);
      } else if (kq) {
        // ggml's way: Q8_K activations (per 256 one f32 scale, int8 values, sums of 16 and 32),
        // one canonical sum per (token, row) for every T (src/kernels/kq.ts). One token: the
        // weights read as stored; more: the int16 tile of decoded rows (kq_tile.ts).
        const nb = K / 256;
        const xq = s.scratchBlock('kxq', R * K),
          xd = s.scratchBlock('kxd', R * nb * 4),
          xb = s.scratchBlock('kxb', R * nb * 48);
        // a few tokens (not segments): no int16 copy, which tells mm_kq to run the one-token kernel per token (small_kq)
        const smallK = T > 1 && !seg && T <= Math.min(this.smallRows, SMALL_KQ_ROWS);
        const xw = T > 1 && !smallK ? s.scratchBlock('kxw', 2 * T * K) : 0;
        s.ex.quant_q8k(px, R, K, xq, xd, xb, xw);
        const sstride = align(s.ex.kq_scratch_bytes(K));
        const sc = T > 1 ? s.scratchBlock('kqtile', sstride * this.threads) : 0;
        let counter = 0; // several parts: rows handed out in chunks, as for Q8_0
        if (parts > 1) {
          counter = s.scratchBlock('mvcounter', 4);
          new Int32Array(s.buf, counter, 1)[0] = 0;
        }
        this.run(s, K_MM_KQ, parts, [this.desc(s, outs, ws, true), ws.length, xq, xd, xb, xw, T, K, sc, sstride, counter, sel]);
      } else if (f16) {
        const xs = s.scratchBlock('xs', T * K * 4);
        s.ex.scale_f32(xs, px, T * K, 2 ** 96); // see mv_f16
        this.run(s, K_MV_F16, parts, [this.desc(s, outs, ws), ws.length, xs, K, T]);
      } else if (bf16) {
        // a bf16 is the top half of an f32: converted in registers, no prescale (mv_bf16)
        this.run(s, K_MV_BF16, parts, [this.desc(s, outs, ws), ws.length, px, K, T]);
      } else {
        const w = ws[0]!,
          N = w.shape[0]!,
          pw = this.own(w).bytes.byteOffset;
        const stride = align(4 * K * 4);
        const sc = s.scratchBlock('rows', stride * this.threads);
        this.run(s, K_MM_ROWS, parts, [this.at(s, outs[0]!, true), pw, px, T, N, K, DT_ID[w.dtype], sc, stride]);
      }
    } finally {
      this.unstage();
    }
  }

  /** Grouped by expert onto matmulMany's kernels (src/backend/experts.ts). */
  matmulExperts(outs: Float32Array[], x: Float32Array, ws: Weight[], ids: Int32Array, T: number, k: number, perSlot = false): void {
    matmulExpertsGrouped(this, outs, x, ws, ids, T, k, perSlot, {
      rows: (o, xr, w, g) => this.matmulRows(o, xr, w, g),
      segments: (o, xr, w, seg, R) => this.matmulSegments(o, xr, w, seg, R),
    });
  }

  /** Per matrix (out, w, N) as i32, for the kernels that take several matrices; with `dt`, a
   * fourth: the dtype id (mm_kq, mm_q8_0). */
  private desc(s: Shard, outs: Float32Array[], ws: Weight[], dt = false): number {
    const n = dt ? 4 : 3,
      d = new Int32Array(ws.length * n);
    ws.forEach((w, i) => {
      d[n * i] = this.at(s, outs[i]!, true);
      d[n * i + 1] = this.own(w).bytes.byteOffset;
      d[n * i + 2] = w.shape[0]!;
      if (dt) d[n * i + 3] = DT_ID[w.dtype];
    });
    return s.i32('mmdesc', d);
  }

  quantizeInto(dst: Weight, dstOffset: number, src: Uint8Array, srcType: DType, n: number): boolean {
    if (!QUANT_IN.has(srcType) || (dst.dtype !== 'Q8_0' && dst.dtype !== 'Q4_0') || n % 32 !== 0) return false;
    const s = this.wshard(dst),
      d = this.own(dst).bytes;
    if (dstOffset + tensorBytes(dst.dtype, [n]) > d.length) throw new RangeError(`quantizeInto: ${n} values at byte ${dstOffset} pass the end of the weight`);
    const at = s.scratchBlock('qsrc', src.length),
      blk = s.scratchBlock('qblk', 128);
    new Uint8Array(s.buf, at, src.length).set(src);
    // non-zero: a block holds a NaN or infinity, whose rounding ggml leaves to its comparison order
    return s.ex.quant_weights(DT_ID[srcType], at, n, DT_ID[dst.dtype], d.byteOffset + dstOffset, blk) === 0;
  }

  private hasF16Specials(w: Weight): boolean {
    let r = this.f16Checked.get(w.bytes);
    if (r === undefined) {
      const o = this.own(w);
      this.f16Checked.set(w.bytes, (r = this.wshard(w).ex.f16_special(o.bytes.byteOffset, o.bytes.length / 2) !== 0));
    }
    return r;
  }

  addBias(x: Float32Array, bias: Float32Array, T: number): void {
    const s = this.home(bias);
    try {
      s.ex.add_bias(this.at(s, x, true), bias.byteOffset, T, bias.length);
    } finally {
      this.unstage();
    }
  }

  rmsNorm(out: Float32Array, x: Float32Array, w: Float32Array, R: number, D: number, eps: number): void {
    const s = this.home(w);
    try {
      s.ex.rms_norm(this.at(s, out, true), this.at(s, x), w.byteOffset, R, D, eps);
    } finally {
      this.unstage();
    }
  }

  rope(x: Float32Array, positions: Int32Array, T: number, H: number, Dh: number, theta: number | RopeFreqs, nRot = Dh): void {
    const s = this.home(x);
    // the angles' cos and sin are computed once for the q and k of every layer of a pass (per memory)
    const key = s.ropeKey,
      pos = positions.subarray(0, T);
    if (!(key && key.nRot === nRot && key.theta === theta && key.pos.length === T && key.pos.every((p, i) => p === pos[i]))) {
      const tab = s.scratchBlock('ropetab', T * nRot * 4); // grows only here, with a new key
      const f = ropeFreqs(theta, nRot);
      const inv = s.scratchBlock('ropeinv', f.inv.byteLength);
      new Float64Array(s.buf, inv, f.inv.length).set(f.inv);
      s.ex.rope_table(s.i32('pos', pos), T, nRot, inv, f.mscale, tab);
      s.ropeKey = { pos: Int32Array.from(pos), nRot, theta, tab };
    }
    s.ex.rope(x.byteOffset, T, H, Dh, nRot, s.ropeKey!.tab);
  }

  ropeMulti(x: Float32Array, pos: Int32Array, S: number, sect: Uint8Array, T: number, H: number, Dh: number, theta: number | RopeFreqs, nRot = Dh): void {
    const s = this.home(x),
      half = nRot / 2,
      f = ropeFreqs(theta, nRot);
    checkSect(sect, S, half);
    // the table is built once for the q and k of every layer of a pass (per memory), as rope()'s
    const key = s.mropeKey,
      at = pos.subarray(0, T * S);
    if (key && key.S === S && key.nRot === nRot && key.theta === theta && key.pos.length === at.length && key.sect.every((v, i) => v === sect[i]) && key.pos.every((v, i) => v === at[i]))
      return s.ex.rope(x.byteOffset, T, H, Dh, nRot, key.tab);
    // one rope_table per position column (the same kernel as rope(), so equal columns give rope()'s
    // angles bit for bit), then each pair's cos and sin taken from its column's table
    const cols = s.scratchBlock('mropecols', S * T * nRot * 4),
      tab = s.scratchBlock('mropetab', T * nRot * 4), // grows only here, with a new key
      inv = s.scratchBlock('mropeinv', f.inv.byteLength),
      p = s.scratchBlock('mropepos', T * 4);
    new Float64Array(s.buf, inv, f.inv.length).set(f.inv);
    for (let c = 0; c < S; c++) {
      const col = new Int32Array(s.buf, p, T);
      for (let t = 0; t < T; t++) col[t] = pos[t * S + c]!;
      s.ex.rope_table(p, T, nRot, inv, f.mscale, cols + c * T * nRot * 4);
    }
    const all = new Float32Array(s.buf, cols, S * T * nRot),
      out = new Float32Array(s.buf, tab, T * nRot);
    for (let t = 0; t < T; t++)
      for (let i = 0; i < half; i++) {
        const src = (sect[i]! * T + t) * nRot + i,
          dst = t * nRot + i;
        out[dst] = all[src]!; // cos
        out[dst + half] = all[src + half]!; // sin
      }
    s.mropeKey = { pos: Int32Array.from(at), S, sect: Uint8Array.from(sect), nRot, theta, tab };
    s.ex.rope(x.byteOffset, T, H, Dh, nRot, tab);
  }

  attention(out: Float32Array, q: Float32Array, spans: AttnSpan[], Hq: number, Hkv: number, Dh: number, scale: number): void {
    const s = spans.length ? this.home(spans[0]!.k) : this.home(out);
    if (spans.some((sp) => this.owner.get(sp.k.buffer) !== s)) return this.attentionSplit(out, q, spans, Hq, Hkv, Dh, scale);
    try {
      this.attentionIn(s, this.at(s, out, true), this.at(s, q), spans, Hq, Hkv, Dh, scale);
    } finally {
      this.unstage();
    }
  }

  /** attention() with every span's cache in shard s; out, q: offsets in s. */
  private attentionIn(s: Shard, po: number, pq: number, spans: AttnSpan[], Hq: number, Hkv: number, Dh: number, scale: number): void {
    const T = spans.length,
      type = spans[0]?.type ?? 'f32';
    if (spans.some((sp) => (sp.type ?? 'f32') !== type)) throw new RangeError('WasmBackend.attention: spans of different KV-cache types in one call');
    if (type === 'q8_0' && Dh % 32 !== 0) throw new RangeError(`WasmBackend.attention: a q8_0 cache needs head_dim a multiple of 32, got ${Dh}`);
    // per row (k, v, length), then the tiles: consecutive rows reading one f16 / q8_0 cache share
    // each decoded block, up to attention_tile() rows (f32: a row each; see src/kernels/ops.ts)
    const most = type === 'f32' ? 1 : s.ex.attention_tile(),
      tiles: number[] = [];
    const desc = new Int32Array(T * 3 + 1 + 2 * T);
    spans.forEach((sp, t) => {
      desc[3 * t] = this.at(s, sp.k);
      desc[3 * t + 1] = this.at(s, sp.v);
      desc[3 * t + 2] = sp.len;
      const last = tiles.length - 2;
      if (last >= 0 && tiles[last + 1]! < most && spans[t - 1]!.k === sp.k) tiles[last + 1]!++;
      else tiles.push(t, 1);
    });
    desc[3 * T] = tiles.length / 2;
    desc.set(tiles, 3 * T + 1);
    const stride = align(s.ex.attention_scratch_floats(Hq / Hkv, Dh, KVT[type]) * 4);
    const sc = s.scratchBlock('attn', stride * this.threads);
    const parts = this.parts(T * Hq * Math.max(1, spans[T - 1]?.len ?? 1) * Dh, 1 << 13);
    this.run(s, K_ATTN, Math.min(parts, (tiles.length / 2) * Hq), [po, pq, s.i32('desc', desc), T, Hq, Hkv, Dh, scale, sc, stride, KVT[type]]);
  }

  /** Rows whose caches live in different memories (a cache spilled, see alloc): one call per memory, on its rows. */
  private attentionSplit(out: Float32Array, q: Float32Array, spans: AttnSpan[], Hq: number, Hkv: number, Dh: number, scale: number): void {
    const W = Hq * Dh,
      groups = new Map<Shard, number[]>();
    spans.forEach((sp, t) => {
      const s = this.home(sp.k);
      let g = groups.get(s);
      if (!g) groups.set(s, (g = []));
      g.push(t);
    });
    for (const [s, rows] of groups) {
      const n = rows.length * W * 4,
        pq = s.allocBytes(n, false, false, true),
        po = s.allocBytes(n, false, false, true);
      if (pq < 0 || po < 0) throw new Error(`WasmBackend: no room in WebAssembly memory ${s.index} for attention rows`);
      try {
        const gq = new Float32Array(s.buf, pq, rows.length * W),
          go = new Float32Array(s.buf, po, rows.length * W);
        rows.forEach((t, i) => gq.set(q.subarray(t * W, (t + 1) * W), i * W));
        this.attentionIn(
          s,
          po,
          pq,
          rows.map((t) => spans[t]!),
          Hq,
          Hkv,
          Dh,
          scale,
        );
        rows.forEach((t, i) => out.set(go.subarray(i * W, (i + 1) * W), t * W));
      } finally {
        this.unstage();
        s.freeBytes(pq);
        s.freeBytes(po);
      }
    }
  }

  layerNorm(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array, R: number, D: number, eps: number): void {
    const s = this.home(w);
    try {
      this.run(s, K_LAYER_NORM, Math.min(R, this.parts(R * D, 1 << 14)), [this.at(s, out, true), this.at(s, x), w.byteOffset, this.at(s, b), R, D, eps]);
    } finally {
      this.unstage();
    }
  }

  gelu(out: Float32Array, x: Float32Array, n: number): void {
    this.elementwise(K_GELU, 1 << 12, out, x, x, n);
  }

  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    this.elementwise(K_SILU, 1 << 14, out, gate, up, n);
  }

  sigmoidMul(out: Float32Array, gate: Float32Array, x: Float32Array, n: number): void {
    this.elementwise(K_SIGMOID, 1 << 14, out, gate, x, n);
  }

  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
    this.elementwise(K_ADD, 1 << 16, out, a, b, n);
  }

  /** out = f(a, b) over n floats, in out's memory. */
  private elementwise(k: number, grain: number, out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
    const s = this.home(out);
    try {
      this.run(s, k, this.parts(n, grain), [out.byteOffset, this.at(s, a), this.at(s, b), n]);
    } finally {
      this.unstage();
    }
  }

  /** Per sequence three i32 (its rows' offset in one i32 block, row count, a state pointer), for ssm_conv and delta_net. */
  private spanDesc(s: Shard, spans: RecurrentSpan[], state: (sp: RecurrentSpan) => Float32Array): { desc: number; rows: number } {
    const all = new Int32Array(spans.reduce((n, sp) => n + sp.rows.length, 0));
    let at = 0;
    for (const sp of spans) {
      all.set(sp.rows, at);
      at += sp.rows.length;
    }
    const rowsOff = s.i32('spanrows', all);
    const d = new Int32Array(spans.length * 3);
    at = 0;
    spans.forEach((sp, i) => {
      d[3 * i] = rowsOff + 4 * at;
      d[3 * i + 1] = sp.rows.length;
      d[3 * i + 2] = this.at(s, state(sp), true);
      at += sp.rows.length;
    });
    return { desc: s.i32('spandesc', d), rows: all.length };
  }

  ssmConv(out: Float32Array, x: Float32Array, w: Float32Array, spans: RecurrentSpan[], C: number, K: number): void {
    const s = this.home(w);
    try {
      const { desc, rows } = this.spanDesc(s, spans, (sp) => sp.conv);
      const parts = Math.min(this.parts(C * rows * K, 1 << 13), Math.ceil(C / 4));
      const wt = s.scratchBlock('convtaps', C * K * 4); // the taps transposed, for long sequences
      this.run(s, K_CONV, parts, [this.at(s, out, true), this.at(s, x), w.byteOffset, C, K, desc, spans.length, wt]);
    } finally {
      this.unstage();
    }
  }

  deltaNet(out: Float32Array, qkv: Float32Array, a: Float32Array, b: Float32Array, A: Float32Array, dtBias: Float32Array, spans: RecurrentSpan[], dims: DeltaNetDims, eps: number): void {
    const { nk, nv, dk, dv } = dims,
      s = this.home(A);
    try {
      const { desc, rows } = this.spanDesc(s, spans, (sp) => sp.state);
      if (rows === 0) return;
      const sstride = align(s.ex.delta_scratch_floats(dk, dv) * 4);
      const sc = s.scratchBlock('delta', sstride * this.threads);
      const params = s.i32('deltaparams', Int32Array.of(nk, nv, dk, dv, dims.tiled ? 1 : 0, spans.length, sstride, this.deltaChunkMin));
      const parts = Math.min(this.parts(rows * nv * dk * dv, 1 << 15), spans.length * nv);
      this.run(s, K_DELTA, parts, [this.at(s, out, true), this.at(s, qkv), this.at(s, a), this.at(s, b), A.byteOffset, this.at(s, dtBias), desc, params, eps, sc]);
    } finally {
      this.unstage();
    }
  }

  storeRows(dst: Float32Array, dstRow: number, src: Float32Array, srcRow: number, n: number, width: number, type: KvType): void {
    if (n <= 0) return;
    const words = kvRowWords(type, width);
    if (dstRow < 0 || srcRow < 0 || (dstRow + n) * words > dst.length || (srcRow + n) * width > src.length)
      throw new RangeError(`WasmBackend.storeRows: ${n} rows at ${srcRow} -> ${dstRow} out of bounds`);
    if (type === 'q8_0' && width % 32 !== 0) throw new RangeError(`WasmBackend.storeRows: q8_0 rows of ${width} values (not a multiple of 32)`);
    const s = this.home(dst),
      rows = src.subarray(srcRow * width, (srcRow + n) * width);
    try {
      const pd = dst.byteOffset + 4 * dstRow * words;
      const bad = s.ex.kv_store(KVT[type], pd, this.at(s, rows), n, width, s.scratchBlock('kvblk', 128));
      // a NaN or infinity in a q8_0 block: that row and the rest by the TypeScript quantiser (ggml's rounding there)
      for (let r = Math.max(0, bad - 1); bad > 0 && r < n; r++) new Uint8Array(s.buf, pd + 4 * r * words, 4 * words).set(quantize('Q8_0', rows.subarray(r * width, (r + 1) * width), width));
    } finally {
      this.unstage();
    }
  }

  // ---- backward ops (LoRA training): the products in src/kernels/grad.ts; the others are
  // reference_grad.ts's loops on these arrays (a small share of a training step's time)

  matmulT(dx: Float32Array, dy: Float32Array, w: Weight, T: number, accumulate = false): void {
    const [N, K] = w.shape as [number, number];
    this.productT(this.wshard(w), dx, dy, 4 * N, 4, this.own(w).bytes.byteOffset, DT_ID[w.dtype], T, N, K, accumulate);
  }

  /** out = a^T b: b taken as an F32 weight [T, K], a^T read through strides (no transposed copy). */
  matmulTN(out: Float32Array, a: Float32Array, b: Float32Array, T: number, N: number, K: number): void {
    const s = this.home(b);
    this.productT(s, out, a, 4, 4 * N, b.byteOffset, DT_ID.F32, N, T, K, false);
  }

  /** out [rows, K] (+)= d [rows, N] w [N, K] (d's element (t, n) at t*drs + n*dcs bytes), in w's memory s. */
  private productT(s: Shard, out: Float32Array, d: Float32Array, drs: number, dcs: number, pw: number, dt: number, rows: number, N: number, K: number, acc: boolean): void {
    try {
      const sstride = align(s.ex.mmt_scratch_bytes(dt, K));
      const sc = s.scratchBlock('mmt', sstride * this.threads);
      const parts = Math.min(this.parts(rows * N * K, 1 << 16), s.ex.mmt_chunks(dt, K));
      this.run(s, K_MATMUL_T, parts, [this.at(s, out, true), this.at(s, d), drs, dcs, pw, rows, N, K, dt, sc, sstride, acc ? 1 : 0]);
    } finally {
      this.unstage();
    }
  }

  rmsNormBack = rmsNormBackRef;

  siluMulBack(dgate: Float32Array, dup: Float32Array, dout: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    const s = this.home(dgate);
    try {
      this.run(s, K_SILU_BACK, this.parts(n, 1 << 14), [dgate.byteOffset, this.at(s, dup, true), this.at(s, dout), this.at(s, gate), this.at(s, up), n]);
    } finally {
      this.unstage();
    }
  }

  /** One part per (sequence, key/value head) at most (src/kernels/grad_ops.ts); head dims not a multiple of 4: the reference loops. */
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
  ): void {
    if (Dh % 4 !== 0) return attentionBackRef(dq, dk, dv, dout, q, k, v, out, lens, Hq, Hkv, Dh, scale);
    const s = this.home(q);
    try {
      let most = 0,
        work = 0;
      for (const n of lens) {
        most = Math.max(most, n);
        work += n * n * Hq * Dh;
      }
      const sstride = align(s.ex.attn_back_scratch_floats(most, Dh) * 4);
      const sc = s.scratchBlock('attnback', sstride * this.threads);
      const d = new Int32Array(13 + lens.length);
      d.set([this.at(s, dq, true), this.at(s, dk, true), this.at(s, dv, true), this.at(s, dout), this.at(s, q), this.at(s, k), this.at(s, v), this.at(s, out), lens.length, Hq, Hkv, Dh, sstride]);
      d.set(lens, 13);
      this.run(s, K_ATTN_BACK, Math.min(this.parts(work, 1 << 13), lens.length * Hkv), [s.i32('attnbackdesc', d), scale, sc]);
    } finally {
      this.unstage();
    }
  }

  copy(dst: Float32Array, dstOff: number, src: Float32Array, srcOff: number, n: number): void {
    if (n <= 0) return;
    if (dstOff < 0 || srcOff < 0 || dstOff + n > dst.length || srcOff + n > src.length) throw new RangeError(`WasmBackend.copy: ${n} floats at ${srcOff} -> ${dstOff} out of bounds`);
    const s = this.home(dst);
    if (this.home(src) === s) s.ex.copy_f32(dst.byteOffset + 4 * dstOff, src.byteOffset + 4 * srcOff, n);
    else dst.set(src.subarray(srcOff, srcOff + n), dstOff); // across memories (a SharedArrayBuffer to another)
  }
}
