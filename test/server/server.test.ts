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
  assert.deepEqual(
    models.data.map((m) => m.id),
    [MODEL],
  );
  const h = await (await fetch(`${base}/health`)).json();
  assert.equal(h.status, 'ok');
});

test("plain chat, greedy: llama.cpp's greedy continuation through the whole stack, usage counted", async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: USER }], temperature: 0, max_tokens: 16 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0]!.finish_reason, 'length');
  assert.equal(r.choices[0]!.message.content, cm.tokenizer.decode(ref.greedy_generated_ids));
  assert.deepEqual(r.usage, { prompt_tokens: ref.prompt_ids.length, completion_tokens: 16, total_tokens: ref.prompt_ids.length + 16, prompt_tokens_details: { cached_tokens: 0 } });
});

test('streaming chat: the deltas concatenate to the non-streamed answer; usage on request', async () => {
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: USER }],
    temperature: 0,
    max_tokens: 16,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '',
    finish: string | null = null,
    chunks = 0,
    usage: { completion_tokens: number } | undefined;
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
  // the text before the stop string (trailing whitespace is trimmed from answers)
  assert.equal(r.choices[0]!.message.content, greedy.slice(0, greedy.indexOf('attack')).trimEnd());
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
    // against llama.cpp's top-10 logits at this step: differences of log-probabilities are
    // differences of logits; absolute values differ only by the padding rows past the tokenizer,
    // which are masked (never sampled) and so left out of the normaliser (a shift < 5e-3 here)
    const step = ref.incremental_top10_per_step[ref.prompt_ids.length - 1 + i];
    e.top_logprobs.forEach((t, j) => {
      assert.equal(t.token, cm.tokenizer.decode([step.ids[j]]));
      assert.ok(Math.abs(t.logprob - e.top_logprobs[0]!.logprob - (step.logits[j] - step.logits[0])) < 1e-3);
    });
    assert.ok(Math.abs(e.logprob - (step.logits[0] - step.logsumexp)) < 5e-3);
  });
});

test('concurrent streams each get their own greedy answer', async () => {
  const prompts = [USER, 'What is 2+2?', 'Write a haiku', USER];
  const alone = [];
  for (const p of prompts.slice(0, 3)) {
    alone.push((await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: p }], temperature: 0, max_tokens: 10 })).choices[0]!.message.content);
  }
  const together = await Promise.all(
    prompts.map(async (p) => {
      const s = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: p }], temperature: 0, max_tokens: 10, stream: true });
      let t = '';
      for await (const c of s) t += c.choices[0]?.delta.content ?? '';
      return t;
    }),
  );
  assert.deepEqual(together, [...alone, alone[0]]);
});

test('a cancelled stream stops its generation; the server goes on serving', async () => {
  const ac = new AbortController();
  const s = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: USER }], temperature: 0, max_tokens: 200, stream: true }, { signal: ac.signal });
  let n = 0;
  // the client either ends the iteration or throws an abort error, depending on its version
  await (async () => {
    for await (const _ of s) if (++n === 3) ac.abort();
  })().catch((e: Error) => assert.match(e.name + e.message, /abort/i));
  assert.ok(n < 50, `the stream ended after ${n} chunks`);
  for (let i = 0; i < 100 && cm.scheduler.load > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(cm.scheduler.load, 0, 'the generation stopped');
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
  assert.equal(r.choices[0]!.message.role, 'assistant');
});

test('bad requests get OpenAI-style errors with the right status, and the server keeps serving', async () => {
  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${base}/v1/chat/completions`, { method: 'POST', body, headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', ...headers } });
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
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], n: 0 })), 400, 'n');
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], n: 1e6 })), 400, 'n');
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'word '.repeat(5000) }] })), 400, 'messages');
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], tool_choice: { type: 'function', function: { name: 'nope' } } })), 400, 'tool_choice');
  await expectError(
    post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'wat' } } } })),
    400,
  );
  await expectError(
    post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', not: {} } } }] })),
    400,
    'tools',
  );
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], top_p: 2, stream: true })), 400, 'top_p');
  let deep: object = { type: 'string' };
  for (let i = 0; i < 3000; i++) deep = { type: 'array', items: deep };
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'deep', schema: deep } } })), 400);
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x'.repeat(2 << 20) }] })), 413);
  const wrongModel = await expectError(post(JSON.stringify({ model: 'gpt-4', messages: [{ role: 'user', content: 'x' }] })), 404, 'model');
  assert.equal(wrongModel.code, 'model_not_found');
  await expectError(post(JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }), { Authorization: 'Bearer wrong' }), 401);
  await assert.rejects(new OpenAI({ apiKey: 'wrong', baseURL: `${base}/v1`, maxRetries: 0 }).models.list(), (e: Error) => e instanceof OpenAI.AuthenticationError);
  await expectError(fetch(`${base}/v1/nothing`, { headers: { Authorization: `Bearer ${KEY}` } }), 404);
  const ok = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'still there?' }], max_tokens: 2 });
  assert.equal(ok.choices.length, 1);
});

test('top_p 0 is greedy; a bad request target is a 400', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: USER }], top_p: 0, temperature: 1, max_tokens: 4 });
  assert.equal(r.choices[0]!.message.content, cm.tokenizer.decode(ref.greedy_generated_ids.slice(0, 4)));
  const net = await import('node:net');
  const reply = await new Promise<string>((resolve) => {
    const sock = net.connect(Number(new URL(base).port), '127.0.0.1', () => sock.write('GET http://[x/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
    let data = '';
    sock.on('data', (d) => (data += d));
    sock.on('end', () => resolve(data));
  });
  assert.match(reply, /^HTTP\/1\.1 400/);
});

test('/v1/completions: raw text continuation, streaming and not', async () => {
  const r = await client.completions.create({ model: MODEL, prompt: ref.prompt_text, temperature: 0, max_tokens: 6 });
  assert.equal(r.choices[0]!.text, cm.tokenizer.decode(ref.greedy_generated_ids.slice(0, 6)));
  const s = await client.completions.create({ model: MODEL, prompt: ref.prompt_text, temperature: 0, max_tokens: 6, stream: true });
  let t = '';
  for await (const c of s) t += c.choices[0]?.text ?? '';
  assert.equal(t, r.choices[0]!.text);
  // the legacy API's logprobs is a count of alternatives
  const lp = await client.completions.create({ model: MODEL, prompt: ref.prompt_text, temperature: 0, max_tokens: 3, logprobs: 2 });
  const l = lp.choices[0]!.logprobs!;
  assert.equal(l.tokens!.length, 3);
  assert.ok(l.token_logprobs!.every((x) => x! <= 0));
  assert.ok(l.top_logprobs!.every((o) => Object.keys(o!).length <= 2));
});

test('Qwen3 thinking switch: chat_template_kwargs enable_thinking=false adds the empty think block to the prompt', async () => {
  const on = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 });
  const off = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1, chat_template_kwargs: { enable_thinking: false } } as never);
  assert.equal(off.usage!.prompt_tokens - on.usage!.prompt_tokens, cm.tokenizer.encode('<think>\n\n</think>\n\n').length);
});

const WEATHER = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 20 }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
};
const TIME = { type: 'function' as const, function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string', maxLength: 10 } }, required: ['zone'] } } };

test('tool-call round trip: a named tool_choice yields a valid call; the tool result comes back into the conversation', async () => {
  const { Ajv } = await import('ajv');
  const validate = new Ajv().compile(WEATHER.function.parameters);
  const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is the weather in Paris?' }];
  const r = await client.chat.completions.create({ model: MODEL, messages, tools: [WEATHER, TIME], tool_choice: { type: 'function', function: { name: 'get_weather' } }, max_tokens: 80, seed: 1 });
  const choice = r.choices[0]!;
  assert.equal(choice.finish_reason, 'tool_calls');
  const call = choice.message.tool_calls![0]! as { id: string; function: { name: string; arguments: string } };
  assert.equal(call.function.name, 'get_weather');
  const args = JSON.parse(call.function.arguments);
  assert.ok(validate(args), JSON.stringify(validate.errors));
  messages.push(choice.message as OpenAI.ChatCompletionMessageParam, { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21}' });
  const prompt = prepareChat(cm, { messages: messages as never, tools: [WEATHER, TIME] }).prompt;
  assert.match(prompt, /<tool_call>\n\{"name": "get_weather", "arguments": /);
  assert.match(prompt, /<tool_response>\n\{"temperature": 21\}\n<\/tool_response>/);
  const r2 = await client.chat.completions.create({ model: MODEL, messages, tools: [WEATHER, TIME], max_tokens: 8, temperature: 0 });
  assert.equal(typeof r2.choices[0]!.message.content, 'string');
  assert.ok(r2.usage!.prompt_tokens > r.usage!.prompt_tokens);
});

test('tool_choice "required" picks one of the tools; streamed tool calls arrive as deltas', async () => {
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'time or weather?' }], tools: [WEATHER, TIME], tool_choice: 'required', max_tokens: 80, seed });
    const fn = (r.choices[0]!.message.tool_calls![0]! as { function: { name: string; arguments: string } }).function;
    assert.ok(['get_weather', 'get_time'].includes(fn.name));
    JSON.parse(fn.arguments);
  }
  const s = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: 'weather?' }],
    tools: [WEATHER],
    tool_choice: { type: 'function', function: { name: 'get_weather' } },
    max_tokens: 80,
    stream: true,
  });
  const calls: { name?: string; arguments?: string }[] = [];
  let finish: string | null | undefined;
  for await (const c of s) {
    for (const tc of c.choices[0]?.delta.tool_calls ?? []) calls.push(tc.function!);
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.name, 'get_weather');
  JSON.parse(calls[0]!.arguments!);
});

test('response_format json_schema and json_object: the answer parses and validates, whatever the weights', async () => {
  const { Ajv } = await import('ajv');
  const schema = {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 12 },
      age: { type: 'integer', minimum: 0, maximum: 150 },
      tags: { type: 'array', items: { type: 'string', enum: ['a', 'b', 'c'] }, maxItems: 3 },
      address: { type: 'object', properties: { city: { type: 'string', maxLength: 10 } }, required: ['city'], additionalProperties: false },
    },
    required: ['name', 'age', 'address'],
    additionalProperties: false,
  };
  const validate = new Ajv().compile(schema);
  for (const seed of [1, 2]) {
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'A person, as JSON' }],
      max_tokens: 120,
      seed,
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } },
    });
    const v = JSON.parse(r.choices[0]!.message.content!);
    assert.ok(validate(v), JSON.stringify(validate.errors));
  }
  const o = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'JSON please' }], max_tokens: 60, seed: 4, response_format: { type: 'json_object' } });
  const v = JSON.parse(o.choices[0]!.message.content!);
  assert.equal(typeof v, 'object');
  assert.ok(v !== null && !Array.isArray(v));
});
