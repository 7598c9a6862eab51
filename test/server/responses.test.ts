// POST /v1/responses on the tiny real-vocabulary Qwen3 through the official `openai` client's
// responses.create: greedy text against llama.cpp's reference continuation, streamed and not; a
// forced function call and its function_call_output follow-up; previous_response_id; text.format
// json_schema; the stored-response endpoints and the LRU bound; bad input as OpenAI-style 4xx.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Server } from 'node:http';
import OpenAI from 'openai';
import { Ajv } from 'ajv';
import { openChatModel, prepareChat, type ChatModel } from '../../src/chat/engine.js';
import { createServer } from '../../src/server/app.js';
import { chatModelDir, fixtureDir, listen } from '../helpers.js';
import { checkEventOrder, withoutIds } from './response_events.js';

const MODEL = 'qwen3-tiny';
const USER = 'Hello, world! 你好，世界。 Tell me a joke about llamas 🦙.';
const ref = JSON.parse(fs.readFileSync(path.join(fixtureDir('models/qwen3-tiny-realvocab'), 'reference.json'), 'utf8')).cases[0];
let server: Server, cm: ChatModel, base: string, client: OpenAI;

before(async () => {
  cm = openChatModel(chatModelDir(), MODEL);
  server = createServer(cm, { accessLog: false });
  base = await listen(server);
  client = new OpenAI({ apiKey: 'x', baseURL: `${base}/v1`, maxRetries: 0, timeout: 60_000 });
});
after(() => new Promise<void>((r) => server.close(() => r())));

const WEATHER = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 20 }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const TOOLS = [{ type: 'function' as const, name: 'get_weather', description: 'Current weather in a city', parameters: WEATHER, strict: true }];
const CHAT_TOOLS = [{ type: 'function', function: { name: 'get_weather', description: 'Current weather in a city', parameters: WEATHER } }];
const promptTokens = (messages: object[], tools?: object[]) => prepareChat(cm, { messages, tools }).ids.length;

test("plain and streamed, greedy: llama.cpp's continuation, the same text both ways, events in order", async () => {
  const greedy = cm.tokenizer.decode(ref.greedy_generated_ids);
  const r = await client.responses.create({ model: MODEL, input: USER, temperature: 0, max_output_tokens: 16 });
  assert.equal(r.output_text, greedy);
  assert.equal(r.status, 'incomplete');
  assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(r.usage!.input_tokens, ref.prompt_ids.length);
  assert.equal(r.usage!.output_tokens, 16);
  assert.equal(r.usage!.total_tokens, ref.prompt_ids.length + 16);
  const cached = r.usage!.input_tokens_details.cached_tokens;
  assert.ok(Number.isInteger(cached) && cached >= 0 && cached <= r.usage!.input_tokens);
  assert.equal(r.model, MODEL);
  const s = await client.responses.create({ model: MODEL, input: [{ role: 'user', content: [{ type: 'input_text', text: USER }] }], temperature: 0, max_output_tokens: 16, stream: true });
  const events: any[] = [];
  for await (const e of s) events.push(e);
  const { items, response } = checkEventOrder(events);
  assert.equal(events[events.length - 1].type, 'response.incomplete');
  assert.equal(
    events
      .filter((e) => e.type === 'response.output_text.delta')
      .map((e) => e.delta)
      .join(''),
    greedy,
  );
  assert.deepEqual(withoutIds(items), withoutIds(r.output as never));
  // the same tokens (the prefix cache may serve part of the second prompt)
  const counts = (u: any) => ({ ...u, input_tokens_details: undefined });
  assert.deepEqual(counts(response.usage), counts(r.usage));
});

test('include message.output_text.logprobs: each answer token with its top alternatives', async () => {
  const r = await client.responses.create({ model: MODEL, input: USER, temperature: 0, max_output_tokens: 4, include: ['message.output_text.logprobs'], top_logprobs: 2 });
  const lps = (r.output[0] as any).content[0].logprobs as { token: string; logprob: number; top_logprobs: { token: string; logprob: number }[] }[];
  assert.deepEqual(
    lps.map((l) => l.token),
    ref.greedy_generated_ids.slice(0, 4).map((id: number) => cm.tokenizer.decode([id])),
  );
  for (const l of lps) {
    assert.equal(l.top_logprobs.length, 2);
    assert.equal(l.top_logprobs[0]!.token, l.token);
    assert.ok(l.logprob <= 0 && l.top_logprobs[0]!.logprob >= l.top_logprobs[1]!.logprob);
  }
  const plain = await client.responses.create({ model: MODEL, input: USER, temperature: 0, max_output_tokens: 4 });
  assert.deepEqual((plain.output[0] as any).content[0].logprobs, []);
});

test('a forced function call (tool_choice names it): valid arguments; the function_call_output follow-up, by previous_response_id or sent whole', async () => {
  const validate = new Ajv().compile(WEATHER);
  const r = await client.responses.create({
    model: MODEL,
    input: 'What is the weather in Paris?',
    tools: TOOLS,
    tool_choice: { type: 'function', name: 'get_weather' },
    max_output_tokens: 80,
    temperature: 0,
  });
  const calls = r.output.filter((o) => o.type === 'function_call') as OpenAI.Responses.ResponseFunctionToolCall[];
  assert.equal(calls.length, 1);
  const call = calls[0]!;
  assert.equal(call.name, 'get_weather');
  assert.ok(validate(JSON.parse(call.arguments)), JSON.stringify(validate.errors));
  const output = { type: 'function_call_output' as const, call_id: call.call_id, output: '{"temperature": 21}' };
  const r2 = await client.responses.create({ model: MODEL, previous_response_id: r.id, input: [output], tools: TOOLS, max_output_tokens: 8, temperature: 0 });
  // the conversation the follow-up rendered: the chat template's, for the same turns
  const chat = [
    { role: 'user', content: 'What is the weather in Paris?' },
    { role: 'assistant', content: '', tool_calls: [{ id: call.call_id, type: 'function', function: { name: 'get_weather', arguments: JSON.parse(call.arguments) } }] },
    { role: 'tool', tool_call_id: call.call_id, content: '{"temperature": 21}' },
  ];
  assert.equal(r2.usage!.input_tokens, promptTokens(chat, CHAT_TOOLS));
  const whole = await client.responses.create({
    model: MODEL,
    store: false,
    input: [{ role: 'user', content: 'What is the weather in Paris?' }, { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments }, output],
    tools: TOOLS,
    max_output_tokens: 8,
    temperature: 0,
  });
  assert.equal(whole.usage!.input_tokens, r2.usage!.input_tokens);
  assert.equal(whole.output_text, r2.output_text);
  // and through chat/completions, the same prompt
  const cc = await client.chat.completions.create({
    model: MODEL,
    messages: [chat[0], { ...chat[1], tool_calls: [{ id: call.call_id, type: 'function', function: { name: 'get_weather', arguments: call.arguments } }] }, chat[2]] as never,
    tools: CHAT_TOOLS as never,
    max_tokens: 8,
    temperature: 0,
  });
  assert.equal(cc.usage!.prompt_tokens, r2.usage!.input_tokens);
  assert.equal(cc.choices[0]!.message.content, r2.output_text);
});

test("previous_response_id continues the stored conversation; instructions are this turn's system prompt", async () => {
  const r1 = await client.responses.create({ model: MODEL, instructions: 'Be brief.', input: 'Hi there', max_output_tokens: 5, temperature: 0 });
  assert.equal(
    r1.usage!.input_tokens,
    promptTokens([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi there' },
    ]),
  );
  assert.equal(r1.instructions, 'Be brief.');
  const r2 = await client.responses.create({ model: MODEL, previous_response_id: r1.id, input: 'And again?', max_output_tokens: 5, temperature: 0 });
  assert.equal(r2.previous_response_id, r1.id);
  assert.equal(
    r2.usage!.input_tokens,
    promptTokens([
      { role: 'user', content: 'Hi there' },
      { role: 'assistant', content: r1.output_text },
      { role: 'user', content: 'And again?' },
    ]),
  );
  const r3 = await client.responses.create({ model: MODEL, previous_response_id: r2.id, instructions: 'Be brief.', input: 'Once more.', max_output_tokens: 5, temperature: 0 });
  assert.equal(
    r3.usage!.input_tokens,
    promptTokens([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi there' },
      { role: 'assistant', content: r1.output_text },
      { role: 'user', content: 'And again?' },
      { role: 'assistant', content: r2.output_text },
      { role: 'user', content: 'Once more.' },
    ]),
  );
  // stored: GET returns what create returned; DELETE removes it
  assert.deepEqual(await client.responses.retrieve(r2.id), r2);
  await client.responses.delete(r2.id);
  await assert.rejects(client.responses.retrieve(r2.id), (e: Error) => e instanceof OpenAI.NotFoundError);
  await assert.rejects(
    client.responses.create({ model: MODEL, previous_response_id: r2.id, input: 'x', max_output_tokens: 1 }),
    (e: any) => e instanceof OpenAI.BadRequestError && e.param === 'previous_response_id' && e.code === 'previous_response_not_found' && e.message.includes(r2.id),
  );
});

test('text.format json_schema and json_object: the output parses and validates', async () => {
  const schema = {
    type: 'object',
    properties: { name: { type: 'string', maxLength: 12 }, age: { type: 'integer', minimum: 0, maximum: 150 }, tags: { type: 'array', items: { type: 'string', enum: ['a', 'b'] }, maxItems: 3 } },
    required: ['name', 'age'],
    additionalProperties: false,
  };
  const validate = new Ajv().compile(schema);
  for (const seed of [1, 2]) {
    const r = (await client.responses.create({
      model: MODEL,
      input: 'A person, as JSON',
      max_output_tokens: 100,
      seed,
      text: { format: { type: 'json_schema', name: 'person', schema, strict: true } },
    } as never)) as OpenAI.Responses.Response;
    const v = JSON.parse(r.output_text);
    assert.ok(validate(v), JSON.stringify(validate.errors));
    assert.deepEqual(r.text?.format, { type: 'json_schema', name: 'person', schema, strict: true });
  }
  const o = await client.responses.create({ model: MODEL, input: 'JSON please', max_output_tokens: 60, temperature: 0, text: { format: { type: 'json_object' } } });
  const v = JSON.parse(o.output_text);
  assert.ok(typeof v === 'object' && v !== null && !Array.isArray(v));
});

test('the response store keeps the last responseStoreSize responses and at most responseStoreBytes, least recently used dropped first', async () => {
  const small = createServer(cm, { accessLog: false, responseStoreSize: 2 });
  const c = new OpenAI({ apiKey: 'x', baseURL: `${await listen(small)}/v1`, maxRetries: 0 });
  try {
    const make = () => c.responses.create({ model: MODEL, input: 'hi', max_output_tokens: 1 });
    const a = await make(),
      b = await make(),
      d = await make();
    await assert.rejects(c.responses.retrieve(a.id), (e: Error) => e instanceof OpenAI.NotFoundError);
    await c.responses.retrieve(b.id); // b is now the most recently used
    const e = await make();
    await assert.rejects(c.responses.retrieve(d.id), (x: Error) => x instanceof OpenAI.NotFoundError);
    assert.equal((await c.responses.retrieve(b.id)).id, b.id);
    assert.equal((await c.responses.retrieve(e.id)).id, e.id);
  } finally {
    await new Promise<void>((r) => small.close(() => r()));
  }
  // and a bound on their size: input items a template drops (old reasoning) are not bounded by the context
  const tight = createServer(cm, { accessLog: false, responseStoreBytes: 100_000 });
  const t = new OpenAI({ apiKey: 'x', baseURL: `${await listen(tight)}/v1`, maxRetries: 0 });
  try {
    const reasoning = (n: number) => [
      { type: 'reasoning' as const, id: 'rs_1', summary: [{ type: 'summary_text' as const, text: 'x'.repeat(n) }] },
      { role: 'user' as const, content: 'hi' },
    ];
    const a = await t.responses.create({ model: MODEL, input: reasoning(40_000), max_output_tokens: 1 });
    const b = await t.responses.create({ model: MODEL, input: reasoning(40_000), max_output_tokens: 1 });
    const d = await t.responses.create({ model: MODEL, input: reasoning(40_000), max_output_tokens: 1 });
    await assert.rejects(t.responses.retrieve(a.id), (x: Error) => x instanceof OpenAI.NotFoundError);
    assert.equal((await t.responses.retrieve(b.id)).id, b.id);
    assert.equal((await t.responses.retrieve(d.id)).id, d.id);
    const huge = await t.responses.create({ model: MODEL, input: reasoning(150_000), max_output_tokens: 1 });
    await assert.rejects(t.responses.retrieve(huge.id), (x: Error) => x instanceof OpenAI.NotFoundError, 'larger than the whole budget: answered, not kept');
    await assert.rejects(t.responses.create({ model: MODEL, previous_response_id: huge.id, input: 'x', max_output_tokens: 1 }), (x: Error) => /up to 0 MiB|MiB, in memory/.test(x.message));
  } finally {
    await new Promise<void>((r) => tight.close(() => r()));
  }
});

test('bad input: OpenAI-style 4xx naming the parameter; the server keeps serving', async () => {
  const post = async (body: object, status: number, param: string | null, code?: string) => {
    const r = await fetch(`${base}/v1/responses`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ model: MODEL, max_output_tokens: 4, ...body }) });
    const e = (await r.json()).error;
    assert.equal(r.status, status, JSON.stringify(e));
    assert.equal(e.param, param, e.message);
    assert.ok(typeof e.message === 'string' && e.message.length > 0);
    if (code) assert.equal(e.code, code);
    return e;
  };
  const e = await post({ input: 'x', previous_response_id: 'resp_nope' }, 400, 'previous_response_id', 'previous_response_not_found');
  assert.match(e.message, /resp_nope/);
  await post({}, 400, 'input');
  await post({ input: 5 }, 400, 'input');
  await post({ input: [] }, 400, 'input');
  await post({ input: ['hi'] }, 400, 'input[0]');
  await post({ input: [{ type: 'banana' }] }, 400, 'input[0].type', 'unsupported_value');
  await post({ input: [{ type: 'message', role: 'wizard', content: 'x' }] }, 400, 'input[0].role');
  await post({ input: [{ role: 'user', content: 7 }] }, 400, 'input[0].content');
  await post(
    {
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'a' },
            { type: 'input_image', image_url: 'http://x/y.png' },
          ],
        },
      ],
    },
    400,
    'input[0].content[1]',
  );
  await post(
    {
      input: [
        { role: 'user', content: 'a' },
        { type: 'function_call_output', call_id: 'call_x', output: '1' },
      ],
    },
    400,
    'input[1].call_id',
  );
  await post({ input: [{ type: 'function_call_output', call_id: 'call_x', output: 5 }] }, 400, 'input[0].output');
  await post({ input: [{ type: 'function_call', call_id: 'c', name: 'f', arguments: '{bad' }] }, 400, 'input[0].arguments');
  await post({ input: [{ type: 'function_call', name: 'f', arguments: '{}' }] }, 400, 'input[0].call_id');
  await post({ input: [{ type: 'item_reference', id: 'msg_nope' }] }, 400, 'input[0].id', 'item_not_found');
  await post({ input: 'x', tools: [{ type: 'web_search' }] }, 400, 'tools[0].type', 'unsupported_value');
  await post({ input: 'x', tools: [{ type: 'function' }] }, 400, 'tools[0].name');
  await post({ input: 'x', tools: [{ type: 'function', name: 'f', parameters: 'no' }] }, 400, 'tools[0].parameters');
  await post({ input: 'x', tools: [{ type: 'function', name: 'f', parameters: { type: 'object', not: {} } }], tool_choice: 'required' }, 400, 'tools');
  await post({ input: 'x', tools: TOOLS, tool_choice: { type: 'function', name: 'nope' } }, 400, 'tool_choice');
  await post({ input: 'x', tool_choice: { type: 'web_search_preview' } }, 400, 'tool_choice');
  await post({ input: 'x', text: { format: { type: 'json_schema', name: 'x', schema: { type: 'wat' } } } }, 400, 'text.format.schema');
  await post({ input: 'x', text: { format: { type: 'xml' } } }, 400, 'text.format.type');
  await post({ input: 'x', max_output_tokens: 0 }, 400, 'max_output_tokens');
  await post({ input: 'x', temperature: 3 }, 400, 'temperature');
  await post({ input: 'x', reasoning: { effort: 'max' } }, 400, 'reasoning.effort');
  await post({ input: 'x', background: true }, 400, 'background');
  await post({ input: 'x', store: 'yes' }, 400, 'store');
  await post({ input: 'x', instructions: 5 }, 400, 'instructions');
  await post({ input: 'word '.repeat(30000) }, 400, 'input', 'context_length_exceeded');
  const missing = await fetch(`${base}/v1/responses/resp_nope`);
  assert.equal(missing.status, 404);
  assert.match((await missing.json()).error.message, /resp_nope/);
  assert.equal((await fetch(`${base}/v1/responses/resp_nope`, { method: 'PUT' })).status, 405);
  const ok = await client.responses.create({ model: MODEL, input: 'still there?', max_output_tokens: 2 });
  assert.equal(ok.usage!.output_tokens, 2);
});
