// One WebAssembly memory of the backend, with the main thread's kernel instance on it and its
// heap: a bump pointer, exact-size free lists, pass-scoped activations and scratch blocks.
//
// A model larger than one memory is spread over several shards, placed by layer (wasm.ts).
// Why not one 64-bit memory (memory64) instead: AssemblyScript cannot compile the kernels for it,
// and Node 20 (the default runtime) has no memory64; a wasm32 memory ends at 4 GiB.
import type { RopeFreqs } from './backend.js';
import type { Kernel } from './pool.js';
import { PAR, type Exports } from './wasm_module.js';

const PAGE = 65536;
export const MAX_PAGES = 65536; // wasm32: 4 GiB
export const MEMORY_BYTES = MAX_PAGES * PAGE;
export const HEAP_BASE = 1 << 20; // below: the f16 table and AssemblyScript statics (src/kernels/common.ts)
export const ALIGN = 64;

export const align = (n: number) => Math.ceil(Math.max(n, 1) / ALIGN) * ALIGN;
// the last bytes of a memory are kept for scratch and operands copied in from other memories:
// weights and activations that would reach into them go to another memory instead
const RESERVE = 256 * 2 ** 20;

export class Shard {
  readonly memory: WebAssembly.Memory;
  readonly ex: Exports;
  readonly par: Kernel[];
  /** the memory's current buffer (a grow replaces it; views on older ones stay valid) */
  buf: ArrayBufferLike;
  // heap: bump pointer, exact-size free lists, live sizes by offset
  top = HEAP_BASE;
  /** bytes of weights here (the placement budget counts them) */
  weightBytes = 0;
  private freeLists = new Map<number, number[]>();
  private live = new Map<number, number>();
  private pass: Set<number> | null = null;
  private lastPass = new Set<number>();
  private scratch = new Map<string, { off: number; size: number }>();
  private views = new Map<number, Float32Array>(); // alloc()'s views by offset, for reuse
  /** rope(): the cos/sin table of the last positions, in this memory */
  ropeKey: { pos: Int32Array; nRot: number; theta: number | RopeFreqs; tab: number } | null = null;
  /** ropeMulti(): the same for the last M-RoPE positions [T, S] and section map */
  mropeKey: { pos: Int32Array; S: number; sect: Uint8Array; nRot: number; theta: number | RopeFreqs; tab: number } | null = null;

  /** `owner` maps every buffer of every shard to its shard (the backend's routing table). */
  private readonly reserve: number;

  /** `owner` maps every buffer of every shard to its shard (the backend's routing table); `limit`:
   * the bytes this memory may grow to (4 GiB; tests use less). */
  constructor(
    readonly index: number,
    module: WebAssembly.Module,
    private readonly owner: Map<ArrayBufferLike, Shard>,
    private readonly limit = MEMORY_BYTES,
  ) {
    this.reserve = Math.min(RESERVE, limit / 8);
    this.memory = new WebAssembly.Memory({ initial: (2 * HEAP_BASE) / PAGE, maximum: MAX_PAGES, shared: true });
    this.buf = this.memory.buffer;
    owner.set(this.buf, this);
    const inst = new WebAssembly.Instance(module, {
      env: {
        memory: this.memory,
        abort() {
          throw new Error('wasm abort');
        },
      },
    });
    this.ex = inst.exports as unknown as Exports;
    this.par = PAR.map((n) => inst.exports[n] as unknown as Kernel);
    this.ex.init_tables();
  }

  owns(a: { buffer: ArrayBufferLike }): boolean {
    return this.owner.get(a.buffer) === this;
  }

  /** Grow the memory to hold `end` bytes; false if that passes `cap`. */
  private ensure(end: number, cap: number): boolean {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return true;
    if (end > cap) return false;
    const want = Math.min(Math.ceil(this.limit / PAGE), Math.max(Math.ceil(end / PAGE), Math.ceil((have * 1.25) / PAGE)));
    this.memory.grow(want - have / PAGE);
    this.buf = this.memory.buffer; // shared memory: older views stay valid, only longer ones are new
    this.owner.set(this.buf, this);
    return true;
  }

  /**
   * A block of `bytes` bytes, zeroed unless `zero` is false (then only fresh memory is); its
   * offset, or -1 when the memory is full. `track` false: not freed with the pass (weights, scratch);
   * `hard`: may use the reserve (scratch, copied operands).
   */
  allocBytes(bytes: number, zero = true, track = true, hard = false): number {
    const size = align(bytes);
    const list = this.freeLists.get(size);
    let off: number;
    if (list?.length) {
      off = list.pop()!;
      if (zero) new Uint8Array(this.buf, off, size).fill(0);
    } else {
      off = this.top;
      if (!this.ensure(off + size, hard ? this.limit : this.limit - this.reserve)) return -1;
      this.top += size;
    }
    this.live.set(off, size);
    if (track) this.pass?.add(off);
    return off;
  }

  freeBytes(off: number): void {
    const size = this.live.get(off);
    if (size === undefined) return;
    this.live.delete(off);
    this.pass?.delete(off);
    this.lastPass.delete(off);
    let list = this.freeLists.get(size);
    if (!list) this.freeLists.set(size, (list = []));
    list.push(off);
  }

  /** A scratch block reused across calls (not zeroed), grown on demand. */
  scratchBlock(key: string, bytes: number): number {
    const s = this.scratch.get(key);
    if (s && s.size >= bytes) return s.off;
    if (s) this.freeBytes(s.off);
    const size = align(Math.max(bytes, (s?.size ?? 0) * 1.5));
    const off = this.allocBytes(size, true, false, true); // scratch outlives passes
    if (off < 0) throw new Error(`WasmBackend: no room for ${(size / 2 ** 20).toFixed(1)} MiB of scratch in WebAssembly memory ${this.index} (4 GiB)`);
    this.scratch.set(key, { off, size });
    return off;
  }

  /** An activation of n floats (not cleared), or null when the memory is full. */
  alloc(n: number, poison: boolean): Float32Array | null {
    const off = this.allocBytes(n * 4, false); // may grow the memory (and replace this.buf)
    if (off < 0) return null;
    // A decode step allocates a few hundred activations, mostly blocks freed by the previous
    // step: reuse their views (alloc + free took 1.9 µs with a new view each time, 0.8 µs so:
    // ~0.3 ms of a 26 ms token). Not cleared: every op overwrites its output, and clearing took
    // 3-4% of a prefill.
    let v = this.views.get(off);
    if (v === undefined || v.length !== n) this.views.set(off, (v = new Float32Array(this.buf, off, n)));
    return poison ? v.fill(NaN) : v;
  }

  i32(key: string, v: Int32Array): number {
    const off = this.scratchBlock(key, v.length * 4);
    new Int32Array(this.buf, off, v.length).set(v);
    return off;
  }

  beginPass(): void {
    for (const off of this.lastPass) this.freeBytes(off);
    this.lastPass = new Set();
    this.pass = new Set();
  }

  endPass(): void {
    if (this.pass) this.lastPass = this.pass;
    this.pass = null;
  }

  /**
   * Whether relaxed_dot_i8x16_i7x16_add_s computes sum(a_i8 * b_u8) + c exactly for second
   * operands 128..255, as x86's vpdpbusd does (V8 12.x+ with AVX-VNNI). The spec leaves such
   * operands implementation-defined: pmaddubsw lowerings saturate pairs (Node 20, 22), ARM's
   * sdot reads them as signed. The engine's lowering is fixed for the process, so the extreme
   * and random cases here tell which one it is.
   */
  u8DotExact(): boolean {
    const off = this.scratchBlock('probe', 64);
    const mem = new DataView(this.memory.buffer);
    let seed = 12345;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16) & 0xff;
    for (let trial = 0; trial < 64; trial++) {
      const a = Array.from({ length: 16 }, () => (trial === 0 ? 127 : trial === 1 ? -128 : rnd() - 128));
      const b = Array.from({ length: 16 }, () => (trial < 2 ? 255 : rnd()));
      const c = Array.from({ length: 4 }, (_, i) => ((trial * 7919 + i * 104729) % 200000) - 100000);
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
}
