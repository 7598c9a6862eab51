// /v1/responses against a model double that writes a fixed script (thinking, then an answer or a
// tool call), through the official `openai` client: the output items and the streamed events are
// checked exactly, and the prompt each follow-up renders (previous_response_id, function_call_output,
// reasoning carried back) is compared with the chat template's rendering of the same conversation.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import OpenAI from 'openai';
import { prepareChat, type ChatModel } from '../../src/chat/engine.js';
import { Scheduler } from '../../src/generate/scheduler.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { createServer } from '../../src/server/app.js';
import { chatModelDir } from '../helpers.js';
import { scriptedModel } from './scripted_model.js';
import { checkEventOrder, withoutIds } from './response_events.js';

const tok = loadTokenizer(chatModelDir());
const FAIL = tok.encode(' Kaboom')[0]!;
const prompts: string[] = []; // what the model double was asked, newest last

let server: Server, client: OpenAI, cm: ChatModel;
before(async () => {
  const model = scriptedModel(
    tok,
    (prompt) => {
      if (prompts[prompts.length - 1] !== prompt) prompts.push(prompt);
      if (prompt.includes('<tool_response>')) return '<think>\nIt is sunny.\n</think>\n\nSunny, 21 degrees.';
      return prompt.includes('<tools>')
        ? '<think>\nThe user wants the weather.\n</think>\n\nLet me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
        : '<think>\n2 and 2 make 4.\n</think>\n\nThe answer is **4**.';
    },
    FAIL,
  );
  cm = { name: 'scripted', path: '', model, config: model.config, tokenizer: tok, scheduler: new Scheduler(model), templateFallback: false, toolFormat: 'json' };
  server = createServer(cm, { accessLog: false });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  client = new OpenAI({ apiKey: 'x', baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, maxRetries: 0 });
});
after(() => new Promise<void>((r) => server.close(() => r())));

const TOOLS = [
  { type: 'function' as const, name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: false },
];
const CHAT_TOOLS = [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: TOOLS[0]!.parameters } }];

async function events(body: Record<string, unknown>): Promise<any[]> {
  const s = (await client.responses.create({ model: 'scripted', ...body, stream: true } as never)) as unknown as AsyncIterable<any>;
  const out = [];
  for await (const e of s) out.push(e);
  return out;
}

test('thinking comes back as a reasoning item, the answer as a message; streamed events in the documented order', async () => {
  const r = await client.responses.create({ model: 'scripted', input: '2+2?', max_output_tokens: 100 });
  assert.equal(r.status, 'completed');
  assert.equal(r.object, 'response');
  assert.match(r.id, /^resp_/);
  assert.deepEqual(
    r.output.map((o) => o.type),
    ['reasoning', 'message'],
  );
  assert.deepEqual((r.output[0] as any).content, [{ type: 'reasoning_text', text: '2 and 2 make 4.' }]);
  assert.equal(r.output_text, 'The answer is **4**.');
  assert.equal((r.output[1] as any).status, 'completed');
  assert.equal(r.usage!.output_tokens, tok.encode('<think>\n2 and 2 make 4.\n</think>\n\nThe answer is **4**.').length); // <|im_end|> ends it, uncounted
  assert.ok(r.usage!.output_tokens_details.reasoning_tokens >= 5 && r.usage!.output_tokens_details.reasoning_tokens < r.usage!.output_tokens);
  assert.equal(r.usage!.input_tokens_details.cached_tokens, 0);
  const ev = await events({ input: '2+2?', max_output_tokens: 100 });
  const { items, response } = checkEventOrder(ev);
  assert.deepEqual(withoutIds(items), withoutIds(r.output as never));
  assert.equal(ev[ev.length - 1].type, 'response.completed');
  assert.equal(response.status, 'completed');
  assert.ok(ev.filter((e) => e.type === 'response.output_text.delta').length > 1, 'the text is streamed in pieces');
});

test('a tool call the model writes (tool_choice auto) is a function_call item; the follow-up renders the whole turn', async () => {
  const r = await client.responses.create({ model: 'scripted', input: 'Weather in Paris?', instructions: 'You are terse.', tools: TOOLS, max_output_tokens: 100 });
  assert.deepEqual(
    r.output.map((o) => o.type),
    ['reasoning', 'message', 'function_call'],
  );
  const call = r.output[2] as OpenAI.Responses.ResponseFunctionToolCall;
  assert.deepEqual([call.name, JSON.parse(call.arguments), call.status], ['get_weather', { city: 'Paris' }, 'completed']);
  assert.match(call.call_id, /^call_/);
  assert.match(call.id!, /^fc_/);
  assert.equal(r.output_text, 'Let me check.');
  const ev = await events({ input: 'Weather in Paris?', tools: TOOLS, max_output_tokens: 100 });
  const { items } = checkEventOrder(ev);
  assert.deepEqual(withoutIds(items), withoutIds(r.output as never));
  assert.ok(ev.some((e) => e.type === 'response.function_call_arguments.delta'));

  // the tool's result, by previous_response_id: instructions are not carried over (OpenAI's rule), so they are given again
  const r2 = await client.responses.create({
    model: 'scripted',
    previous_response_id: r.id,
    instructions: 'You are terse.',
    input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"temperature": 21}' }],
    tools: TOOLS,
    max_output_tokens: 100,
  });
  assert.equal(r2.output_text, 'Sunny, 21 degrees.');
  assert.equal(r2.previous_response_id, r.id);
  const messages = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Weather in Paris?' },
    {
      role: 'assistant',
      content: 'Let me check.',
      reasoning_content: 'The user wants the weather.',
      tool_calls: [{ id: call.call_id, type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris' } } }],
    },
    { role: 'tool', tool_call_id: call.call_id, content: '{"temperature": 21}' },
  ];
  const want = prepareChat(cm, { messages, tools: CHAT_TOOLS }).prompt;
  assert.equal(prompts[prompts.length - 1], want);
  assert.match(want, /<tool_call>\n\{"name": "get_weather", "arguments": \{"city": "Paris"\}\}\n<\/tool_call>/);
  assert.match(want, /<tool_response>\n\{"temperature": 21\}\n<\/tool_response>/);
  assert.equal(r2.usage!.input_tokens, prepareChat(cm, { messages, tools: CHAT_TOOLS }).ids.length);

  // the same conversation sent whole (store: false, as a client that keeps its own history does)
  const r3 = await client.responses.create({
    model: 'scripted',
    store: false,
    instructions: 'You are terse.',
    input: [{ role: 'user', content: 'Weather in Paris?' }, ...(r.output as any[]), { type: 'function_call_output', call_id: call.call_id, output: '{"temperature": 21}' }],
    tools: TOOLS,
    max_output_tokens: 100,
  });
  assert.equal(prompts[prompts.length - 1], want);
  assert.equal(r3.output_text, 'Sunny, 21 degrees.');
  await assert.rejects(client.responses.retrieve(r3.id), (e: Error) => e instanceof OpenAI.NotFoundError);
});

test('item_reference: items of stored responses are resolved by id', async () => {
  const r = await client.responses.create({ model: 'scripted', input: 'Weather?', tools: TOOLS, max_output_tokens: 100 });
  const call = r.output[2] as OpenAI.Responses.ResponseFunctionToolCall;
  await client.responses.create({
    model: 'scripted',
    store: false,
    input: [{ role: 'user', content: 'Weather?' }, ...r.output.map((o) => ({ type: 'item_reference' as const, id: o.id! })), { type: 'function_call_output', call_id: call.call_id, output: 'sunny' }],
    tools: TOOLS,
    max_output_tokens: 100,
  });
  const byRef = prompts[prompts.length - 1];
  await client.responses.create({
    model: 'scripted',
    previous_response_id: r.id,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: 'sunny' }],
    tools: TOOLS,
    max_output_tokens: 100,
  });
  assert.equal(prompts[prompts.length - 1], byRef);
  assert.match(byRef!, /<tool_response>\nsunny\n<\/tool_response>/);
});

test('max_output_tokens cuts the answer: status incomplete, the message item incomplete, response.incomplete last', async () => {
  // 16 of the script's 19 tokens: the answer is cut short
  const r = await client.responses.create({ model: 'scripted', input: '2+2?', max_output_tokens: 16 });
  assert.equal(r.status, 'incomplete');
  assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(r.usage!.output_tokens, 16);
  assert.deepEqual(
    r.output.map((o) => [o.type, (o as { status?: string }).status]),
    [
      ['reasoning', undefined],
      ['message', 'incomplete'],
    ],
  );
  assert.ok('The answer is **4**.'.startsWith(r.output_text) && r.output_text.length < 20);
  const ev = await events({ input: '2+2?', max_output_tokens: 16 });
  const { response } = checkEventOrder(ev);
  assert.equal(ev[ev.length - 1].type, 'response.incomplete');
  assert.deepEqual(withoutIds(response.output), withoutIds(r.output as never));
});

test("reasoning effort 'none' is Qwen3's enable_thinking=false: the template closes an empty think block", async () => {
  const r = await client.responses.create({ model: 'scripted', input: '2+2?', max_output_tokens: 1, reasoning: { effort: 'none' } });
  const messages = [{ role: 'user', content: '2+2?' }];
  assert.equal(r.usage!.input_tokens, prepareChat(cm, { messages, enable_thinking: false }).ids.length);
  assert.equal(r.usage!.input_tokens, prepareChat(cm, { messages }).ids.length + tok.encode('<think>\n\n</think>\n\n').length);
});

test('an engine fault: 500 without streaming, response.failed in a stream; the server keeps serving', async () => {
  await assert.rejects(
    client.responses.create({ model: 'scripted', input: 'say Kaboom', max_output_tokens: 5 }),
    (e: Error) => e instanceof OpenAI.InternalServerError && /engine fault/.test(e.message),
  );
  const ev = await events({ input: 'say Kaboom', max_output_tokens: 5 });
  assert.deepEqual(
    ev.map((e) => e.type),
    ['response.created', 'response.in_progress', 'response.failed'],
  );
  assert.equal(ev[2].response.status, 'failed');
  assert.match(ev[2].response.error.message, /engine fault/);
  const ok = await client.responses.create({ model: 'scripted', input: '2+2?', max_output_tokens: 100 });
  assert.equal(ok.output_text, 'The answer is **4**.');
});
