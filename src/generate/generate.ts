// Generation of one sequence as an async iterator over the pure sampler: prefill the prompt in
// chunks, then sample and decode one token at a time, or verify a few proposed tokens per pass
// with speculative decoding (spec.ts). (The server's scheduler batches many.)
import type { CausalLM } from '../models/model.js';
import { Sequence, type FinishReason, type GenerateOptions, type Step } from './sequence.js';
import { proposerFor, type Speculation } from './spec_propose.js';

export type { Constraint, FinishReason, GenerateOptions, Step } from './sequence.js';
export type { Speculation } from './spec_propose.js';

/** Yields each generated token; the return value says why it stopped. `spec`: speculative decoding (the same tokens greedy; the same distribution sampled). */
export async function* generate(model: CausalLM, prompt: readonly number[], o: GenerateOptions, spec?: Speculation): AsyncGenerator<Step, FinishReason> {
  const seq = new Sequence(model, prompt, o);
  const proposer = spec && proposerFor(spec, model);
  const V = model.config.vocab_size;
  try {
    while (!seq.finish) {
      proposer?.propose([seq]);
      const entries = seq.next(o.prefill_batch ?? 256);
      if (!entries.length) break;
      const logits = model.forward(
        entries.map((e) => ({ ...e, seq: 0, adapter: o.adapter })), // absent: the model's default adapter
        [seq.cache],
      );
      const n = entries.filter((e) => e.logits).length;
      yield* seq.advance(Array.from({ length: n }, (_, r) => logits.subarray(r * V, (r + 1) * V)));
      await yieldToEventLoop();
    }
    return seq.finish ?? 'abort';
  } finally {
    seq.cache.release();
    proposer?.release(seq);
  }
}

// Let timers, sockets and abort signals run between tokens.
// setImmediate where the runtime has it (Node, Bun, Deno); a browser has none, and its setTimeout(0)
// waits 4 ms once nested: a message to itself lets queued messages (an abort) in with no delay
export const yieldToEventLoop =
  typeof setImmediate === 'function'
    ? () => new Promise<void>((r) => setImmediate(r))
    : () =>
        new Promise<void>((r) => {
          const c = new MessageChannel();
          c.port1.onmessage = () => {
            c.port1.close();
            r();
          };
          c.port2.postMessage(0);
        });
