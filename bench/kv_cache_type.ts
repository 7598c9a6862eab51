// KV-cache types (--cache-type, issue 13 item 4): bytes per token for each type on a few Qwen shapes
// (computed from the layout: 2 x attention layers x a row of kv_heads x head_dim values, rows padded
// to 4 bytes), and speed at a long context on a random-weight Qwen2.5-0.5B-shaped Q8_0 file (or
// --model): one model, one cache per type, each prefilled with the same --prompt-tokens prompt,
// then greedy decoding in interleaved chunks (8 tokens of f32, of f16, of q8_0, again ...) up to
// --gen-tokens each, so that a shared, noisy machine's load falls on every type alike; the figures
// are medians of the chunks' rates. By hand:
//   node dist/bench/kv_cache_type.js [--model DIR] [--threads 2] [--prompt-tokens 2000] [--gen-tokens 64] [--json]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { KV_TYPES, kvRowWords, type KvType } from '../src/backend/backend.js';
import { createBackend } from '../src/backend/index.js';
import { benchPrompt } from '../src/cli/bench.js';
import { KvCache } from '../src/models/kv_cache.js';
import { loadModel } from '../src/models/load.js';
import { writeRandomQwen2 } from '../test/engine/random_model.js';
import { median } from './peer_common.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    threads: { type: 'string', default: '2' },
    'prompt-tokens': { type: 'string', default: '2000' },
    'gen-tokens': { type: 'string', default: '64' },
    chunk: { type: 'string', default: '8' },
    json: { type: 'boolean' },
  },
});

// attention layers, kv heads, head_dim (Qwen3.5: one layer in four is attention)
const SHAPES: [string, number, number, number][] = [
  ['Qwen2.5-0.5B', 24, 2, 64],
  ['Qwen2.5-7B', 28, 4, 128],
  ['Qwen3-30B-A3B', 48, 4, 128],
  ['Qwen3.5-0.8B (6 of 24 layers attention)', 6, 2, 256],
];
const perToken = (t: KvType, layers: number, kvHeads: number, Dh: number) => 2 * layers * 4 * kvRowWords(t, kvHeads * Dh);
const memory = SHAPES.map(([name, l, h, d]) => ({ name, bytes: Object.fromEntries(KV_TYPES.map((t) => [t, perToken(t, l, h, d)])) as Record<KvType, number> }));

const own = values.model === undefined;
const dir = values.model ?? writeRandomQwen2(fs.mkdtempSync(path.join(os.tmpdir(), 'qwen-ts-bench-kv-')));
const threads = Number(values.threads),
  P = Number(values['prompt-tokens']),
  G = Number(values['gen-tokens']),
  chunk = Number(values.chunk);
const backend = createBackend('wasm', threads);
const argmax = (a: Float32Array) => a.reduce((b, x, i) => (x > a[b]! ? i : b), 0);

try {
  const model = loadModel(dir, { backend, onNote: () => {} });
  const prompt = benchPrompt(P, model.config.vocab_size);
  // the model does not depend on the cache type: one set of weights, a cache of each type
  const seqs = KV_TYPES.map((type) => ({ type, cache: new KvCache(backend, { ...model.config, kv_cache_type: type }, P + G + 1), tokens: [] as number[], prefillS: 0, rates: [] as number[] }));
  for (const s of seqs) {
    const t0 = performance.now();
    const l = model.forward(
      prompt.map((token, pos) => ({ token, pos, seq: 0, logits: pos === P - 1 })),
      [s.cache],
    );
    s.prefillS = (performance.now() - t0) / 1000;
    s.tokens.push(argmax(l));
    process.stderr.write(`${s.type}: prefill ${(P / s.prefillS).toFixed(1)} tok/s\n`);
  }
  for (let done = 1, r = 0; done < G; done += chunk, r++) {
    for (let i = 0; i < seqs.length; i++) {
      const s = seqs[(i + r) % seqs.length]!; // each round starts with another type
      const n = Math.min(chunk, G - done),
        t0 = performance.now();
      for (let j = 0; j < n; j++) {
        const pos = P + s.tokens.length - 1;
        s.tokens.push(argmax(model.forward([{ token: s.tokens.at(-1)!, pos, seq: 0, logits: true }], [s.cache])));
      }
      s.rates.push(n / ((performance.now() - t0) / 1000));
    }
  }
  const speed = Object.fromEntries(
    seqs.map((s) => {
      let agree = 0;
      while (agree < s.tokens.length && s.tokens[agree] === seqs[0]!.tokens[agree]) agree++;
      return [s.type, { prefill_tps: P / s.prefillS, decode_tps: median(s.rates), decode_chunks: s.rates.map((x) => +x.toFixed(2)), greedy_agree_with_f32: agree }];
    }),
  ) as Record<KvType, { prefill_tps: number; decode_tps: number; decode_chunks: number[]; greedy_agree_with_f32: number }>;
  const result = {
    model: own ? 'random Qwen2.5-0.5B-shaped Q8_0' : dir,
    backend: backend.name,
    threads,
    prompt_tokens: P,
    gen_tokens: G,
    node: process.version,
    load_avg: os.loadavg(),
    memory,
    speed,
  };
  if (values.json) process.stdout.write(JSON.stringify(result) + '\n');
  else {
    const kib = (b: number) => `${(b / 1024).toFixed(2)} KiB`;
    for (const m of memory) process.stdout.write(`${m.name}: ${KV_TYPES.map((t) => `${t} ${kib(m.bytes[t])}`).join(', ')} per token\n`);
    for (const t of KV_TYPES) {
      const s = speed[t];
      process.stdout.write(
        `${t}: prefill ${s.prefill_tps.toFixed(1)} tok/s, decode ${s.decode_tps.toFixed(2)} tok/s (chunks ${s.decode_chunks.join(', ')}), greedy = f32's for ${s.greedy_agree_with_f32} of ${G} tokens\n`,
      );
    }
  }
} finally {
  backend.dispose?.();
  if (own) fs.rmSync(dir, { recursive: true, force: true });
}
