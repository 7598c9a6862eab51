// Continuous batching: every active request contributes its next tokens to one forward pass (a
// decode token each, plus prompt chunks within a token budget, shared round-robin), so
// concurrent requests advance together. Rows are independent, so a request's output does not
// depend on what else is in the batch.
import type { CausalLM } from '../models/model.js';
import type { BatchEntry } from '../models/kv_cache.js';
import { yieldToEventLoop } from './generate.js';
import { Sequence, type FinishReason, type GenerateOptions, type Step } from './sequence.js';

/** A request's steps as they come, read as an async iterator (by the Scheduler's and the engine client's consumers). */
export class StepQueue {
  private readonly queue: Step[] = [];
  private finished?: FinishReason;
  private error?: Error;
  private wake?: () => void;

  push(s: Step): void { this.queue.push(s); this.notify(); }
  /** the end: `f` 'error' makes the iterator throw `e` */
  close(f: FinishReason, e?: Error): void { this.finished = f; this.error = e; this.notify(); }
  get closed(): boolean { return this.finished !== undefined; }
  private notify(): void { this.wake?.(); this.wake = undefined; }

  /** `leave` runs when the consumer stops reading before the end (a client gone): it cancels the request. */
  async *iterate(leave: () => void): AsyncGenerator<Step, FinishReason> {
    try {
      for (;;) {
        if (this.queue.length) { yield this.queue.shift()!; continue; }
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
}

export class Scheduler implements Engine {
  readonly stats: SchedulerStats = { requests: 0, promptTokens: 0 };
  private active: Active[] = [];
  private waiting: Active[] = []; // beyond maxActive: admitted first come, first served
  private running = false;
  private turn = 0;

  /**
   * @param tokenBudget tokens per forward pass (decode steps plus prompt chunks)
   * @param maxActive sequences generating at once (each holds a KV cache); more wait their turn
   */
  constructor(private readonly model: CausalLM, private readonly tokenBudget = 256, readonly maxActive = DEFAULT_PARALLEL) {}

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
    this.stats.requests++;
    this.stats.promptTokens += prompt.length;
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
        for (const a of [...this.active, ...this.waiting]) { a.seq.cache.release(); a.q.close('error', e instanceof Error ? e : new Error(String(e))); }
        this.active = [];
        this.waiting = [];
      })
      .finally(() => { this.running = false; });
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
      while (this.active.length < this.maxActive && this.waiting.length) this.active.push(this.waiting.shift()!);
      if (!this.active.length) break;
      const act = this.active;
      const batch: BatchEntry[] = [];
      const wantsRow: (Active | undefined)[] = [];
      const add = (a: Active, i: number, entries: ReturnType<Sequence['next']>) => {
        for (const e of entries) {
          batch.push({ ...e, seq: i });
          if (e.logits) wantsRow.push(a);
        }
      };
      // decode steps first, then prompt chunks sharing what is left of the budget
      act.forEach((a, i) => { if (!a.seq.prefilling) add(a, i, a.seq.next(1)); });
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
          logits = this.model.forward(batch, act.map((a) => a.seq.cache));
        } catch (e) {
          // an engine fault ends every request in this batch (with the error) rather than hang them
          for (const a of act) a.seq.fail(e);
          logits = new Float32Array(0);
        }
        wantsRow.forEach((a, r) => {
          if (!a || a.seq.finish) return;
          try {
            const s = a.seq.step(logits.subarray(r * V, (r + 1) * V));
            if (s) a.q.push(s);
          } catch (e) {
            a.seq.fail(e); // e.g. a constraint that allows nothing: this request only
          }
        });
      }
      this.active = this.active.filter((a) => {
        if (!a.seq.finish) return true;
        a.seq.cache.release();
        a.q.close(a.seq.finish, a.seq.error);
        return false;
      });
      await yieldToEventLoop();
    }
  }
}
