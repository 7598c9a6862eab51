// The fast backend: AssemblyScript kernels compiled to WebAssembly SIMD (relaxed SIMD where the
// engine has it), run by a pool of worker threads on one shared WebAssembly.Memory. Weights are
// read by the loader straight into that memory (no copy in the JS heap); activations are views
// on it. See src/kernels/ for the kernels and the accuracy notes of each.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as v8 from 'node:v8';
import { fail } from '../errors.js';
import type { DType } from '../formats/dtype.js';
import { tensorBytes } from '../formats/dtype.js';
import type { AttnSpan, Backend, DeltaNetDims, RecurrentSpan, Weight } from './backend.js';
import { Pool, type Kernel } from './pool.js';

// the ids of src/kernels/dequant.ts; types without a kernel of their own (Q4_1, Q5_0, Q5_1) go through mm_rows
const DT_ID: Record<DType, number> = { F32: 0, F16: 1, BF16: 2, Q8_0: 3, Q4_0: 4, Q4_K: 5, Q6_K: 6, Q4_1: 7, Q5_0: 8, Q5_1: 9, Q2_K: 10, Q3_K: 11, Q5_K: 12, IQ4_NL: 13, IQ4_XS: 14 };
const PAGE = 65536;
const MAX_PAGES = 65536; // wasm32: 4 GiB
const HEAP_BASE = 1 << 20; // below: the f16 table and AssemblyScript statics (src/kernels/common.ts)
const ALIGN = 64;
// parallel kernels, by index (the worker looks them up by the same list)
const PAR = ['mm_q8_0', 'mm_rows', 'mv_f16', 'attention', 'silu_mul', 'add', 'sigmoid_mul', 'ssm_conv', 'delta_net'] as const;
const K_MM_Q8 = 0, K_MM_ROWS = 1, K_MV_F16 = 2, K_ATTN = 3, K_SILU = 4, K_ADD = 5, K_SIGMOID = 6, K_CONV = 7, K_DELTA = 8;
// deltaNet: a sequence with at least this many rows in a call runs the chunked form (src/kernels/deltanet_chunk.ts).
// At Qwen3.5-0.8B's heads (dk = dv = 128; bench/deltanet.ts --sweep) the chunked form is slower per
// row below ~4 rows and 1.1-1.5x faster from ~8; 16 leaves a margin. Both forms do ~3 dk dv
// multiply-adds per row and head: the chunked one wins by running them as tiled products.
export const DELTA_CHUNK_MIN = 16;

interface Exports {
  init_tables(): void;
  quant_q8(x: number, T: number, K: number, xq: number, xd: number, mode: number): void;
  q8_scratch_bytes(K: number): number;
  scale_f32(dst: number, src: number, n: number, s: number): void;
  embed_rows(dtype: number, table: number, tokens: number, T: number, K: number, out: number): void;
  rms_norm(out: number, x: number, w: number, R: number, D: number, eps: number): void;
  rope_table(pos: number, T: number, nRot: number, theta: number, tab: number): void;
  rope(x: number, T: number, H: number, Dh: number, nRot: number, tab: number): void;
  delta_scratch_floats(dk: number, dv: number): number;
  add_bias(x: number, bias: number, T: number, N: number): void;
  f16_special(p: number, n: number): number;
  attention_scratch_floats(group: number, Dh: number): number;
  copy_f32(dst: number, src: number, n: number): void;
  relaxed(): number;
  u8_dot_probe(a: number, b: number, c: number, out: number): void;
}

let modules: { simd?: WebAssembly.Module; relaxed?: WebAssembly.Module | null } = {};
let u8DotExact: boolean | undefined; // see WasmBackend.u8DotExact

function wasmBytes(variant: string): Uint8Array<ArrayBuffer> {
  const name = `kernels-${variant}.wasm`;
  const candidates = [new URL(`../kernels/${name}`, import.meta.url), new URL(`../../dist/src/kernels/${name}`, import.meta.url)];
  const dir = process.env.QWEN_TS_KERNELS_DIR; // development: A/B-test another kernel build
  if (dir) candidates.unshift(new URL(`file://${dir}/${name}`));
  for (const u of candidates) {
    if (!fs.existsSync(u)) continue;
    const b = fs.readFileSync(u);
    return new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.length);
  }
  throw new Error(`WasmBackend: ${name} not found (run \`npm run build\` to compile src/kernels)`);
}

/** The relaxed-SIMD module if this engine can run it (Node 20 needs a V8 flag, set here), else null. */
// The kernels are few and hot: compile them with the optimising tier straight away. With dynamic
// tiering, long-running calls in worker threads stayed in the baseline tier (3-10x slower).
let tieringSet = false;
function optimiseUpFront(): void {
  if (tieringSet) return;
  tieringSet = true;
  v8.setFlagsFromString('--no-liftoff');
}

function relaxedModule(): WebAssembly.Module | null {
  optimiseUpFront();
  if (modules.relaxed !== undefined) return modules.relaxed;
  const bytes = wasmBytes('relaxed');
  if (!WebAssembly.validate(bytes)) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  modules.relaxed = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  return modules.relaxed;
}

function simdModule(): WebAssembly.Module {
  optimiseUpFront();
  return (modules.simd ??= new WebAssembly.Module(wasmBytes('simd')));
}

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
  /** fill every alloc() with NaN (tests: shows that no op reads a buffer before writing it) */
  poison?: boolean;
  /** scale of the least work worth a thread (default 1; tests use tiny values to split tiny ops) */
  grain?: number;
}

// quant_q8 layouts (src/kernels/q8.ts)
const Q8_I16 = 0, Q8_SIGN = 1, Q8_U8 = 2;

const align = (n: number) => Math.ceil(Math.max(n, 1) / ALIGN) * ALIGN;

export class WasmBackend implements Backend {
  readonly name: string;
  readonly threads: number;
  readonly relaxed: boolean;
  /** many-token Q8_0 products run on vpdpbusd (src/kernels/q8_u8.ts) */
  readonly u8dot: boolean;
  readonly memory: WebAssembly.Memory;
  private readonly ex: Exports;
  private readonly par: Kernel[];
  private readonly pool: Pool;
  private buffers = new Set<ArrayBufferLike>();
  private buf: ArrayBufferLike;
  // heap: bump pointer, exact-size free lists, live sizes by offset
  private top = HEAP_BASE;
  private freeLists = new Map<number, number[]>();
  private live = new Map<number, number>();
  private pass: Set<number> | null = null;
  private lastPass = new Set<number>();
  private scratch = new Map<string, { off: number; size: number }>();
  private views = new Map<number, Float32Array>(); // alloc()'s views by offset, for reuse
  private f16Checked = new WeakMap<Uint8Array, boolean>();
  private readonly grain: number;
  /** deltaNet: rows of one sequence from which it runs the chunked form (benchmarks change it) */
  deltaChunkMin = DELTA_CHUNK_MIN;
  private readonly poison: boolean;
  private ropeKey: { pos: Int32Array; nRot: number; theta: number; tab: number } | null = null;

  constructor(opts: WasmBackendOptions = {}) {
    this.threads = Math.max(1, Math.floor(opts.threads ?? os.availableParallelism()));
    this.grain = opts.grain ?? 1;
    this.poison = opts.poison ?? false;
    const rm = opts.relaxed === false ? null : relaxedModule();
    const module = rm ?? simdModule();
    this.relaxed = rm !== null;
    this.memory = new WebAssembly.Memory({ initial: (2 * HEAP_BASE) / PAGE, maximum: MAX_PAGES, shared: true });
    this.buf = this.memory.buffer;
    this.buffers.add(this.buf);
    const inst = new WebAssembly.Instance(module, { env: { memory: this.memory, abort() { throw new Error('wasm abort'); } } });
    this.ex = inst.exports as unknown as Exports;
    this.par = PAR.map((n) => inst.exports[n] as unknown as Kernel);
    this.ex.init_tables();
    this.u8dot = this.relaxed && opts.u8dot !== false && (u8DotExact ??= this.u8DotExact()); // the engine's, once per process
    this.name = `wasm-${this.relaxed ? 'relaxed-simd' : 'simd'}${this.u8dot ? '-u8dot' : ''}-x${this.threads}`;
    this.pool = new Pool(module, this.memory, this.threads, PAR, opts.spinMs ?? 2, opts.spinMs ?? 2);
  }

  // ---- memory ----

  private ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    if (end > MAX_PAGES * PAGE) {
      fail(`the WebAssembly backend needs ${(end / 2 ** 30).toFixed(2)} GiB, more than one 4 GiB WebAssembly memory holds (models that large are not supported yet; --backend reference has no such limit)`);
    }
    const want = Math.min(MAX_PAGES, Math.max(Math.ceil(end / PAGE), Math.ceil((have * 1.25) / PAGE)));
    this.memory.grow(want - have / PAGE);
    this.buf = this.memory.buffer; // shared memory: older views stay valid, only longer ones are new
    this.buffers.add(this.buf);
  }

  /** A block of `bytes` bytes, zeroed unless `zero` is false (then only fresh memory is); its offset. */
  private allocBytes(bytes: number, zero = true): number {
    const size = align(bytes);
    const list = this.freeLists.get(size);
    let off: number;
    if (list && list.length) {
      off = list.pop()!;
      if (zero) new Uint8Array(this.buf, off, size).fill(0);
    } else {
      off = this.top;
      this.ensure(off + size);
      this.top += size;
    }
    this.live.set(off, size);
    this.pass?.add(off);
    return off;
  }

  private freeBytes(off: number): void {
    const size = this.live.get(off);
    if (size === undefined) return;
    this.live.delete(off);
    this.pass?.delete(off);
    this.lastPass.delete(off);
    let list = this.freeLists.get(size);
    if (!list) this.freeLists.set(size, (list = []));
    list.push(off);
  }

  /**
   * Whether relaxed_dot_i8x16_i7x16_add_s computes sum(a_i8 * b_u8) + c exactly for second
   * operands 128..255, as x86's vpdpbusd does (V8 12.x+ with AVX-VNNI). The spec leaves such
   * operands implementation-defined: pmaddubsw lowerings saturate pairs (Node 20, 22), ARM's
   * sdot reads them as signed. The engine's lowering is fixed for the process, so the extreme
   * and random cases here tell which one it is.
   */
  private u8DotExact(): boolean {
    const off = this.scratchBlock('probe', 64);
    const mem = new DataView(this.memory.buffer);
    let seed = 12345;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16) & 0xff;
    for (let trial = 0; trial < 64; trial++) {
      const a = Array.from({ length: 16 }, () => (trial === 0 ? 127 : trial === 1 ? -128 : rnd() - 128));
      const b = Array.from({ length: 16 }, () => (trial < 2 ? 255 : rnd()));
      const c = Array.from({ length: 4 }, (_, i) => (trial * 7919 + i * 104729) % 200000 - 100000);
      a.forEach((v, i) => mem.setInt8(off + i, v));
      b.forEach((v, i) => mem.setUint8(off + 16 + i, v));
      c.forEach((v, i) => mem.setInt32(off + 32 + 4 * i, v, true));
      this.ex.u8_dot_probe(off, off + 16, off + 32, off + 48);
      for (let l = 0; l < 4; l++) {
        let want = c[l]!;
        for (let j = 0; j < 4; j++) want += a[4 * l + j]! * b[4 * l + j]!;
        if (mem.getInt32(off + 48 + 4 * l, true) !== want) return false;
      }
    }
    return true;
  }

  /** A scratch block reused across calls (not zeroed), grown on demand. */
  private scratchBlock(key: string, bytes: number): number {
    const s = this.scratch.get(key);
    if (s && s.size >= bytes) return s.off;
    const saved = this.pass;
    this.pass = null; // scratch outlives passes
    if (s) this.freeBytes(s.off);
    const size = align(Math.max(bytes, (s?.size ?? 0) * 1.5));
    const off = this.allocBytes(size);
    this.pass = saved;
    this.scratch.set(key, { off, size });
    return off;
  }

  private p(a: Float32Array | Uint8Array): number {
    if (!this.buffers.has(a.buffer)) throw new Error('WasmBackend: array not allocated by this backend (use backend.alloc)');
    return a.byteOffset;
  }

  alloc(n: number): Float32Array {
    const off = this.allocBytes(n * 4, false); // may grow the memory (and replace this.buf)
    // A decode step allocates a few hundred activations, mostly blocks freed by the previous
    // step: reuse their views (alloc + free took 1.9 µs with a new view each time, 0.8 µs so:
    // ~0.3 ms of a 26 ms token). Not cleared: every op overwrites its output, and clearing took
    // 3-4% of a prefill.
    let v = this.views.get(off);
    if (v === undefined || v.length !== n) this.views.set(off, (v = new Float32Array(this.buf, off, n)));
    return this.poison ? v.fill(NaN) : v;
  }

  /** Give back a buffer from alloc() (optional; buffers of a pass are also freed by the next beginPass). */
  free(a: Float32Array): void {
    if (this.buffers.has(a.buffer)) this.freeBytes(a.byteOffset);
  }

  /**
   * Start a forward pass: every buffer allocated during the previous pass (between beginPass and
   * endPass, and not freed) is released now, so the previous pass's logits stay valid until here.
   */
  beginPass(): void {
    for (const off of this.lastPass) this.freeBytes(off);
    this.lastPass = new Set();
    this.pass = new Set();
  }

  endPass(): void {
    if (this.pass) this.lastPass = this.pass;
    this.pass = null;
  }

  weight(dtype: DType, shape: readonly number[]): Weight {
    const n = tensorBytes(dtype, shape);
    const saved = this.pass;
    this.pass = null;
    const off = this.allocBytes(n);
    this.pass = saved;
    return { dtype, shape: [...shape], bytes: new Uint8Array(this.buf, off, n) };
  }

  /** Bytes of wasm memory in use (weights, caches, activations, scratch). */
  memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  dispose(): void {
    this.pool.dispose();
  }

  // ---- ops ----

  private w(w: Weight): number {
    if (!this.buffers.has(w.bytes.buffer)) {
      // a weight made elsewhere (e.g. by another backend): copy it in once
      const cached = (w as { __wasm?: Weight }).__wasm;
      if (cached) return cached.bytes.byteOffset;
      const c = this.weight(w.dtype, w.shape);
      c.bytes.set(w.bytes);
      (w as { __wasm?: Weight }).__wasm = c;
      return c.bytes.byteOffset;
    }
    return w.bytes.byteOffset;
  }

  private i32(key: string, v: Int32Array): number {
    const off = this.scratchBlock(key, v.length * 4);
    new Int32Array(this.buf, off, v.length).set(v);
    return off;
  }

  private parts(work: number, grain: number): number {
    return Math.max(1, Math.min(this.threads, Math.floor(work / Math.max(1e-9, grain * this.grain))));
  }

  embed(out: Float32Array, table: Weight, tokens: Int32Array): void {
    const D = table.shape[1]!;
    this.ex.embed_rows(DT_ID[table.dtype], this.w(table), this.i32('tokens', tokens), tokens.length, D, this.p(out));
  }

  matmul(out: Float32Array, x: Float32Array, w: Weight, T: number): void {
    this.matmulMany([out], x, [w], T);
  }

  /**
   * Several products of one x (e.g. the q/k/v projections): Q8_0 weights share one activation
   * quantisation and one dispatch, F16 weights for one token one prescale and one dispatch.
   * Every kernel sums a (token, row) the same way whatever T is (see src/kernels/q8.ts and
   * float.ts), so a request's logits do not depend on the batch it shares.
   */
  matmulMany(outs: Float32Array[], x: Float32Array, ws: Weight[], T: number): void {
    const K = ws[0]!.shape[1]!;
    const px = this.p(x);
    const all = (f: (w: Weight) => boolean) => ws.every((w) => w.shape[1] === K && f(w));
    const work = ws.reduce((s, w) => s + w.shape[0]! * K * T, 0);
    const parts = this.parts(work, 1 << 16);
    const q4 = all((w) => w.dtype === 'Q4_0');
    if (q4 || all((w) => w.dtype === 'Q8_0')) {
      // ggml's way for every batch size: int8 activations (Q4_0's nibbles become int8 as loaded). One token: the weights are read as
      // stored (memory-bound); more: tiles of decoded rows (compute-bound), on vpdpbusd where the
      // engine has it exactly, else on int16 pmaddwd.
      const mode = T === 1 ? (this.relaxed ? Q8_SIGN : Q8_I16) : this.u8dot ? Q8_U8 : Q8_I16;
      const xq = this.scratchBlock('xq', 2 * T * K), xd = this.scratchBlock('xd', T * (K / 32) * 4);
      this.ex.quant_q8(px, T, K, xq, xd, mode);
      const sstride = align(this.ex.q8_scratch_bytes(K));
      const sc = T > 1 ? this.scratchBlock('q8tile', sstride * this.threads) : 0;
      let counter = 0; // one token, several parts: rows handed out in chunks (mv_shared in q8.ts)
      if (T === 1 && parts > 1) {
        counter = this.scratchBlock('mvcounter', 4);
        new Int32Array(this.buf, counter, 1)[0] = 0;
      }
      this.pool.run(K_MM_Q8, this.par[K_MM_Q8]!, parts, [this.desc(outs, ws), ws.length, xq, xd, T, K, sc, sstride, mode, q4 ? 1 : 0, counter]);
      return;
    }
    if (T === 1 && all((w) => w.dtype === 'F16' && !this.hasF16Specials(w, this.w(w)))) {
      const xs = this.scratchBlock('xs', K * 4);
      this.ex.scale_f32(xs, px, K, 2 ** 96); // see mv_f16
      this.pool.run(K_MV_F16, this.par[K_MV_F16]!, parts, [this.desc(outs, ws), ws.length, xs, K]);
      return;
    }
    if (ws.length > 1) {
      ws.forEach((w, i) => this.matmulMany([outs[i]!], x, [w], T));
      return;
    }
    const w = ws[0]!, N = w.shape[0]!, pw = this.w(w);
    const stride = align(4 * K * 4);
    const sc = this.scratchBlock('rows', stride * this.threads);
    this.pool.run(K_MM_ROWS, this.par[K_MM_ROWS]!, parts, [this.p(outs[0]!), pw, px, T, N, K, DT_ID[w.dtype], sc, stride]);
  }

  /** Per matrix (out, w, N) as i32, for the kernels that take several matrices. */
  private desc(outs: Float32Array[], ws: Weight[]): number {
    const d = new Int32Array(ws.length * 3);
    ws.forEach((w, i) => {
      d[3 * i] = this.p(outs[i]!);
      d[3 * i + 1] = this.w(w);
      d[3 * i + 2] = w.shape[0]!;
    });
    return this.i32('mmdesc', d);
  }

  private hasF16Specials(w: Weight, pw: number): boolean {
    let r = this.f16Checked.get(w.bytes);
    if (r === undefined) this.f16Checked.set(w.bytes, (r = this.ex.f16_special(pw, w.bytes.length / 2) !== 0));
    return r;
  }

  addBias(x: Float32Array, bias: Float32Array, T: number): void {
    this.ex.add_bias(this.p(x), this.p(bias), T, bias.length);
  }

  rmsNorm(out: Float32Array, x: Float32Array, w: Float32Array, R: number, D: number, eps: number): void {
    this.ex.rms_norm(this.p(out), this.p(x), this.p(w), R, D, eps);
  }

  rope(x: Float32Array, positions: Int32Array, T: number, H: number, Dh: number, theta: number, nRot = Dh): void {
    // the angles' cos and sin are computed once for the q and k of every layer of a pass
    const key = this.ropeKey, pos = positions.subarray(0, T);
    if (!(key && key.nRot === nRot && key.theta === theta && key.pos.length === T && key.pos.every((p, i) => p === pos[i]))) {
      const tab = this.scratchBlock('ropetab', T * nRot * 4); // grows only here, with a new key
      this.ex.rope_table(this.i32('pos', pos), T, nRot, theta, tab);
      this.ropeKey = { pos: Int32Array.from(pos), nRot, theta, tab };
    }
    this.ex.rope(this.p(x), T, H, Dh, nRot, this.ropeKey!.tab);
  }

  attention(out: Float32Array, q: Float32Array, spans: AttnSpan[], Hq: number, Hkv: number, Dh: number, scale: number): void {
    const T = spans.length;
    const desc = new Int32Array(T * 3);
    spans.forEach((s, t) => {
      desc[3 * t] = this.p(s.k);
      desc[3 * t + 1] = this.p(s.v);
      desc[3 * t + 2] = s.len;
    });
    const stride = align(this.ex.attention_scratch_floats(Hq / Hkv, Dh) * 4);
    const sc = this.scratchBlock('attn', stride * this.threads);
    const parts = this.parts(T * Hq * Math.max(1, spans[T - 1]?.len ?? 1) * Dh, 1 << 13);
    this.pool.run(K_ATTN, this.par[K_ATTN]!, Math.min(parts, T * Hq), [this.p(out), this.p(q), this.i32('desc', desc), T, Hq, Hkv, Dh, scale, sc, stride]);
  }

  siluMul(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
    this.pool.run(K_SILU, this.par[K_SILU]!, this.parts(n, 1 << 14), [this.p(out), this.p(gate), this.p(up), n]);
  }

  sigmoidMul(out: Float32Array, gate: Float32Array, x: Float32Array, n: number): void {
    this.pool.run(K_SIGMOID, this.par[K_SIGMOID]!, this.parts(n, 1 << 14), [this.p(out), this.p(gate), this.p(x), n]);
  }

  /** Per sequence three i32 (its rows' offset in one i32 block, row count, a state pointer), for ssm_conv and delta_net. */
  private spanDesc(spans: RecurrentSpan[], state: (s: RecurrentSpan) => Float32Array): { desc: number; rows: number } {
    const all = new Int32Array(spans.reduce((n, s) => n + s.rows.length, 0));
    let at = 0;
    for (const s of spans) {
      all.set(s.rows, at);
      at += s.rows.length;
    }
    const rowsOff = this.i32('spanrows', all);
    const d = new Int32Array(spans.length * 3);
    at = 0;
    spans.forEach((s, i) => {
      d[3 * i] = rowsOff + 4 * at;
      d[3 * i + 1] = s.rows.length;
      d[3 * i + 2] = this.p(state(s));
      at += s.rows.length;
    });
    return { desc: this.i32('spandesc', d), rows: all.length };
  }

  ssmConv(out: Float32Array, x: Float32Array, w: Float32Array, spans: RecurrentSpan[], C: number, K: number): void {
    const { desc, rows } = this.spanDesc(spans, (s) => s.conv);
    const parts = Math.min(this.parts(C * rows * K, 1 << 13), Math.ceil(C / 4));
    const wt = this.scratchBlock('convtaps', C * K * 4); // the taps transposed, for long sequences
    this.pool.run(K_CONV, this.par[K_CONV]!, parts, [this.p(out), this.p(x), this.p(w), C, K, desc, spans.length, wt]);
  }

  deltaNet(out: Float32Array, qkv: Float32Array, a: Float32Array, b: Float32Array, A: Float32Array, dtBias: Float32Array, spans: RecurrentSpan[], dims: DeltaNetDims, eps: number): void {
    const { nk, nv, dk, dv } = dims;
    const { desc, rows } = this.spanDesc(spans, (s) => s.state);
    if (rows === 0) return;
    const sstride = align(this.ex.delta_scratch_floats(dk, dv) * 4);
    const sc = this.scratchBlock('delta', sstride * this.threads);
    const params = this.i32('deltaparams', Int32Array.of(nk, nv, dk, dv, dims.tiled ? 1 : 0, spans.length, sstride, this.deltaChunkMin));
    const parts = Math.min(this.parts(rows * nv * dk * dv, 1 << 15), spans.length * nv);
    this.pool.run(K_DELTA, this.par[K_DELTA]!, parts, [this.p(out), this.p(qkv), this.p(a), this.p(b), this.p(A), this.p(dtBias), desc, params, eps, sc]);
  }

  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
    this.pool.run(K_ADD, this.par[K_ADD]!, this.parts(n, 1 << 16), [this.p(out), this.p(a), this.p(b), n]);
  }

  copy(dst: Float32Array, dstOff: number, src: Float32Array, srcOff: number, n: number): void {
    if (n <= 0) return;
    if (dstOff < 0 || srcOff < 0 || dstOff + n > dst.length || srcOff + n > src.length) throw new RangeError(`WasmBackend.copy: ${n} floats at ${srcOff} -> ${dstOff} out of bounds`);
    this.ex.copy_f32(this.p(dst) + 4 * dstOff, this.p(src) + 4 * srcOff, n);
  }
}
