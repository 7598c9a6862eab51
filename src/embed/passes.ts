// Many independent token sequences through shared forward passes: sorted by length (so a pass holds
// sequences of similar size), packed into passes of up to `tokenBudget` tokens, a long sequence
// split over several passes through its own KV cache. Each sequence asks for output rows at the
// positions `want` picks (embeddings: the last, the first or every one; reranking: the last).
import type { CausalLM, ForwardOutput } from '../models/model.js';
import type { BatchEntry, KvCache } from '../models/kv_cache.js';
import { yieldToEventLoop } from '../generate/generate.js';

export interface PassOptions {
  /** tokens per forward pass (default 1024) */
  tokenBudget?: number;
  /** sequences per forward pass, each holding a KV cache while it runs (default 64) */
  maxSequences?: number;
  signal?: AbortSignal;
}

/**
 * Evaluate every sequence; `onRow(s, pos, row)` receives sequence s's output row at each position
 * `want(pos, length)` picked (a view valid only during the call). Yields to the event loop between
 * passes, so a server keeps answering and generation requests keep their turns.
 */
export async function runSequences(
  model: CausalLM,
  seqs: readonly (readonly number[])[],
  output: ForwardOutput,
  want: (pos: number, length: number) => boolean,
  onRow: (s: number, pos: number, row: Float32Array) => void,
  opts: PassOptions = {},
): Promise<void> {
  const budget = Math.max(1, opts.tokenBudget ?? 1024),
    maxSeqs = Math.max(1, opts.maxSequences ?? 64);
  const width = output === 'hidden' ? model.config.hidden_size : model.config.vocab_size;
  const queue = seqs.map((_, i) => i).sort((a, b) => seqs[a]!.length - seqs[b]!.length);
  let head = 0,
    done = 0; // queue[head] has its first `done` positions evaluated
  let open: KvCache | undefined; // queue[head]'s cache while it is split over passes
  try {
    while (head < queue.length) {
      opts.signal?.throwIfAborted();
      const batch: BatchEntry[] = [],
        caches: KvCache[] = [],
        rows: [s: number, pos: number][] = [],
        finished: KvCache[] = [];
      let left = budget;
      while (head < queue.length && left > 0 && caches.length < maxSeqs) {
        const s = queue[head]!,
          ids = seqs[s]!,
          L = ids.length;
        const cache = open ?? model.newCache(L);
        const n = Math.min(L - done, left),
          seq = caches.push(cache) - 1;
        for (let pos = done; pos < done + n; pos++) {
          const logits = want(pos, L);
          batch.push({ token: ids[pos]!, pos, seq, logits });
          if (logits) rows.push([s, pos]);
        }
        left -= n;
        done += n;
        if (done < L) {
          open = cache;
          break;
        } // the budget ran out inside this sequence
        finished.push(cache);
        open = undefined;
        head++;
        done = 0;
      }
      try {
        const out = model.forward(batch, caches, output);
        rows.forEach(([s, pos], r) => onRow(s, pos, out.subarray(r * width, (r + 1) * width)));
      } finally {
        for (const c of finished) c.release(); // a WebAssembly heap does not collect garbage
      }
      await yieldToEventLoop();
    }
  } finally {
    open?.release();
  }
}
