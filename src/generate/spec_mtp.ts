// Proposals from the target's own multi-token-prediction block (--spec mtp; the block and its math:
// src/models/mtp.ts). Each pass, for every decoding sequence: the pairs (h_i, x_{i+1}) the target
// has finished since the last one enter the block's KV cache (prompt chunks a pass after the target
// prefills them; after a verification, the accepted tokens and the target's own); the last pair,
// i = n-2 for a text of n tokens, drafts x_n; each further draft feeds the block its own output
// and draft one position on, and those speculative entries leave the cache again. A rejected draft
// never reached the block's cache as a pair, so the only rollback is that truncation.
import type { MtpHead } from '../models/mtp.js';
import type { BatchEntry, KvCache } from '../models/kv_cache.js';
import { distribution, draw, Rng, type Choice } from './sampler.js';
import type { Sequence } from './sequence.js';
import type { Proposer } from './spec_propose.js';

/** proposals per step with --spec mtp unless --draft-max says otherwise: one block chained on its
 * own output drifts from what it was trained on (the next token's next), so acceptance falls fast */
export const DEFAULT_MTP_MAX = 2;

interface MtpState {
  /** the block's keys and values: entry j holds the pair at position base + j */
  cache: KvCache;
  /** the target's final-norm hidden states by position, until their pair enters the cache */
  hidden: Map<number, Float32Array>;
  /** the first position with a hidden state: those a prefix cache restored were never computed */
  base: number;
  rng: Rng;
}

interface Work {
  s: Sequence;
  st: MtpState;
  /** the text's length */
  n: number;
  room: number;
  props: number[];
  qs: Choice[];
  /** the block's output row for the last draft (fed back for the next) */
  g?: Float32Array;
}

export class MtpProposer implements Proposer {
  private readonly states = new Map<Sequence, MtpState>();

  constructor(
    private readonly head: MtpHead,
    private readonly max: number,
  ) {}

  propose(seqs: readonly Sequence[]): void {
    const work: Work[] = [],
      batch: BatchEntry[] = [],
      rows: Float32Array[] = [];
    for (const s of seqs) {
      if (s.finish) continue;
      const st = this.state(s),
        text = s.text(),
        n = text.length;
      const from = st.base + st.cache.length;
      let upto = from; // pairs (h_i, x_{i+1}) for from <= i < upto
      while (upto + 1 < n && st.hidden.has(upto)) upto++;
      // drafts come from the pair at n-2, evaluated now
      const room = upto === n - 1 && upto > from ? Math.min(this.max, s.specRoom) : 0;
      const w = work.push({ s, st, n, room, props: [], qs: [] }) - 1;
      for (let i = from; i < upto; i++) {
        batch.push({ token: text[i + 1]!, pos: i - st.base, seq: w, logits: room > 0 && i === upto - 1 });
        rows.push(st.hidden.get(i)!);
        st.hidden.delete(i);
      }
    }
    if (!batch.length) return;
    let wanting = work.filter((w) => w.room > 0);
    this.pass(batch, rows, work, wanting);
    for (;;) {
      wanting = wanting.filter((w) => w.props.length < w.room);
      if (!wanting.length) break;
      this.pass(
        wanting.map((w) => ({ token: w.props[w.props.length - 1]!, pos: w.n - 2 + w.props.length - w.st.base, seq: work.indexOf(w), logits: true })),
        wanting.map((w) => w.g!),
        work,
        wanting,
      );
    }
    for (const w of work) {
      if (!w.props.length) continue;
      w.st.cache.truncate(w.n - 1 - w.st.base); // the drafts' own entries: speculative
      w.s.propose(w.props, w.qs);
    }
  }

  release(seq: Sequence): void {
    const st = this.states.get(seq);
    if (!st) return;
    st.cache.release();
    this.head.untrack(seq.cache);
    this.states.delete(seq);
  }

  /** One pass of the block; `wanting` (in batch order) each draw a proposal from their logits row. */
  private pass(batch: BatchEntry[], rows: readonly Float32Array[], work: readonly Work[], wanting: readonly Work[]): void {
    const D = this.head.target.config.hidden_size,
      V = this.head.target.config.vocab_size;
    const hidden = new Float32Array(rows.length * D);
    rows.forEach((r, t) => hidden.set(r, t * D));
    const out = this.head.forward(
      batch,
      hidden,
      work.map((w) => w.st.cache),
    );
    wanting.forEach((w, r) => {
      const row = out.logits.subarray(r * V, (r + 1) * V);
      if (w.s.o.vocab_limit !== undefined) row.fill(-Infinity, w.s.o.vocab_limit);
      const q = distribution(row, w.s.o, { prompt: w.s.prompt, generated: [...w.s.generated, ...w.props] });
      w.props.push(draw(q, w.st.rng));
      w.qs.push(q);
      w.g = out.hidden.subarray(r * D, (r + 1) * D);
    });
  }

  private state(s: Sequence): MtpState {
    let st = this.states.get(s);
    if (!st) {
      // positions the target has already evaluated (a prefix-cache hit) have no hidden states: the
      // block's cache starts after them (RoPE is relative, so only their absence differs)
      st = { cache: this.head.newCache(s.cache.capacity), hidden: this.head.track(s.cache), base: s.progress, rng: new Rng((s.o.seed ?? Math.floor(Math.random() * 2 ** 32)) + 0x6d7470) };
      this.states.set(s, st);
    }
    return st;
  }
}
