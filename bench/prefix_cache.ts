// Prefix-cache benchmark (issue 13): a three-turn chat with a ~2,000-token system prompt on a
// random-weight Qwen2.5-0.5B-shaped Q8_0 file (written into a temp folder, as the tests do), run
// with the prefix cache on and off; prints each turn's time to first token and turns 2-3 against
// turn 1 (the target: <= 0.2x with the cache on). By hand, not in the tests:
//   node dist/bench/prefix_cache.js [--model DIR] [--threads N] [--system-tokens 2000] [--max-tokens 16] [--json]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { chat, openChatModel, type ChatModel } from '../src/chat/engine.js';
import { createBackend } from '../src/backend/index.js';
import { Scheduler } from '../src/generate/scheduler.js';
import { writeRandomQwen2 } from '../test/engine/random_model.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    threads: { type: 'string' },
    'system-tokens': { type: 'string', default: '2000' },
    'max-tokens': { type: 'string', default: '16' },
    json: { type: 'boolean' },
  },
});
const own = values.model === undefined;
const dir = values.model ?? writeRandomQwen2(fs.mkdtempSync(path.join(os.tmpdir(), 'qwen-ts-bench-prefix-')));
const threads = values.threads === undefined ? os.availableParallelism() : Number(values.threads);
const backend = createBackend('wasm', threads);
const maxTokens = Number(values['max-tokens']);

interface Turn {
  promptTokens: number;
  cachedTokens: number;
  ttftMs: number;
  totalMs: number;
}

async function turn(cm: ChatModel, messages: unknown[]): Promise<Turn & { text: string }> {
  const t0 = performance.now();
  let ttft = 0,
    text = '';
  const it = chat(cm, { messages, temperature: 0, max_tokens: maxTokens });
  for (;;) {
    const r = await it.next();
    if (r.done) return { promptTokens: r.value.promptTokens, cachedTokens: r.value.cachedTokens ?? 0, ttftMs: ttft, totalMs: performance.now() - t0, text };
    ttft ||= performance.now() - t0; // the first event: the first token's text
    if (r.value.kind === 'content') text += r.value.text;
  }
}

async function conversation(cm: ChatModel, system: string): Promise<Turn[]> {
  let msgs: unknown[] = [
    { role: 'system', content: system },
    { role: 'user', content: 'Summarise the notes above in one line.' },
  ];
  const out: Turn[] = [];
  for (let t = 0; t < 3; t++) {
    const { text, ...r } = await turn(cm, msgs);
    out.push(r);
    msgs = [...msgs, { role: 'assistant', content: text }, { role: 'user', content: `Now item ${t + 2}, briefly.` }];
  }
  return out;
}

const on = openChatModel(dir, 'bench', { backend, onNote: () => {} });
const off: ChatModel = { ...on, scheduler: new Scheduler(on.model, undefined, undefined, 0) }; // the same weights, no prefix cache
// a system prompt of about the asked size (notes with numbers, so BPE does not merge them away)
const words = Array.from({ length: Number(values['system-tokens']) }, (_, i) => ` note${(i * 7919) % 997}`).join('');
const system = on.tokenizer.decode(on.tokenizer.encode(words).slice(0, Number(values['system-tokens'])));
await turn(on, [{ role: 'user', content: 'warm up' }]); // JIT and the kernels' first run, outside the figures
const result = { model: own ? 'random Qwen2.5-0.5B-shaped Q8_0' : dir, threads, node: process.version, cacheOn: await conversation(on, system), cacheOff: await conversation(off, system) };
if (own) fs.rmSync(dir, { recursive: true, force: true });
(backend as { dispose?(): void }).dispose?.();

if (values.json) console.log(JSON.stringify(result));
else {
  const t1 = result.cacheOn[0]!.ttftMs;
  for (const [label, turns] of [
    ['cache on', result.cacheOn],
    ['cache off', result.cacheOff],
  ] as const) {
    console.log(`${label}:`);
    turns.forEach((t, i) =>
      console.log(
        `  turn ${i + 1}: prompt ${t.promptTokens} tokens (${t.cachedTokens} cached), first token ${(t.ttftMs / 1000).toFixed(2)} s = ${(t.ttftMs / t1).toFixed(3)}x turn 1, total ${(t.totalMs / 1000).toFixed(2)} s`,
      ),
    );
  }
}
