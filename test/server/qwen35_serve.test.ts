// A Qwen3.5 model served end to end: the tiny real-vocabulary hybrid model (random weights) with
// the official Qwen3.5 tokenizer and chat template, through the OpenAI-compatible server and the
// official `openai` client. Forced tool calls come back in OpenAI form, streamed and not, with
// arguments that validate against the tool's schema; thinking on and off.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import OpenAI from 'openai';
import { Ajv } from 'ajv';
import { openChatModel, type LocalChatModel } from '../../src/chat/engine.js';
import { createServer } from '../../src/server/app.js';
import { WasmBackend } from '../../src/backend/wasm.js';
import { TIME, WEATHER } from './tools.js';
import { chatModelDir } from '../helpers.js';

const ajv = new Ajv({ strict: false });

let cm: LocalChatModel, server: Server, client: OpenAI;
const backend = new WasmBackend({ threads: 2 });
before(async () => {
  cm = openChatModel(chatModelDir('qwen3.5'), 'qwen35-tiny', { backend, onNote: () => {} });
  server = createServer(cm);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  client = new OpenAI({ apiKey: 'x', baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, maxRetries: 0, timeout: 120_000 });
});
after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  backend.dispose();
});

test('the Qwen3.5 model is served with its own template: XML tool format, thinking off unless asked for', async () => {
  assert.equal(cm.model.config.model_type, 'qwen3_5_text');
  assert.equal(cm.toolFormat, 'xml');
  // the official Qwen3.5 small-model template closes an empty <think> block unless enable_thinking is true
  const off = await client.chat.completions.create({ model: 'qwen35-tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6, temperature: 0 });
  const mo = off.choices[0]!.message as { content: string | null; reasoning_content?: string };
  assert.equal(off.usage!.completion_tokens, 6);
  assert.ok(!mo.reasoning_content, 'thinking off: no reasoning');
  assert.ok((mo.content ?? '').length > 0);
  const on = await client.chat.completions.create({
    model: 'qwen35-tiny',
    messages: [{ role: 'user', content: 'Hi' }],
    max_tokens: 6,
    temperature: 0,
    chat_template_kwargs: { enable_thinking: true },
  } as never);
  const m = on.choices[0]!.message as { content: string | null; reasoning_content?: string };
  assert.ok((m.reasoning_content ?? '').length > 0, 'the generation prompt opens <think>: the answer is reasoning');
});

test('forced tool calls on Qwen3.5: OpenAI tool_calls whose arguments validate, streamed and not', async () => {
  const validate = ajv.compile(WEATHER.function.parameters);
  const r = await client.chat.completions.create({
    model: 'qwen35-tiny',
    messages: [{ role: 'user', content: 'Weather in Oslo?' }],
    tools: [WEATHER, TIME],
    tool_choice: { type: 'function', function: { name: 'get_weather' } },
    max_tokens: 120,
    seed: 7,
    temperature: 1,
  });
  const choice = r.choices[0]!;
  assert.equal(choice.finish_reason, 'tool_calls', JSON.stringify(choice.message));
  const calls = choice.message.tool_calls as { id: string; type: string; function: { name: string; arguments: string } }[];
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.type, 'function');
  assert.equal(calls[0]!.function.name, 'get_weather');
  assert.ok(validate(JSON.parse(calls[0]!.function.arguments)), calls[0]!.function.arguments);

  const s = (await client.chat.completions.create({
    model: 'qwen35-tiny',
    messages: [{ role: 'user', content: 'Time?' }],
    tools: [WEATHER, TIME],
    tool_choice: 'required',
    max_tokens: 120,
    seed: 3,
    stream: true,
    chat_template_kwargs: { enable_thinking: false },
  } as never)) as unknown as AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>;
  const deltas: { index: number; function?: { name?: string; arguments?: string } }[] = [];
  let finish: string | null | undefined;
  for await (const c of s) {
    deltas.push(...((c.choices[0]?.delta.tool_calls ?? []) as typeof deltas));
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(deltas.length, 1);
  const tool = [WEATHER, TIME].find((t) => t.function.name === deltas[0]!.function!.name)!;
  assert.ok(tool, deltas[0]!.function!.name);
  assert.ok(ajv.validate(tool.function.parameters, JSON.parse(deltas[0]!.function!.arguments!)), deltas[0]!.function!.arguments);
});
