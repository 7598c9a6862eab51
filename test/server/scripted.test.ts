// What Qwen models write, end to end through the server: a model double that writes a fixed
// script (thinking, then an answer or a tool call) after the assistant turn opens, so the
// server's reasoning_content and tool_calls (streamed and not) can be checked exactly.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import OpenAI from 'openai';
import type { ChatModel } from '../../src/chat/engine.js';
import { Scheduler } from '../../src/generate/scheduler.js';
import { KvCache, type BatchEntry } from '../../src/models/kv_cache.js';
import type { CausalLM } from '../../src/models/model.js';
import { ReferenceBackend } from '../../src/backend/reference.js';
import { parseHfConfig } from '../../src/models/config.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { createServer } from '../../src/server/app.js';
import { chatModelDir } from '../helpers.js';

const tok = loadTokenizer(chatModelDir());
const IM_START = tok.tokenToId('<|im_start|>')!;
const FAIL = tok.encode(' Kaboom')[0]!; // a prompt token that makes the model double's forward pass throw

/** Writes `script(prompt text)` token by token after the last `<|im_start|>assistant\n`, then <|im_end|>. */
function scriptedModel(script: (prompt: string) => string): CausalLM {
  const config = parseHfConfig({ model_type: 'qwen3', vocab_size: 151936, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 1, num_key_value_heads: 1, head_dim: 8, max_position_embeddings: 4096 }, 'scripted');
  const backend = new ReferenceBackend();
  const seen = new Map<KvCache, number[]>();
  return {
    config, backend,
    newCache: (capacity = 4096) => new KvCache(backend, config, capacity),
    forward(batch: readonly BatchEntry[], caches: readonly KvCache[]) {
      const rows = batch.filter((e) => e.logits).length;
      const out = new Float32Array(rows * config.vocab_size);
      let r = 0;
      for (const e of batch) {
        if (e.token === FAIL) throw new Error('engine fault (test)');
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

let server: Server, client: OpenAI;
before(async () => {
  const model = scriptedModel((prompt) => prompt.includes('<tools>')
    ? '<think>\nThe user wants the weather.\n</think>\n\nLet me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    : '<think>\n2 and 2 make 4.\n</think>\n\nThe answer is **4**.');
  const cm: ChatModel = { name: 'scripted', path: '', model, tokenizer: tok, scheduler: new Scheduler(model), templateFallback: false, toolFormat: 'json' };
  server = createServer(cm);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  client = new OpenAI({ apiKey: 'x', baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, maxRetries: 0 });
});
after(() => new Promise<void>((r) => server.close(() => r())));

const TOOLS = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];

test('Qwen3 thinking comes back as reasoning_content, the answer as content', async () => {
  const r = await client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: '2+2?' }], max_tokens: 100 });
  const m = r.choices[0]!.message as { content: string; reasoning_content?: string };
  assert.equal(m.reasoning_content, '2 and 2 make 4.');
  assert.equal(m.content, 'The answer is **4**.');
  assert.equal(r.choices[0]!.finish_reason, 'stop');
  const s = await client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: '2+2?' }], max_tokens: 100, stream: true });
  let reasoning = '', content = '';
  for await (const c of s) {
    const d = c.choices[0]?.delta as { content?: string; reasoning_content?: string } | undefined;
    reasoning += d?.reasoning_content ?? '';
    content += d?.content ?? '';
  }
  assert.equal(reasoning, '2 and 2 make 4.');
  assert.equal(content, 'The answer is **4**.');
});

test('a tool call the model writes by itself (tool_choice auto) is returned as tool_calls, streamed and not', async () => {
  const r = await client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: TOOLS, max_tokens: 100 });
  const m = r.choices[0]!.message;
  assert.equal(r.choices[0]!.finish_reason, 'tool_calls');
  assert.equal(m.content, 'Let me check.');
  assert.equal(m.tool_calls!.length, 1);
  const call = m.tool_calls![0]! as { id: string; type: string; function: { name: string; arguments: string } };
  assert.equal(call.type, 'function');
  assert.match(call.id, /^call_/);
  assert.deepEqual([call.function.name, JSON.parse(call.function.arguments)], ['get_weather', { city: 'Paris' }]);
  const s = await client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: TOOLS, max_tokens: 100, stream: true });
  const calls: { index: number; function?: { name?: string; arguments?: string } }[] = [];
  let finish;
  for await (const c of s) {
    calls.push(...((c.choices[0]?.delta.tool_calls ?? []) as typeof calls));
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'tool_calls');
  assert.deepEqual(calls.map((c) => [c.index, c.function?.name, c.function?.arguments]), [[0, 'get_weather', '{"city":"Paris"}']]);
  // tool_choice none: the tools are not offered, so the model answers in prose
  const none = await client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'Weather?' }], tools: TOOLS, tool_choice: 'none', max_tokens: 100 });
  assert.equal(none.choices[0]!.message.tool_calls, undefined);
  assert.equal(none.choices[0]!.message.content, 'The answer is **4**.');
});

test('an engine fault answers 500 (or an error event mid-stream), and the server keeps serving', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'say Kaboom' }], max_tokens: 5 }),
    (e: Error) => e instanceof OpenAI.InternalServerError && /engine fault/.test(e.message));
  const s = await client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'say Kaboom' }], max_tokens: 5, stream: true });
  await assert.rejects((async () => { for await (const _ of s); })(), /engine fault/);
  const ok = await client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: '2+2?' }], max_tokens: 100 });
  assert.equal(ok.choices[0]!.message.content, 'The answer is **4**.');
});
