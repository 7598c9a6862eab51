// The Vercel AI SDK's default OpenAI provider (`createOpenAI(...)(model)`, which since AI SDK 5
// calls POST /v1/responses) against the server on the tiny real-vocabulary Qwen3: generateText and
// streamText give llama.cpp's greedy continuation, and a tool call runs through the SDK's tool loop
// (the second step sends the stored items back as item_references and the tool's output).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, jsonSchema, stepCountIs, streamText, tool } from 'ai';
import { Ajv } from 'ajv';
import { openChatModel, prepareChat, type ChatModel } from '../../src/chat/engine.js';
import { createServer } from '../../src/server/app.js';
import { chatModelDir, fixtureDir } from '../helpers.js';

const MODEL = 'qwen3-tiny';
const USER = 'Hello, world! 你好，世界。 Tell me a joke about llamas 🦙.';
const ref = JSON.parse(fs.readFileSync(path.join(fixtureDir('models/qwen3-tiny-realvocab'), 'reference.json'), 'utf8')).cases[0];
const requests: { url: string; body: any; status: number }[] = []; // what the SDK sent, and the answer's status
let server: Server, cm: ChatModel, openai: ReturnType<typeof createOpenAI>;

before(async () => {
  cm = openChatModel(chatModelDir(), MODEL);
  server = createServer(cm, { accessLog: false });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  openai = createOpenAI({
    baseURL: `${base}/v1`,
    apiKey: 'unused',
    fetch: async (url, init) => {
      const r = await fetch(url, init);
      requests.push({ url: String(url), body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined, status: r.status });
      return r;
    },
  });
});
after(() => new Promise<void>((r) => server.close(() => r())));

test('generateText and streamText: the greedy continuation, through /v1/responses', async () => {
  const greedy = cm.tokenizer.decode(ref.greedy_generated_ids);
  const r = await generateText({ model: openai(MODEL), prompt: USER, temperature: 0, maxOutputTokens: 16 });
  assert.equal(r.text, greedy);
  assert.equal(r.finishReason, 'length');
  assert.equal(r.usage.inputTokens, ref.prompt_ids.length);
  assert.equal(r.usage.outputTokens, 16);
  const last = requests[requests.length - 1]!;
  assert.match(last.url, /\/v1\/responses$/);
  assert.equal(last.status, 200);
  const s = streamText({
    model: openai(MODEL),
    prompt: USER,
    temperature: 0,
    maxOutputTokens: 16,
    onError: ({ error }) => {
      throw error;
    },
  });
  let text = '';
  for await (const d of s.textStream) text += d;
  assert.equal(text, greedy);
  assert.equal(await s.finishReason, 'length');
  assert.equal(requests[requests.length - 1]!.body.stream, true);
});

test("a tool call through the SDK's tool loop: forced call, the tool runs, the result goes back", async () => {
  const parameters = { type: 'object' as const, properties: { city: { type: 'string' as const, maxLength: 20 } }, required: ['city'], additionalProperties: false };
  const validate = new Ajv().compile(parameters);
  const seen: unknown[] = [];
  const before = requests.length;
  const r = await generateText({
    model: openai(MODEL),
    prompt: 'What is the weather in Paris?',
    temperature: 0,
    maxOutputTokens: 40,
    tools: {
      get_weather: tool({
        description: 'Current weather in a city',
        inputSchema: jsonSchema<{ city: string }>(parameters),
        execute: async (args) => {
          seen.push(args);
          return { temperature: 21 };
        },
      }),
    },
    toolChoice: { type: 'tool', toolName: 'get_weather' },
    prepareStep: ({ stepNumber }) => (stepNumber > 0 ? { toolChoice: 'none' } : {}),
    stopWhen: stepCountIs(2),
  });
  assert.equal(r.steps.length, 2);
  const call = r.steps[0]!.toolCalls[0]!;
  assert.equal(call.toolName, 'get_weather');
  assert.ok(validate(call.input), JSON.stringify(validate.errors));
  assert.deepEqual(seen, [call.input]);
  assert.deepEqual(
    r.steps[0]!.toolResults.map((t) => t.output),
    [{ temperature: 21 }],
  );
  const sent = requests.slice(before);
  assert.deepEqual(
    sent.map((q) => q.status),
    [200, 200],
  );
  const input = sent[1]!.body.input as any[];
  const out = input.find((i) => i.type === 'function_call_output');
  assert.equal(out.call_id, call.toolCallId);
  assert.deepEqual(JSON.parse(out.output), { temperature: 21 });
  assert.deepEqual(
    input.filter((i) => i.type === 'function_call').map((i) => [i.call_id, i.name]),
    [[call.toolCallId, 'get_weather']],
  );
  // step 2 (tool_choice 'none': the tools are not offered) rendered the whole exchange, as the chat template does
  const messages = [
    { role: 'user', content: 'What is the weather in Paris?' },
    { role: 'assistant', content: '', tool_calls: [{ id: call.toolCallId, type: 'function', function: { name: 'get_weather', arguments: call.input } }] },
    { role: 'tool', tool_call_id: call.toolCallId, content: out.output },
  ];
  assert.equal(r.steps[1]!.usage.inputTokens, prepareChat(cm, { messages }).ids.length);
});

test('a second turn: the SDK refers to the stored assistant message by item_reference', async () => {
  const first = await generateText({ model: openai(MODEL), prompt: 'Hi there', temperature: 0, maxOutputTokens: 6 });
  const before = requests.length;
  const messages = [{ role: 'user' as const, content: 'Hi there' }, ...first.response.messages, { role: 'user' as const, content: 'And again?' }];
  const second = await generateText({ model: openai(MODEL), messages, temperature: 0, maxOutputTokens: 6 });
  const input = requests[before]!.body.input as any[];
  const ref = input.find((i) => i.type === 'item_reference');
  assert.ok(ref, JSON.stringify(input));
  assert.match(ref.id, /^msg_/);
  const chat = [
    { role: 'user', content: 'Hi there' },
    { role: 'assistant', content: first.text },
    { role: 'user', content: 'And again?' },
  ];
  assert.equal(second.usage.inputTokens, prepareChat(cm, { messages: chat }).ids.length);
});
