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
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { createServer } from '../../src/server/app.js';
import { chatModelDir } from '../helpers.js';
import { scriptedModel } from './scripted_model.js';

const tok = loadTokenizer(chatModelDir());
const FAIL = tok.encode(' Kaboom')[0]!; // a prompt token that makes the model double's forward pass throw

let server: Server, client: OpenAI;
before(async () => {
  const model = scriptedModel(
    tok,
    (prompt) =>
      prompt.includes('<tools>')
        ? '<think>\nThe user wants the weather.\n</think>\n\nLet me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
        : '<think>\n2 and 2 make 4.\n</think>\n\nThe answer is **4**.',
    FAIL,
  );
  const cm: ChatModel = { name: 'scripted', path: '', model, config: model.config, tokenizer: tok, scheduler: new Scheduler(model), templateFallback: false, toolFormat: 'json' };
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
  let reasoning = '',
    content = '';
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
  let finish: string | null | undefined;
  for await (const c of s) {
    calls.push(...((c.choices[0]?.delta.tool_calls ?? []) as typeof calls));
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'tool_calls');
  assert.deepEqual(
    calls.map((c) => [c.index, c.function?.name, c.function?.arguments]),
    [[0, 'get_weather', '{"city":"Paris"}']],
  );
  // tool_choice none: the tools are not offered, so the model answers in prose
  const none = await client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'Weather?' }], tools: TOOLS, tool_choice: 'none', max_tokens: 100 });
  assert.equal(none.choices[0]!.message.tool_calls, undefined);
  assert.equal(none.choices[0]!.message.content, 'The answer is **4**.');
});

test('an engine fault answers 500 (or an error event mid-stream), and the server keeps serving', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'say Kaboom' }], max_tokens: 5 }),
    (e: Error) => e instanceof OpenAI.InternalServerError && /engine fault/.test(e.message),
  );
  const s = await client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'say Kaboom' }], max_tokens: 5, stream: true });
  await assert.rejects(
    (async () => {
      for await (const _ of s);
    })(),
    /engine fault/,
  );
  const ok = await client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: '2+2?' }], max_tokens: 100 });
  assert.equal(ok.choices[0]!.message.content, 'The answer is **4**.');
});
