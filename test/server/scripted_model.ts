// A model double for server tests: it "writes" a fixed script (chosen from the prompt text) token
// by token after the last `<|im_start|>assistant\n`, then <|im_end|>, so what the server makes of
// a model's output (reasoning, content, tool calls) can be checked exactly.
import { KvCache, type BatchEntry } from '../../src/models/kv_cache.js';
import type { CausalLM } from '../../src/models/model.js';
import { ReferenceBackend } from '../../src/backend/reference.js';
import { parseHfConfig } from '../../src/models/config.js';
import type { Tokenizer } from '../../src/tokenizer/tokenizer.js';

/** `fail`: a prompt token that makes the forward pass throw (engine-fault tests). */
export function scriptedModel(tok: Tokenizer, script: (prompt: string) => string, fail?: number): CausalLM {
  const IM_START = tok.tokenToId('<|im_start|>')!;
  const config = parseHfConfig(
    { model_type: 'qwen3', vocab_size: 151936, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 1, num_key_value_heads: 1, head_dim: 8, max_position_embeddings: 4096 },
    'scripted',
  );
  const backend = new ReferenceBackend();
  const seen = new Map<KvCache, number[]>();
  return {
    config,
    backend,
    newCache: (capacity = 4096) => new KvCache(backend, config, capacity),
    forward(batch: readonly BatchEntry[], caches: readonly KvCache[]) {
      const rows = batch.filter((e) => e.logits).length;
      const out = new Float32Array(rows * config.vocab_size);
      let r = 0;
      for (const e of batch) {
        if (e.token === fail) throw new Error('engine fault (test)');
        const c = caches[e.seq]!;
        const h = seen.get(c) ?? [];
        h.length = e.pos;
        h.push(e.token);
        seen.set(c, h);
        c.length = e.pos + 1;
        if (!e.logits) continue;
        const start = h.lastIndexOf(IM_START) + 3; // <|im_start|> assistant \n
        const prompt = tok.decode(h.slice(0, start));
        const want = [...tok.encode(script(prompt)), tok.tokenToId('<|im_end|>')!];
        out[r++ * config.vocab_size + want[Math.min(h.length - start, want.length - 1)]!] = 100;
      }
      return out;
    },
  };
}
