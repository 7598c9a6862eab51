// Where speculative proposals come from, for every decoding sequence of a batch before the target's
// pass (Scheduler, generate()): an n-gram lookup in each sequence's own text, or a draft model (a
// smaller model with the same vocabulary) run on the same thread, with a KV cache per sequence.
import type { CausalLM } from '../models/model.js';
import type { MtpHead } from '../models/mtp.js';
import type { BatchEntry, KvCache } from '../models/kv_cache.js';
import { distribution, draw, Rng, type Choice } from './sampler.js';
import type { Sequence } from './sequence.js';
import { DEFAULT_DRAFT_MAX, DEFAULT_P_MIN, ngramProposal, SpecMark } from './spec.js';
import { DEFAULT_MTP_MAX, MtpProposer } from './spec_mtp.js';

/**
 * How an engine speculates: prompt lookup, a loaded draft model, or the target's MTP block
 * (spec_mtp.ts); `max` tokens proposed per step; `pMin`: a draft stops where its top token's
 * probability (softmax of its logits) is below this.
 */
export type Speculation = { method: 'ngram'; max?: number } | { method: 'draft'; model: CausalLM; max?: number; pMin?: number } | { method: 'mtp'; head: MtpHead; max?: number };

export interface Proposer {
  /** Give each decoding sequence its proposals for the coming pass (Sequence.propose). */
  propose(seqs: readonly Sequence[]): void;
  /** A sequence has ended: free what was kept for it. */
  release(seq: Sequence): void;
}

export function proposerFor(spec: Speculation, target: CausalLM): Proposer {
  if (spec.method === 'mtp') return new MtpProposer(spec.head, spec.max ?? DEFAULT_MTP_MAX);
  const max = spec.max ?? DEFAULT_DRAFT_MAX;
  return spec.method === 'ngram' ? new NgramProposer(max) : new DraftProposer(spec.model, target, max, spec.pMin ?? DEFAULT_P_MIN);
}

export class NgramProposer implements Proposer {
  constructor(private readonly max: number) {}
  propose(seqs: readonly Sequence[]): void {
    for (const s of seqs) if (s.specRoom > 0) s.propose(ngramProposal(s.text(), Math.min(this.max, s.specRoom)));
  }
  release(): void {}
}

interface DraftState {
  cache: KvCache;
  mark: SpecMark;
  rng: Rng;
  /** the text's length when the last proposals were made, and the proposals the draft evaluated after it */
  base: number;
  tail: number[];
}

interface Work {
  s: Sequence;
  st: DraftState;
  text: number[];
  room: number;
  props: number[];
  qs: Choice[];
}

/**
 * A draft model proposing for every decoding sequence at once: one pass catches each draft cache up
 * with its sequence's text (prompt chunks while the target prefills them, a pass later) and gives
 * every first proposal; each further proposal is one more pass over the sequences that want it.
 * Proposals are drawn from the draft's distribution under the request's sampling parameters, which
 * go with them for the target's rejection sampling (greedy: the draft's argmax).
 */
export class DraftProposer implements Proposer {
  private readonly states = new Map<Sequence, DraftState>();
  /** ids both models have rows for (the target's padding rows may differ) */
  private readonly limit: number;

  constructor(
    private readonly draft: CausalLM,
    target: CausalLM,
    private readonly max: number,
    private readonly pMin: number,
  ) {
    this.limit = Math.min(draft.config.vocab_size, target.config.vocab_size);
  }

  propose(seqs: readonly Sequence[]): void {
    const work: Work[] = [];
    const first: BatchEntry[] = [];
    for (const s of seqs) {
      if (s.finish) continue;
      const st = this.state(s),
        text = s.text(),
        cap = st.cache.capacity;
      this.sync(st, text);
      const upto = Math.min(s.prefilling ? s.progress : text.length, cap);
      let room = s.prefilling || text.length > cap ? 0 : Math.min(this.max, s.specRoom, cap - text.length + 1);
      if (st.cache.length >= upto) room = 0; // nothing new to evaluate (no row to propose from)
      const i = work.push({ s, st, text, room, props: [], qs: [] }) - 1;
      for (let p = st.cache.length; p < upto; p++) first.push({ token: text[p]!, pos: p, seq: i, logits: room > 0 && p === upto - 1 });
    }
    if (!first.length) return;
    this.pass(
      first,
      work,
      work.filter((w) => w.room > 0),
    );
    for (const w of work) if (w.room > 1) w.st.mark.mark(w.st.cache); // proposals enter the draft cache from here
    for (;;) {
      const more = work.filter((w) => w.props.length < w.room);
      if (!more.length) break;
      this.pass(
        more.map((w) => ({ token: w.props[w.props.length - 1]!, pos: w.text.length + w.props.length - 1, seq: work.indexOf(w), logits: true })),
        work,
        more,
      );
    }
    for (const w of work) {
      if (!w.props.length) continue;
      w.s.propose(w.props, w.qs);
      w.st.base = w.text.length;
      w.st.tail = w.props.slice(0, -1);
    }
  }

  release(seq: Sequence): void {
    this.states.get(seq)?.cache.release();
    this.states.delete(seq);
  }

  /** One draft pass; `wanting` (in batch order) each get the proposal its logits row gives, unless the draft is unsure there (pMin): then it proposes no more. */
  private pass(batch: BatchEntry[], work: readonly Work[], wanting: readonly Work[]): void {
    const logits = this.draft.forward(
      batch,
      work.map((w) => w.st.cache),
    );
    const V = this.draft.config.vocab_size;
    wanting.forEach((w, r) => {
      const row = logits.subarray(r * V, (r + 1) * V);
      row.fill(-Infinity, Math.min(this.limit, w.s.o.vocab_limit ?? Infinity));
      if (this.pMin > 0 && topProbability(row) < this.pMin) {
        w.room = w.props.length;
        return;
      }
      const q = distribution(row, w.s.o, { prompt: w.s.prompt, generated: [...w.s.generated, ...w.props] });
      w.props.push(draw(q, w.st.rng));
      w.qs.push(q);
    });
  }

  private state(s: Sequence): DraftState {
    let st = this.states.get(s);
    if (!st) {
      const cache = this.draft.newCache(Math.min(s.cache.capacity, this.draft.config.max_position_embeddings));
      st = { cache, mark: new SpecMark(), rng: new Rng((s.o.seed ?? Math.floor(Math.random() * 2 ** 32)) + 0x2545f491), base: 0, tail: [] };
      this.states.set(s, st);
    }
    return st;
  }

  /** Drop the proposals the target did not keep from the draft cache. */
  private sync(st: DraftState, text: readonly number[]): void {
    if (!st.tail.length) return;
    let m = 0;
    while (m < st.tail.length && text[st.base + m] === st.tail[m]) m++;
    st.mark.rewind(st.cache, st.base + m);
    st.tail = [];
  }
}

/** The softmax's largest probability. */
function topProbability(logits: Float32Array): number {
  let max = -Infinity,
    sum = 0;
  for (const v of logits) if (v > max) max = v;
  for (const v of logits) sum += Math.exp(v - max);
  return 1 / sum;
}
