// Per-sequence key/value cache, and the batch of (token, position, sequence) entries a forward
// pass consumes, in the manner of llama.cpp's llama_batch: cache slot = position.
import { fail } from '../errors.js';
import type { AttnSpan, Backend } from '../backend/backend.js';
import type { QwenConfig } from './config.js';

export interface BatchEntry {
  token: number;
  pos: number;
  /** index into the caches array passed to forward */
  seq: number;
  /** whether logits are wanted for this entry */
  logits: boolean;
}

export class KvCache {
  readonly k: Float32Array[] = []; // per layer [allocated, kvHeads*headDim]
  readonly v: Float32Array[] = [];
  /** positions 0..length-1 hold valid keys and values */
  length = 0;
  /** positions storage exists for; grows by doubling up to `capacity` */
  allocated = 0;
  private readonly kvDim: number;
  constructor(private readonly backend: Backend, cfg: QwenConfig, readonly capacity: number) {
    this.kvDim = cfg.num_key_value_heads * cfg.head_dim;
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      this.k.push(new Float32Array(0)); // storage comes with reserve()
      this.v.push(new Float32Array(0));
    }
  }

  /** Make room for positions 0..n-1 (a long context costs memory only when it is used). */
  reserve(n: number): void {
    if (n <= this.allocated) return;
    const size = Math.min(this.capacity, Math.max(n, this.allocated * 2, 64));
    for (let l = 0; l < this.k.length; l++) {
      for (const kv of [this.k, this.v]) {
        const grown = this.backend.alloc(size * this.kvDim);
        if (this.allocated > 0) {
          this.backend.copy(grown, 0, kv[l]!, 0, this.length * this.kvDim);
          this.backend.free?.(kv[l]!);
        }
        kv[l] = grown;
      }
    }
    this.allocated = size;
  }

  /** Give the storage back to the backend (a WebAssembly heap does not collect garbage). */
  release(): void {
    if (this.allocated > 0) for (const kv of [this.k, this.v]) kv.forEach((a, l) => { this.backend.free?.(a); kv[l] = new Float32Array(0); });
    this.allocated = 0;
    this.length = 0;
  }

  /** forget everything from position `pos` on */
  truncate(pos: number): void {
    this.length = Math.min(this.length, Math.max(0, pos));
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
  batch.forEach((e, i) => {
    if (!Number.isInteger(e.token) || e.token < 0 || e.token >= vocab) fail(`token id ${e.token} (batch entry ${i}) is out of range: the vocabulary has ${vocab} entries (0..${vocab - 1})`);
    const c = caches[e.seq];
    if (!c) fail(`batch entry ${i}: sequence ${e.seq} has no KV cache`);
    if (!Number.isInteger(e.pos) || e.pos < 0 || e.pos > next[e.seq]!) fail(`batch entry ${i}: position ${e.pos} of sequence ${e.seq} would leave a gap (the sequence holds ${next[e.seq]} positions)`);
    if (e.pos >= c.capacity) fail(`batch entry ${i}: position ${e.pos} is past the context size ${c.capacity}`);
    next[e.seq] = e.pos + 1;
  });
  caches.forEach((c, s) => c.reserve(next[s]!));
}

/** After checkBatch: write this layer's k, v rows [T, kvDim] into the caches; return spans. */
export function storeKv(batch: readonly BatchEntry[], caches: readonly KvCache[], layer: number, k: Float32Array, v: Float32Array, kvDim: number, backend: Backend): AttnSpan[] {
  batch.forEach((e, t) => {
    const c = caches[e.seq]!;
    backend.copy(c.k[layer]!, e.pos * kvDim, k, t * kvDim, kvDim);
    backend.copy(c.v[layer]!, e.pos * kvDim, v, t * kvDim, kvDim);
  });
  return batch.map((e) => ({ k: caches[e.seq]!.k[layer]!, v: caches[e.seq]!.v[layer]!, len: e.pos + 1 }));
}

/** Once the whole batch is evaluated: advance each cache's length. */
export function commitBatch(batch: readonly BatchEntry[], caches: readonly KvCache[]): void {
  for (const e of batch) {
    caches[e.seq]!.length = e.pos + 1; // entries of one sequence come in increasing order
  }
}
