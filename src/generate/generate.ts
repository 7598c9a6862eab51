// Generation of one sequence as an async iterator over the pure sampler: prefill the prompt in
// chunks, then sample and decode one token at a time. (The server's scheduler batches many.)
import type { CausalLM } from '../models/model.js';
import { Sequence, type FinishReason, type GenerateOptions, type Step } from './sequence.js';

export type { Constraint, FinishReason, GenerateOptions, Step } from './sequence.js';

/** Yields each generated token; the return value says why it stopped. */
export async function* generate(model: CausalLM, prompt: readonly number[], o: GenerateOptions): AsyncGenerator<Step, FinishReason> {
  const seq = new Sequence(model, prompt, o);
  try {
    while (!seq.finish) {
      const entries = seq.next(o.prefill_batch ?? 256);
      if (!entries.length) break;
      const logits = model.forward(entries.map((e) => ({ ...e, seq: 0 })), [seq.cache]);
      if (entries[entries.length - 1]!.logits) {
        const step = seq.step(logits);
        if (step) yield step;
      }
      await yieldToEventLoop();
    }
    return seq.finish ?? 'abort';
  } finally {
    seq.cache.release();
  }
}

// Let timers, sockets and abort signals run between tokens.
export const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));
