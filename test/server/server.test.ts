// The OpenAI-compatible server, driven by the official `openai` client on loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import OpenAI from 'openai';
import { openChatModel, prepareChat, type ChatModel } from '../../src/chat/engine.js';
import { createServer } from '../../src/server/app.js';
import { chatModelDir, fixtureDir } from '../helpers.js';

const KEY = 'sk-test-key';
let server: Server, cm: ChatModel, base: string, client: OpenAI;
const ref = JSON.parse(fs.readFileSync(path.join(fixtureDir('models/qwen3-tiny-realvocab'), 'reference.json'), 'utf8')).cases[0];
const USER = 'Hello, world! 你好，世界。 Tell me a joke about llamas 🦙.';
const MODEL = 'qwen3-tiny';

before(async () => {
  cm = openChatModel(chatModelDir(), MODEL);
  server = createServer(cm, { apiKey: KEY, maxBodyBytes: 1 << 20 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  client = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0, timeout: 60_000 });
});
after(() => new Promise<void>((r) => server.close(() => r())));

test('the chat template renders the reference prompt: the ids llama.cpp was given', () => {
  assert.deepEqual(prepareChat(cm, { messages: [{ role: 'user', content: USER }] }).ids, ref.prompt_ids);
});

test('GET /v1/models and /health', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [MODEL]);
  const h = await (await fetch(`${base}/health`)).json();
  assert.equal(h.status, 'ok');
});

test('plain chat, greedy: llama.cpp\'s greedy continuation through the whole stack, usage counted', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: USER }], temperature: 0, max_tokens: 16 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0]!.finish_reason, 'length');
  assert.equal(r.choices[0]!.message.content, cm.tokenizer.decode(ref.greedy_generated_ids));
  assert.deepEqual(r.usage, { prompt_tokens: ref.prompt_ids.length, completion_tokens: 16, total_tokens: ref.prompt_ids.length + 16 });
});

test('streaming chat: the deltas concatenate to the non-streamed answer; usage on request', async () => {
  const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: USER }], temperature: 0, max_tokens: 16, stream: true, stream_options: { include_usage: true } });
  let text = '', finish: string | null = null, chunks = 0, usage;
  for await (const c of stream) {
    chunks++;
    if (c.usage) usage = c.usage;
    if (!c.choices.length) continue;
    text += c.choices[0]!.delta.content ?? '';
    finish = c.choices[0]!.finish_reason ?? finish;
  }
  assert.ok(chunks > 3);
  assert.equal(text, cm.tokenizer.decode(ref.greedy_generated_ids));
  assert.equal(finish, 'length');
  assert.equal(usage!.completion_tokens, 16);
});

test('seeded sampling is reproducible; stop strings end the answer before them', async () => {
  const req = { model: MODEL, messages: [{ role: 'user' as const, content: 'Tell me a story' }], temperature: 1, seed: 11, max_tokens: 12 };
  const a = await client.chat.completions.create(req);
  const b = await client.chat.completions.create(req);
  assert.equal(a.choices[0]!.message.content, b.choices[0]!.message.content);
  const greedy = cm.tokenizer.decode(ref.greedy_generated_ids);
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: USER }], temperature: 0, max_tokens: 16, stop: ['attack'] });
  assert.equal(r.choices[0]!.message.content, greedy.slice(0, greedy.indexOf('attack')));
  assert.equal(r.choices[0]!.finish_reason, 'stop');
});

test('logprobs: the chosen token and top alternatives, sorted, as log-probabilities', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: USER }], temperature: 0, max_tokens: 4, logprobs: true, top_logprobs: 3 });
  const lp = r.choices[0]!.logprobs!.content!;
  assert.equal(lp.length, 4);
  lp.forEach((e, i) => {
    assert.equal(e.top_logprobs.length, 3);
    assert.equal(e.top_logprobs[0]!.token, e.token, 'greedy: the chosen token is the most likely');
    assert.ok(e.logprob <= 0 && e.top_logprobs[0]!.logprob >= e.top_logprobs[1]!.logprob);
    assert.equal(e.token, cm.tokenizer.decode([ref.greedy_generated_ids[i]]));
    // llama.cpp's top-10 logits at this step give the same log-probability (logit - logsumexp)
    const step = ref.incremental_top10_per_step[ref.prompt_ids.length - 1 + i];
    assert.ok(Math.abs(e.logprob - (step.logits[0] - step.logsumexp)) < 1e-3);
  });
});

test('concurrent streams each get their own greedy answer', async () => {
  const prompts = [USER, 'What is 2+2?', 'Write a haiku', USER];
  const alone = [];
  for (const p of prompts.slice(0, 3)) {
    alone.push((await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: p }], temperature: 0, max_tokens: 10 })).choices[0]!.message.content);
  }
  const together = await Promise.all(prompts.map(async (p) => {
    const s = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: p }], temperature: 0, max_tokens: 10, stream: true });
    let t = '';
    for await (const c of s) t += c.choices[0]?.delta.content ?? '';
    return t;
  }));
  assert.deepEqual(together, [...alone, alone[0]]);
});

test('a cancelled stream stops its generation; the server goes on serving', async () => {
  const ac = new AbortController();
  const s = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: USER }], temperature: 0, max_tokens: 200, stream: true }, { signal: ac.signal });
  let n = 0;
  await assert.rejects((async () => { for await (const _ of s) if (++n === 3) ac.abort(); })());
  for (let i = 0; i < 100 && cm.scheduler.load > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(cm.scheduler.load, 0, 'the generation stopped');
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
  assert.equal(r.choices[0]!.message.role, 'assistant');
});

test('bad requests get OpenAI-style errors with the right status, and the server keeps serving', async () => {
  const post = (body: string, headers: Record<string, string> = {}) => fetch(`${base}/v1/chat/completions`, { method: 'POST', body, headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', ...headers } });
  const expectError = async (p: Promise<Response>, status: number, param?: string | null) => {
    const r = await p;
    assert.equal(r.status, status);
    const e = (await r.json()).error;
    assert.equal(typeof e.message, 'string');
    if (param !== undefined) assert.equal(e.param, param);
    return e;
  };
  await expectError(post('{"model": "qwen3-tiny", "messages": ['), 400);
  await expectError(post('[1,2]'), 400);
  await expectError(post(JSON.stringify({ model: MODEL, messages: [] })), 400, 'messages');
  await expectError(post(JSON.stringify({ model: MODEL, messages: 'hi' })), 400, 'messages');
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'wizard', content: 'x' }] })), 400, 'messages[0].role');
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], temperature: 'hot' })), 400, 'temperature');
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 1e9 })), 400, 'max_tokens');
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], n: 5 })), 400, 'n');
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], n: 1e6 })), 400, 'n');
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'word '.repeat(400) }] })), 400, 'messages');
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], tool_choice: { type: 'function', function: { name: 'nope' } } })), 400, 'tool_choice');
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'wat' } } } })), 400);
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x'.repeat(2 << 20) }] })), 413);
  const wrongModel = await expectError(post(JSON.stringify({ model: 'gpt-4', messages: [{ role: 'user', content: 'x' }] })), 404, 'model');
  assert.equal(wrongModel.code, 'model_not_found');
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }), { Authorization: 'Bearer wrong' }), 401);
  await assert.rejects(new OpenAI({ apiKey: 'wrong', baseURL: `${base}/v1`, maxRetries: 0 }).models.list(), (e: Error) => e instanceof OpenAI.AuthenticationError);
  await expectError(fetch(`${base}/v1/nothing`, { headers: { Authorization: `Bearer ${KEY}` } }), 404);
  const ok = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'still there?' }], max_tokens: 2 });
  assert.equal(ok.choices.length, 1);
});

test('/v1/completions: raw text continuation, streaming and not', async () => {
  const r = await client.completions.create({ model: MODEL, prompt: ref.prompt_text, temperature: 0, max_tokens: 6 });
  assert.equal(r.choices[0]!.text, cm.tokenizer.decode(ref.greedy_generated_ids.slice(0, 6)));
  const s = await client.completions.create({ model: MODEL, prompt: ref.prompt_text, temperature: 0, max_tokens: 6, stream: true });
  let t = '';
  for await (const c of s) t += c.choices[0]?.text ?? '';
  assert.equal(t, r.choices[0]!.text);
});

test('Qwen3 thinking switch: chat_template_kwargs enable_thinking=false adds the empty think block to the prompt', async () => {
  const on = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 });
  const off = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1, chat_template_kwargs: { enable_thinking: false } } as never);
  assert.equal(off.usage!.prompt_tokens - on.usage!.prompt_tokens, cm.tokenizer.encode('<think>\n\n</think>\n\n').length);
});
