// Per-sequence memory, and the batch of (token, position, sequence) entries a forward pass
// consumes, in the manner of llama.cpp's llama_batch. Attention layers keep keys and values (cache
// slot = position); Gated DeltaNet layers (Qwen3.5) keep a conv state and a recurrent state, which
// summarise every position seen and so cannot be rewound.
import { fail } from '../errors.js';
import { KV_TYPES, kvRowWords, type AttnSpan, type Backend, type KvType, type RecurrentSpan } from '../backend/backend.js';
import type { QwenConfig } from './config.js';

export interface BatchEntry {
  token: number;
  pos: number;
  /** index into the caches array passed to forward */
  seq: number;
  /** whether logits are wanted for this entry */
  logits: boolean;
  /** the LoRA adapter this row runs with (its id in the model's LoraSet); absent or 0: the base model */
  adapter?: number;
  /** a row [hidden_size] that replaces the token's embedding (an image row: src/vision/types.ts) */
  embd?: Float32Array;
  /** M-RoPE position (t, h, w) of this row; absent: (pos, pos, pos). Rows of an image and every
   * token after one have their own (VISION.md section 6); `pos` stays the cache slot. */
  mpos?: readonly [number, number, number];
}

/**
 * `c` with its KV cache stored as `type` (LoadOptions.cacheType, --cache-type): an error naming
 * head_dim when q8_0 blocks of 32 do not tile a head's row.
 */
export function withCacheType(c: QwenConfig, type: KvType | undefined): QwenConfig {
  if (type === undefined) return c;
  checkCacheType(type, c.head_dim);
  return { ...c, kv_cache_type: type };
}

function checkCacheType(type: KvType, headDim: number): void {
  if (!KV_TYPES.includes(type)) fail(`--cache-type must be one of ${KV_TYPES.join(', ')}, got '${String(type)}'`);
  if (type === 'q8_0' && headDim % 32 !== 0)
    fail(`--cache-type q8_0 needs head_dim a multiple of 32 (ggml's Q8_0 blocks of 32 values per head), but this model's head_dim is ${headDim}; use --cache-type f16`);
}

export class KvCache {
  /** per attention layer [allocated, kvRowWords(type, kvHeads*headDim)] words: f32 values, or f16 /
   * q8_0 rows' bytes (empty elsewhere) */
  readonly k: Float32Array[] = [];
  readonly v: Float32Array[] = [];
  /** how keys and values are stored (the config's kv_cache_type; default f32) */
  readonly type: KvType;
  /** per DeltaNet layer: conv state [K-1, C] and delta-rule state [nv, dk, dv] (empty elsewhere) */
  readonly conv: Float32Array[] = [];
  readonly state: Float32Array[] = [];
  /** the sequence has recurrent layers: positions can only be appended, or restarted from 0 */
  readonly recurrent: boolean;
  /** a pass updating the recurrent states is under way or failed half-way (see checkBatch) */
  dirty = false;
  /** positions 0..length-1 hold valid keys and values */
  length = 0;
  /** positions storage exists for; grows by doubling, in powers of two, up to `capacity` rounded up */
  allocated = 0;
  private readonly kvDim: number;
  /** words one position's row of one layer's keys (or values) takes */
  private readonly rowWords: number;
  /** per attention layer, the block holding its k then its v rows */
  private readonly kvBlock: Float32Array[] = [];
  private readonly attnLayers: number[] = [];
  /** floats of conv and delta-rule state per DeltaNet layer (0 for attention layers) */
  private readonly convLen: number[] = [];
  private readonly stateLen: number[] = [];
  private statesReady = false;
  constructor(
    private readonly backend: Backend,
    cfg: QwenConfig,
    readonly capacity: number,
  ) {
    this.kvDim = cfg.num_key_value_heads * cfg.head_dim;
    this.type = cfg.kv_cache_type ?? 'f32';
    checkCacheType(this.type, cfg.head_dim);
    this.rowWords = kvRowWords(this.type, this.kvDim);
    const types = cfg.layer_types ?? [];
    this.recurrent = types.includes('linear_attention');
    const nk = cfg.linear_num_key_heads ?? 0,
      nv = cfg.linear_num_value_heads ?? 0;
    const dk = cfg.linear_key_head_dim ?? 0,
      dv = cfg.linear_value_head_dim ?? 0;
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      this.k.push(new Float32Array(0)); // storage comes with reserve()
      this.kvBlock.push(new Float32Array(0));
      this.v.push(new Float32Array(0));
      const linear = types[l] === 'linear_attention';
      if (!linear) this.attnLayers.push(l);
      this.convLen.push(linear ? ((cfg.linear_conv_kernel_dim ?? 1) - 1) * (2 * nk * dk + nv * dv) : 0);
      this.stateLen.push(linear ? nv * dk * dv : 0);
      this.conv.push(new Float32Array(0)); // also allocated by reserve(): a request waiting its
      this.state.push(new Float32Array(0)); // turn holds no memory (Qwen3.5-0.8B: 19 MiB a sequence)
    }
  }

  /** Zero the recurrent states: the sequence starts over. */
  private resetRecurrent(): void {
    for (const a of [...this.conv, ...this.state]) a.fill(0);
    this.dirty = false;
  }

  /** Make room for positions 0..n-1 (a long context costs memory only when it is used). */
  reserve(n: number): void {
    if (this.recurrent && !this.statesReady) {
      // first use: the recurrent states, zeroed
      // each layer's state in its layer's memory (a backend of several memories: see Backend.place)
      this.conv.forEach((_, l) => {
        if (this.convLen[l]) {
          this.backend.place?.(l);
          this.conv[l] = this.backend.alloc(this.convLen[l]!);
          this.state[l] = this.backend.alloc(this.stateLen[l]!);
        }
      });
      this.resetRecurrent();
      this.statesReady = true;
    }
    if (n <= this.allocated) return;
    // Powers of two (the capacity rounded up too): a backend heap reuses freed blocks of equal
    // size, and requests of every (prompt + max_tokens) would otherwise strand blocks of their own.
    const pow2 = (x: number) => 2 ** Math.ceil(Math.log2(x));
    const size = Math.min(pow2(this.capacity), pow2(Math.max(n, this.allocated * 2, 64)));
    for (const l of this.attnLayers) {
      this.backend.place?.(l); // next to the layer's weights: attention runs there
      // k and v in one block: a backend of several memories then keeps them in one (attention reads both)
      const block = this.backend.alloc(2 * size * this.rowWords);
      const k = block.subarray(0, size * this.rowWords),
        v = block.subarray(size * this.rowWords);
      if (this.allocated > 0) {
        this.backend.copy(k, 0, this.k[l]!, 0, this.length * this.rowWords);
        this.backend.copy(v, 0, this.v[l]!, 0, this.length * this.rowWords);
        this.backend.free?.(this.kvBlock[l]!);
      }
      [this.kvBlock[l], this.k[l], this.v[l]] = [block, k, v];
    }
    this.allocated = size;
  }

  /** Give the storage back to the backend (a WebAssembly heap does not collect garbage). */
  release(): void {
    for (const list of [this.kvBlock, this.conv, this.state]) {
      list.forEach((a, l) => {
        if (a.length) this.backend.free?.(a);
        list[l] = new Float32Array(0);
      });
    }
    this.k.fill(new Float32Array(0));
    this.v.fill(new Float32Array(0));
    this.allocated = 0;
    this.length = 0;
    this.statesReady = false;
    this.dirty = false;
  }

  /** 4-byte words (floats for an f32 cache) one prefix-cache block of `n` positions takes: keys and
   * values of every attention layer, in the cache's type. */
  rowsFloats(n: number): number {
    return 2 * this.attnLayers.length * n * this.rowWords;
  }

  /** Floats of the recurrent state (every DeltaNet layer's conv and delta-rule state); 0 without such layers. */
  get recurrentFloats(): number {
    return this.convLen.reduce((a, b) => a + b, 0) + this.stateLen.reduce((a, b) => a + b, 0);
  }

  /** Positions [from, from + n) of every attention layer's keys and values, copied into one array (a
   * prefix-cache block), stored as the cache stores them. */
  exportRows(from: number, n: number): Float32Array {
    if (from < 0 || from + n > this.length) fail(`exportRows: positions ${from}..${from + n - 1} are not all in the cache (it holds ${this.length})`);
    const out = new Float32Array(this.rowsFloats(n)),
      w = n * this.rowWords,
      at = from * this.rowWords;
    this.attnLayers.forEach((l, i) => {
      out.set(this.k[l]!.subarray(at, at + w), 2 * i * w);
      out.set(this.v[l]!.subarray(at, at + w), (2 * i + 1) * w);
    });
    return out;
  }

  /** Write a block from exportRows at position `from` (= the cache's length: a prefix is appended in order). */
  importRows(from: number, n: number, rows: Float32Array): void {
    if (from !== this.length) fail(`importRows: position ${from} would leave a gap (the cache holds ${this.length})`);
    if (rows.length !== this.rowsFloats(n)) fail(`importRows: ${rows.length} words for ${n} positions (want ${this.rowsFloats(n)}: a block from a cache of another type?)`);
    this.reserve(from + n);
    const w = n * this.rowWords;
    this.attnLayers.forEach((l, i) => {
      this.k[l]!.set(rows.subarray(2 * i * w, (2 * i + 1) * w), from * this.rowWords);
      this.v[l]!.set(rows.subarray((2 * i + 1) * w, (2 * i + 2) * w), from * this.rowWords);
    });
    this.length = from + n;
  }

  /** The recurrent state now (at position `length`), copied into `into` if given (a checkpoint). */
  exportRecurrent(into?: Float32Array): Float32Array {
    into ??= new Float32Array(this.recurrentFloats);
    let o = 0;
    for (const list of [this.conv, this.state])
      for (const a of list) {
        into.set(a, o);
        o += a.length;
      }
    return into;
  }

  /** Restore a checkpoint from exportRecurrent: the state at position `length` (the prefix restored with importRows). */
  importRecurrent(data: Float32Array): void {
    this.reserve(Math.max(this.length, 1)); // allocates the states on first use
    if (data.length !== this.recurrentFloats) fail(`importRecurrent: ${data.length} floats (want ${this.recurrentFloats})`);
    let o = 0;
    for (const list of [this.conv, this.state])
      for (const a of list) {
        a.set(data.subarray(o, o + a.length));
        o += a.length;
      }
    this.dirty = false;
  }

  /** Forget everything from position `pos` on. A recurrent state can only go back to 0. */
  truncate(pos: number): void {
    const to = Math.min(this.length, Math.max(0, pos));
    if (this.recurrent && (to !== this.length || this.dirty)) {
      if (to !== 0) fail(`cannot rewind a sequence with Gated DeltaNet layers to position ${to} (it holds ${this.length}): a recurrent state keeps no history; start again from position 0`);
      this.resetRecurrent();
    }
    this.length = to;
  }

  /**
   * Go back to position `pos` (at most `length`), with `checkpoint` (exportRecurrent) the recurrent
   * state taken there: how speculative decoding drops rejected tokens from a recurrent sequence.
   */
  restoreTo(pos: number, checkpoint?: Float32Array): void {
    if (!(pos >= 0 && pos <= this.length)) fail(`restoreTo: position ${pos} is not in the cache (it holds ${this.length})`);
    if (this.recurrent && !checkpoint) fail(`restoreTo: a sequence with Gated DeltaNet layers needs the recurrent state at position ${pos}`);
    this.length = pos;
    if (checkpoint) this.importRecurrent(checkpoint);
  }
}

/**
 * Check a batch against the vocabulary and the caches; return each entry's attention length.
 * Positions of one sequence must continue its cache without gaps, in increasing order
 * (a position below the cache length rewinds it, as when a prompt is re-evaluated).
 */
export function checkBatch(batch: readonly BatchEntry[], caches: readonly KvCache[], vocab: number): void {
  if (batch.length === 0) fail('empty batch: nothing to evaluate');
  const next = caches.map((c) => c.length);
  const restart = new Set<number>();
  batch.forEach((e, i) => {
    if (!Number.isInteger(e.token) || e.token < 0 || e.token >= vocab) fail(`token id ${e.token} (batch entry ${i}) is out of range: the vocabulary has ${vocab} entries (0..${vocab - 1})`);
    const c = caches[e.seq];
    if (!c) fail(`batch entry ${i}: sequence ${e.seq} has no KV cache`);
    if (!Number.isInteger(e.pos) || e.pos < 0 || e.pos > next[e.seq]!) fail(`batch entry ${i}: position ${e.pos} of sequence ${e.seq} would leave a gap (the sequence holds ${next[e.seq]} positions)`);
    if (e.pos >= c.capacity) fail(`batch entry ${i}: position ${e.pos} is past the context size ${c.capacity}`);
    if (c.recurrent) {
      // Rewinding is refused here: a recurrent state cannot return to an earlier position
      // (only to 0, by starting over), and one a failed pass left half-updated is unusable.
      if (c.dirty) fail(`batch entry ${i}: sequence ${e.seq}'s recurrent state was left half-updated by a failed pass; start the sequence again`);
      if (e.pos < next[e.seq]!) {
        if (e.pos !== 0 || next[e.seq] !== c.length || restart.has(e.seq))
          fail(`batch entry ${i}: position ${e.pos} would rewind sequence ${e.seq} (it holds ${next[e.seq]} positions), but Gated DeltaNet states cannot be rewound; start again from position 0`);
        restart.add(e.seq);
      }
    }
    next[e.seq] = e.pos + 1;
  });
  caches.forEach((c, s) => c.reserve(next[s]!));
  for (const s of restart) caches[s]!.truncate(0);
  for (const e of batch) if (caches[e.seq]!.recurrent) caches[e.seq]!.dirty = true; // until commitBatch
}

/** Each sequence's batch rows, in order (the same for every layer of a pass). */
export function sequenceRows(batch: readonly BatchEntry[]): [seq: number, rows: Int32Array][] {
  const rows = new Map<number, number[]>();
  batch.forEach((e, t) => {
    let r = rows.get(e.seq);
    if (!r) rows.set(e.seq, (r = []));
    r.push(t);
  });
  return [...rows].map(([s, r]) => [s, Int32Array.from(r)]);
}

/** After checkBatch: each sequence's rows (sequenceRows) and its state for DeltaNet layer `layer`. */
export function recurrentSpans(rows: readonly [number, Int32Array][], caches: readonly KvCache[], layer: number): RecurrentSpan[] {
  return rows.map(([s, r]) => ({ rows: r, conv: caches[s]!.conv[layer]!, state: caches[s]!.state[layer]! }));
}

/** After checkBatch: write this layer's k, v rows [T, kvDim] into the caches, in each cache's type
 * (quantised as they are stored); return spans. */
export function storeKv(batch: readonly BatchEntry[], caches: readonly KvCache[], layer: number, k: Float32Array, v: Float32Array, kvDim: number, backend: Backend): AttnSpan[] {
  for (let t = 0; t < batch.length; ) {
    // a run of entries of one sequence at consecutive positions: one call
    const e = batch[t]!,
      c = caches[e.seq]!;
    let n = 1;
    while (t + n < batch.length && batch[t + n]!.seq === e.seq && batch[t + n]!.pos === e.pos + n) n++;
    backend.storeRows(c.k[layer]!, e.pos, k, t, n, kvDim, c.type);
    backend.storeRows(c.v[layer]!, e.pos, v, t, n, kvDim, c.type);
    t += n;
  }
  return batch.map((e) => {
    const c = caches[e.seq]!;
    return { k: c.k[layer]!, v: c.v[layer]!, len: e.pos + 1, type: c.type };
  });
}

/** Once the whole batch is evaluated: advance each cache's length. */
export function commitBatch(batch: readonly BatchEntry[], caches: readonly KvCache[]): void {
  for (const e of batch) {
    caches[e.seq]!.length = e.pos + 1; // entries of one sequence come in increasing order
    caches[e.seq]!.dirty = false;
  }
}
