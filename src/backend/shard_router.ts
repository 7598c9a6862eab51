// The memories of the WebAssembly backend and the routing of arrays between them (the base of
// WasmBackend, which adds the ops). One wasm32 memory holds 4 GiB, so a larger model (Qwen2.5-7B
// Q8_0: 8 GB) is spread over several memories, "shards" (shard.ts), each with its own kernel
// instance (and one per worker thread, pool.ts), placed by layer as llama.cpp places layers on
// buffers: the loader and the forward pass say which layer comes next (place()), and a layer that
// would pass `shardBytes` of weights starts a new shard. An op runs in the shard that holds its
// weight (weightless ops: where their output lives); an activation from another shard is copied in
// for the op (at(): D floats a token at a layer boundary) and an output living elsewhere copied
// back (unstage()). A model that fits one memory runs in one shard with no copies.
// memory64 is not an option: AssemblyScript cannot target it and Node 20 lacks it.
import { fail } from '../errors.js';
import type { DType } from '../formats/dtype.js';
import { tensorBytes } from '../formats/dtype.js';
import type { Weight } from './backend.js';
import { Pool } from './pool.js';
import { MEMORY_BYTES, Shard } from './shard.js';
import { PAR } from './wasm_module.js';

/** Default weight budget of one memory: the rest of its 4 GiB holds activations, scratch and the
 * KV cache / recurrent states of its layers (past that, new caches spill to another memory). */
export const SHARD_BYTES = 3.5 * 2 ** 30;

export interface RouterOptions {
  threads: number;
  spinMs: number;
  poison: boolean;
  /** see WasmBackendOptions */
  shardBytes?: number;
  memoryLimit?: number;
}

/** An array copied into another shard for one op; written back afterwards when `write`. */
interface Staged {
  a: Float32Array;
  s: Shard;
  off: number;
  write: boolean;
}

export class ShardRouter {
  private readonly shardList: Shard[] = [];
  /** every buffer of every shard's memory -> its shard (the routing table) */
  protected readonly owner = new Map<ArrayBufferLike, Shard>();
  private readonly layers = new Map<number, Shard>();
  /** where alloc() and weight() go: the placed layer's shard */
  protected cur: Shard;
  private curLayer: number | undefined;
  private inPass = false;
  private staged: Staged[] = [];
  private readonly pool: Pool;
  private readonly poison: boolean;
  private readonly shardBytes: number;
  private readonly memLimit: number;

  constructor(
    private readonly module: WebAssembly.Module,
    o: RouterOptions,
  ) {
    this.poison = o.poison;
    this.shardBytes = o.shardBytes ?? SHARD_BYTES;
    this.memLimit = Math.min(MEMORY_BYTES, o.memoryLimit ?? MEMORY_BYTES);
    this.cur = this.addShard();
    this.pool = new Pool(module, this.cur.memory, o.threads, PAR, o.spinMs, o.spinMs);
  }

  private addShard(): Shard {
    const s = new Shard(this.shardList.length, this.module, this.owner, this.memLimit);
    this.shardList.push(s);
    if (s.index > 0) this.pool.addMemory(s.memory);
    if (this.inPass) s.beginPass();
    return s;
  }

  /** How many WebAssembly memories the backend uses. */
  get shards(): number {
    return this.shardList.length;
  }

  /** The memory (shard index) layer `layer` was placed in, if any. */
  shardOfLayer(layer: number): number | undefined {
    return this.layers.get(layer)?.index;
  }

  /** The shard index of an array from alloc() or a weight's bytes. */
  shardOf(a: Float32Array | Uint8Array): number | undefined {
    return this.owner.get(a.buffer)?.index;
  }

  place(layer: number, bytes?: number): void {
    let s = bytes === undefined ? this.layers.get(layer) : undefined;
    if (s === undefined) {
      s = this.cur;
      if (bytes !== undefined) {
        // a new layer: with the last one unless its weights would pass the budget
        if (s.weightBytes > 0 && s.weightBytes + bytes > this.shardBytes) s = this.addShard();
        this.layers.set(layer, s);
      }
    }
    this.cur = s;
    this.curLayer = layer;
  }

  /** Bytes of wasm memory in use (weights, caches, activations, scratch), all memories. */
  memoryBytes(): number {
    return this.shardList.reduce((n, s) => n + s.memory.buffer.byteLength, 0);
  }

  alloc(n: number): Float32Array {
    const v = this.cur.alloc(n, this.poison);
    if (v) return v;
    // This memory is full (a long context's KV cache): another one takes it, and the ops reading
    // it copy across. Slower, but a model that loads does not fail when its caches grow.
    for (const s of this.shardList)
      if (s !== this.cur) {
        const w = s.alloc(n, this.poison);
        if (w) return w;
      }
    const w = this.addShard().alloc(n, this.poison);
    if (!w) fail(`the WebAssembly backend cannot allocate ${((n * 4) / 2 ** 30).toFixed(2)} GiB in one 4 GiB WebAssembly memory`);
    return w;
  }

  /** Give back a buffer from alloc() (optional; buffers of a pass are also freed by the next beginPass). */
  free(a: Float32Array): void {
    this.owner.get(a.buffer)?.freeBytes(a.byteOffset);
  }

  /**
   * Start a forward pass: every buffer allocated during the previous pass (between beginPass and
   * endPass, and not freed) is released now, so the previous pass's logits stay valid until here.
   */
  beginPass(): void {
    this.inPass = true;
    for (const s of this.shardList) s.beginPass();
  }

  endPass(): void {
    this.inPass = false;
    for (const s of this.shardList) s.endPass();
  }

  weight(dtype: DType, shape: readonly number[]): Weight {
    const n = tensorBytes(dtype, shape);
    let s = this.cur,
      off = s.allocBytes(n, true, false);
    if (off < 0) {
      // the placement's estimate fell short: this layer goes on in a new memory
      s = this.addShard();
      off = s.allocBytes(n, true, false);
      if (off < 0) fail(`a tensor of ${(n / 2 ** 30).toFixed(2)} GiB does not fit in one 4 GiB WebAssembly memory (--backend reference has no such limit)`);
      this.cur = s;
      if (this.curLayer !== undefined) this.layers.set(this.curLayer, s);
    }
    s.weightBytes += n;
    return { dtype, shape: [...shape], bytes: new Uint8Array(s.buf, off, n) };
  }

  dispose(): void {
    this.pool.dispose();
  }

  /** Whether `b` is (a buffer of) one of this backend's memories: a view on it stays valid while the backend lives. */
  ownsBuffer(b: ArrayBufferLike): boolean {
    return this.owner.has(b);
  }

  // ---- routing ----

  protected home(a: Float32Array): Shard {
    const s = this.owner.get(a.buffer);
    if (!s) throw new Error('WasmBackend: array not allocated by this backend (use backend.alloc)');
    return s;
  }

  /** The offset of `a` in shard s: its own when it lives there, else a copy's, written back after
   * the op (unstage) when `write`. */
  protected at(s: Shard, a: Float32Array, write = false): number {
    if (this.owner.get(a.buffer) === s) return a.byteOffset;
    for (const e of this.staged)
      if (e.a === a && e.s === s) {
        e.write ||= write;
        return e.off;
      }
    this.home(a);
    const off = s.allocBytes(a.byteLength, false, false, true);
    if (off < 0) throw new Error(`WasmBackend: no room in WebAssembly memory ${s.index} for a ${a.length}-float operand`);
    new Float32Array(s.buf, off, a.length).set(a); // every op writes all of its output, but copy it anyway: one op may write a part
    this.staged.push({ a, s, off, write });
    return off;
  }

  protected unstage(): void {
    if (this.staged.length === 0) return;
    for (const e of this.staged) {
      if (e.write) e.a.set(new Float32Array(e.s.memory.buffer, e.off, e.a.length));
      e.s.freeBytes(e.off);
    }
    this.staged.length = 0;
  }

  /** A weight's storage in this backend: its own, or (a weight made elsewhere, e.g. by another backend) a copy made once. */
  protected own(w: Weight): Weight {
    if (this.owner.has(w.bytes.buffer)) return w;
    const x = w as { __wasm?: Weight };
    if (!x.__wasm || !this.owner.has(x.__wasm.bytes.buffer)) {
      const c = this.weight(w.dtype, w.shape);
      c.bytes.set(w.bytes);
      x.__wasm = c;
    }
    return x.__wasm;
  }

  protected wshard(w: Weight): Shard {
    return this.owner.get(this.own(w).bytes.buffer)!;
  }

  protected run(s: Shard, k: number, parts: number, args: number[]): void {
    this.pool.run(s.index, k, s.par[k]!, parts, args);
  }
}
