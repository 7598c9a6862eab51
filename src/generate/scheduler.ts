// Continuous batching: every active request contributes its next tokens to one forward pass (a
// decode token each, plus prompt chunks within a token budget, shared round-robin), so
// concurrent requests advance together. Rows are independent, so a request's output does not
// depend on what else is in the batch. With a prefix cache (prefix_cache.ts), a request starts
// from the longest cached prefix of its prompt, and finished prompts and sequences leave theirs.
import type { CausalLM } from '../models/model.js';
import type { BatchEntry } from '../models/kv_cache.js';
import { yieldToEventLoop } from './generate.js';
import { BLOCK, PrefixCache, sameRows, type PrefixCacheStats } from './prefix_cache.js';
import { Sequence, type FinishReason, type GenerateOptions, type Step } from './sequence.js';
import { proposerFor, type Proposer, type Speculation } from './spec_propose.js';

/** A request's steps as they come, read as an async iterator (by the Scheduler's and the engine client's consumers). */
export class StepQueue {
  private readonly queue: Step[] = [];
  private finished?: FinishReason;
  private error?: Error;
  private wake?: () => void;

  push(s: Step): void {
    this.queue.push(s);
    this.notify();
  }
  /** the end: `f` 'error' makes the iterator throw `e` */
  close(f: FinishReason, e?: Error): void {
    this.finished = f;
    this.error = e;
    this.notify();
  }
  get closed(): boolean {
    return this.finished !== undefined;
  }
  private notify(): void {
    this.wake?.();
    this.wake = undefined;
  }

  /** `leave` runs when the consumer stops reading before the end (a client gone): it cancels the request. */
  async *iterate(leave: () => void): AsyncGenerator<Step, FinishReason> {
    try {
      for (;;) {
        if (this.queue.length) {
          yield this.queue.shift()!;
          continue;
        }
        if (this.finished === 'error') throw this.error ?? new Error('generation failed');
        if (this.finished) return this.finished;
        await new Promise<void>((r) => (this.wake = r));
      }
    } finally {
      if (!this.finished) leave();
    }
  }
}

interface Active {
  seq: Sequence;
  q: StepQueue;
  /** prefix cache: the latest recurrent-state checkpoint at a block boundary, and whether the prompt's blocks were kept */
  snap?: { pos: number; data: Float32Array };
  keptPrompt?: boolean;
}

/**
 * What the chat layer drives: a Scheduler in this thread, or the client of one on an engine thread
 * (src/engine/client.ts), so the HTTP thread never runs a forward pass.
 */
export interface Engine {
  /** Queue a generation; throws at once on bad parameters. Leaving the iteration early cancels it. */
  submit(prompt: readonly number[], o: GenerateOptions): AsyncGenerator<Step, FinishReason>;
  /** requests generating or waiting */
  readonly load: number;
  /** requests generating now */
  readonly activeCount: number;
  readonly maxActive: number;
  /** counters since start (an engine thread's as of its last finished request) */
  readonly stats: SchedulerStats;
}

/** requests generating at once unless told otherwise (serve --parallel) */
export const DEFAULT_PARALLEL = 8;

/** Counters since start (the server's metrics read them). */
export interface SchedulerStats {
  /** requests submitted, and their prompt tokens */
  requests: number;
  promptTokens: number;
  /** requests started with / without a cached prefix, and the prompt tokens restored from it */
  prefixHits: number;
  prefixMisses: number;
  cachedTokens: number;
  /** the prefix cache's memory and contents (absent when it is off) */
  prefixCache?: PrefixCacheStats;
  /** speculative decoding (absent when off): tokens proposed, and those the target kept, in finished requests */
  speculation?: { proposed: number; accepted: number };
}

export class Scheduler implements Engine {
  private readonly counters = { requests: 0, promptTokens: 0, prefixHits: 0, prefixMisses: 0, cachedTokens: 0 };
  private readonly specCounters = { proposed: 0, accepted: 0 };
  /** speculative decoding's proposals (spec_propose.ts); absent when off */
  private readonly proposer?: Proposer;
  /** reuses the keys and values of earlier prompts' prefixes (prefix_cache.ts); absent when off */
  readonly prefix?: PrefixCache;
  private active: Active[] = [];
  private waiting: Active[] = []; // beyond maxActive: admitted first come, first served
  private running = false;
  private turn = 0;

  /**
   * @param tokenBudget tokens per forward pass (decode steps plus prompt chunks)
   * @param maxActive sequences generating at once (each holds a KV cache); more wait their turn
   * @param prefixCacheBytes memory for the prefix cache (0: none); a budget too small for one block is an error
   * @param spec speculative decoding: proposals verified in each decoding sequence's pass (spec.ts)
   */
  constructor(
    private readonly model: CausalLM,
    private readonly tokenBudget = 256,
    readonly maxActive = DEFAULT_PARALLEL,
    prefixCacheBytes = 0,
    spec?: Speculation,
  ) {
    if (prefixCacheBytes > 0) this.prefix = PrefixCache.for(model.newCache(1), prefixCacheBytes);
    if (spec) this.proposer = proposerFor(spec, model);
  }

  get stats(): SchedulerStats {
    return { ...this.counters, ...(this.prefix && { prefixCache: this.prefix.stats() }), ...(this.proposer && { speculation: { ...this.specCounters } }) };
  }

  /** requests generating or waiting */
  get load(): number {
    return this.active.length + this.waiting.length;
  }

  /** requests generating now */
  get activeCount(): number {
    return this.active.length;
  }

  /**
   * Queue a generation. Throws at once on bad parameters; the returned iterator yields steps and
   * returns the finish reason. Leaving the iteration early (a client gone) cancels the request.
   */
  submit(prompt: readonly number[], o: GenerateOptions): AsyncGenerator<Step, FinishReason> {
    const cancel = new AbortController();
    const signal = o.signal ? AbortSignal.any([o.signal, cancel.signal]) : cancel.signal;
    const seq = new Sequence(this.model, prompt, { ...o, signal });
    this.counters.requests++;
    this.counters.promptTokens += prompt.length;
    const q = new StepQueue();
    this.waiting.push({ seq, q });
    this.kick();
    return q.iterate(() => cancel.abort());
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    void this.loop()
      .catch((e: unknown) => {
        // a fault outside any one request: end them all with the error rather than hang them
        for (const a of [...this.active, ...this.waiting]) {
          this.release(a.seq);
          a.q.close('error', e instanceof Error ? e : new Error(String(e)));
        }
        this.active = [];
        this.waiting = [];
      })
      .finally(() => {
        this.running = false;
      });
  }

  private async loop(): Promise<void> {
    const V = this.model.config.vocab_size;
    for (;;) {
      // admit waiting requests (dropping those cancelled while they waited)
      this.waiting = this.waiting.filter((a) => {
        if (!a.seq.o.signal?.aborted) return true;
        a.q.close('abort');
        return false;
      });
      for (let i = 0; i < this.waiting.length && this.active.length < this.maxActive; ) {
        if (this.awaitsPrefix(this.waiting[i]!)) {
          i++;
          continue;
        }
        this.active.push(this.admit(this.waiting.splice(i, 1)[0]!));
      }
      if (!this.active.length) break;
      const act = this.active;
      if (this.proposer) {
        try {
          this.proposer.propose(act.map((a) => a.seq));
        } catch (e) {
          for (const a of act) a.seq.fail(e); // the draft model failed: as an engine fault
        }
      }
      const batch: BatchEntry[] = [];
      const rowsOf: [Active, number][] = []; // each sequence's logits rows, in batch order
      const add = (a: Active, i: number, entries: ReturnType<Sequence['next']>) => {
        const adapter = a.seq.o.adapter; // each row runs with its request's LoRA adapter
        for (const e of entries) batch.push(adapter === undefined ? { ...e, seq: i } : { ...e, seq: i, adapter });
        const n = entries.filter((e) => e.logits).length;
        if (n) rowsOf.push([a, n]);
      };
      // decode steps first, then prompt chunks sharing what is left of the budget
      act.forEach((a, i) => {
        if (!a.seq.prefilling) add(a, i, a.seq.next(1));
      });
      const pre = act.map((a, i) => [a, i] as const).filter(([a]) => a.seq.prefilling && !a.seq.finish);
      let budget = Math.max(this.tokenBudget - batch.length, pre.length);
      for (let k = 0; k < pre.length; k++) {
        const [a, i] = pre[(k + this.turn) % pre.length]!;
        const entries = a.seq.next(Math.max(1, Math.floor(budget / (pre.length - k))));
        budget -= entries.length;
        add(a, i, entries);
      }
      this.turn++;
      if (batch.length) {
        let logits: Float32Array;
        try {
          logits = this.model.forward(
            batch,
            act.map((a) => a.seq.cache),
          );
        } catch (e) {
          // an engine fault ends every request in this batch (with the error) rather than hang them
          for (const a of act) a.seq.fail(e);
          logits = new Float32Array(0);
        }
        let r = 0;
        for (const [a, n] of rowsOf) {
          const rows = Array.from({ length: n }, (_, j) => logits.subarray((r + j) * V, (r + j + 1) * V));
          r += n;
          if (a.seq.finish) continue;
          try {
            for (const s of a.seq.advance(rows)) a.q.push(s);
          } catch (e) {
            a.seq.fail(e); // e.g. a constraint that allows nothing: this request only
          }
        }
        if (this.prefix) for (const a of act) this.keep(this.prefix, a);
      }
      this.active = this.active.filter((a) => {
        if (!a.seq.finish) return true;
        if (this.prefix && a.seq.finish !== 'error') this.prefix.insert(a.seq.evaluated(), a.seq.cache, a.snap, a.seq.o.adapter, a.seq.o.images);
        this.release(a.seq);
        a.q.close(a.seq.finish, a.seq.error);
        return false;
      });
      await yieldToEventLoop();
    }
  }

  /** A sequence has ended: its caches go back, its speculation counts are added up. */
  private release(seq: Sequence): void {
    seq.cache.release();
    this.proposer?.release(seq);
    this.specCounters.proposed += seq.proposed;
    this.specCounters.accepted += seq.accepted;
  }

  /**
   * Whether a waiting request should let a prompt being prefilled now finish first: one that shares
   * most of its prompt (n choices of one request, the same prompt sent twice) then restores it from
   * the prefix cache instead of computing it alongside. Others are admitted past it meanwhile.
   */
  private awaitsPrefix(a: Active): boolean {
    if (!this.prefix) return false;
    const p = a.seq.prompt,
      need = Math.max(BLOCK, p.length / 2);
    return this.active.some(({ seq: b }) => {
      if (!b.prefilling || b.finish || b.prompt.length < need || b.o.adapter !== a.seq.o.adapter) return false;
      let n = 0;
      while (n < p.length && n < b.prompt.length && p[n] === b.prompt[n]) n++;
      return sameRows(a.seq.o.images, b.o.images, n) >= need; // the same pads behind other images share nothing
    });
  }

  /** A request takes its slot: it starts from its prompt's longest cached prefix. */
  private admit(a: Active): Active {
    const seq = a.seq;
    if (this.prefix) {
      try {
        seq.resume(this.prefix);
      } catch (e) {
        seq.fail(e);
      }
      if (seq.cached) this.counters.prefixHits++;
      else this.counters.prefixMisses++;
      this.counters.cachedTokens += seq.cached;
      // A recurrent state exists only where a pass ends: passes end at the prompt's last block
      // boundary short of its last token (where a request with this prompt resumes) and the one
      // before it (where the next turn of a chat does: its template renders the previous answer
      // without the generation prompt's last few tokens, e.g. Qwen3.5's empty think block).
      const last = Math.floor((seq.prompt.length - 1) / BLOCK) * BLOCK;
      if (seq.cache.recurrent) seq.stopAt = [last - BLOCK, last].filter((p) => p > seq.cached);
    }
    seq.o.onCached?.(seq.cached);
    return a;
  }

  /** After a pass: keep a finished prompt's blocks, and a recurrent model's state at block boundaries. */
  private keep(prefix: PrefixCache, a: Active): void {
    const seq = a.seq,
      c = seq.cache;
    if (seq.finish === 'error' || c.length === 0) return;
    if (!c.recurrent) {
      if (!seq.prefilling && !a.keptPrompt) prefix.insert(seq.evaluated(), c, undefined, seq.o.adapter, seq.o.images);
      a.keptPrompt ||= !seq.prefilling;
      return;
    }
    if (c.length % BLOCK !== 0 || c.length === a.snap?.pos) return;
    if (seq.stopAt.includes(c.length)) prefix.insert(seq.evaluated(), c, { pos: c.length, data: c.exportRecurrent() }, seq.o.adapter, seq.o.images);
    else a.snap = { pos: c.length, data: c.exportRecurrent(a.snap?.data) }; // the latest one, kept when the sequence ends
  }
}
