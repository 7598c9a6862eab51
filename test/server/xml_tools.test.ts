// Qwen3.5 tool calls (XML, `<function=...>` / `<parameter=...>`) through the OpenAI-compatible
// server, with the official `openai` client. Models get the official Qwen3.5 chat template, so the
// engine picks the XML format from the template text:
//  - a scripted model double writes XML calls: the OpenAI tool_calls objects, streamed and not;
//  - the tiny random-weight fixture (byte-level vocabulary, no <tool_call> token) under
//    tool_choice required / named: constrained decoding writes the XML, and the parsed arguments
//    validate against the tool's schema (ajv).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import OpenAI from 'openai';
import { Ajv } from 'ajv';
import { openChatModel, prepareChat, toolCallFormat, type ChatModel } from '../../src/chat/engine.js';
import { Scheduler } from '../../src/generate/scheduler.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { createServer } from '../../src/server/app.js';
import { FIXTURES, fixtureDir, tmpDir } from '../helpers.js';
import { scriptedModel } from './scripted_model.js';

const QWEN35 = fs.readFileSync(path.join(FIXTURES, 'chat', 'qwen3.5-chat_template.jinja'), 'utf8');
const ajv = new Ajv({ strict: false });

/** A copy of a fixture folder whose tokenizer_config.json carries the Qwen3.5 chat template. */
function withQwen35Template(src: string, files: string[], config?: Record<string, unknown>): string {
  const dst = tmpDir('qwen-ts-qwen35-');
  for (const f of files) fs.copyFileSync(path.join(src, f), path.join(dst, f));
  const tc = JSON.parse(fs.readFileSync(path.join(src, 'tokenizer_config.json'), 'utf8'));
  fs.writeFileSync(path.join(dst, 'tokenizer_config.json'), JSON.stringify({ ...tc, chat_template: QWEN35 }));
  if (config) fs.writeFileSync(path.join(dst, 'config.json'), JSON.stringify({ ...JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8')), ...config }));
  return dst;
}

const WEATHER = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather forecast',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 12 }, days: { type: 'integer', minimum: 1, maximum: 7 }, unit: { enum: ['c', 'f'] }, opts: { type: 'object' } },
      required: ['city', 'days'],
    },
  },
};
const TIME = { type: 'function' as const, function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } } };

const CALLS =
  '<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n</parameter>\n<parameter=opts>\n{"units": "metric"}\n</parameter>\n</function>\n</tool_call>\n' +
  '<tool_call>\n<function=get_time>\n<parameter=zone>\nEurope/Paris\n</parameter>\n</function>\n</tool_call>';
const WANT = [
  ['get_weather', { city: 'Paris', days: 3, opts: { units: 'metric' } }],
  ['get_time', { zone: 'Europe/Paris' }],
];

let scripted: ChatModel, tiny: ChatModel;
const servers: Server[] = [];
let sc: OpenAI, tc: OpenAI;

async function serve(cm: ChatModel): Promise<OpenAI> {
  const server = createServer(cm);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return new OpenAI({ apiKey: 'x', baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, maxRetries: 0, timeout: 120_000 });
}

before(async () => {
  const qwen3 = fixtureDir('tokenizer/qwen3');
  const tok = loadTokenizer(withQwen35Template(qwen3, ['tokenizer.json']));
  // the script starts after `<|im_start|>assistant\n`, so it repeats the rest of the generation
  // prompt: an empty think block, or with enable_thinking (asked for with "(think)") an open one
  const model = scriptedModel(tok, (prompt) => {
    if (prompt.includes('<tool_response>')) return '<think>\n\n</think>\n\nSunny, 21 °C.';
    if (prompt.includes('(think)')) return `<think>\nTwo tools are needed.\n</think>\n\n${CALLS}`;
    return `<think>\n\n</think>\n\nLet me check both.\n\n${CALLS}`;
  });
  scripted = { name: 'scripted', path: '', model, config: model.config, tokenizer: tok, scheduler: new Scheduler(model), templateFallback: false, toolFormat: toolCallFormat(tok.chatTemplate!) };
  sc = await serve(scripted);
  const dir = withQwen35Template(fixtureDir('models/qwen2-tiny-tied'), ['model.safetensors', 'tokenizer.json'], { max_position_embeddings: 4096 });
  tiny = openChatModel(dir, 'tiny35');
  tc = await serve(tiny);
});
after(() => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))));

type Call = { id: string; type: string; function: { name: string; arguments: string } };

test('the engine reads the XML format from the Qwen3.5 template', () => {
  assert.equal(scripted.toolFormat, 'xml');
  assert.equal(tiny.toolFormat, 'xml');
  const p = prepareChat(tiny, { messages: [{ role: 'user', content: 'hi' }], tools: [WEATHER] }).prompt;
  assert.match(p, /<function=example_function_name>/);
  assert.ok(p.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n'));
});

test('XML calls the model writes come back as OpenAI tool_calls with typed arguments (not streamed)', async () => {
  const r = await sc.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'Weather and time in Paris?' }], tools: [WEATHER, TIME], max_tokens: 200 });
  const m = r.choices[0]!.message;
  assert.equal(r.choices[0]!.finish_reason, 'tool_calls');
  assert.equal(m.content, 'Let me check both.');
  const calls = m.tool_calls as Call[];
  assert.deepEqual(
    calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]),
    WANT,
  );
  for (const c of calls) {
    assert.equal(c.type, 'function');
    assert.match(c.id, /^call_/);
  }
  assert.notEqual(calls[0]!.id, calls[1]!.id);
});

test('streamed: one tool_calls delta per call, indexed; content and reasoning deltas as usual', async () => {
  for (const thinking of [false, true]) {
    const s = await sc.chat.completions.create({
      model: 'scripted',
      messages: [{ role: 'user', content: `Weather and time in Paris?${thinking ? ' (think)' : ''}` }],
      tools: [WEATHER, TIME],
      max_tokens: 200,
      stream: true,
      ...(thinking ? { chat_template_kwargs: { enable_thinking: true } } : {}),
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    const calls: { index: number; id?: string; function?: { name?: string; arguments?: string } }[] = [];
    let content = '',
      reasoning = '',
      finish: string | null | undefined;
    for await (const c of s) {
      const d = c.choices[0]?.delta as { content?: string; reasoning_content?: string; tool_calls?: typeof calls } | undefined;
      content += d?.content ?? '';
      reasoning += d?.reasoning_content ?? '';
      calls.push(...(d?.tool_calls ?? []));
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, 'tool_calls');
    assert.equal(content, thinking ? '' : 'Let me check both.');
    assert.equal(reasoning, thinking ? 'Two tools are needed.' : '');
    assert.deepEqual(
      calls.map((c) => [c.index, c.function?.name, JSON.parse(c.function!.arguments!)]),
      WANT.map((w, i) => [i, ...w]),
    );
  }
});

test("round trip: the calls and the tool results go back into the prompt in Qwen3.5's format", async () => {
  const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather and time in Paris?' }];
  const r = await sc.chat.completions.create({ model: 'scripted', messages, tools: [WEATHER, TIME], max_tokens: 200 });
  const m = r.choices[0]!.message;
  messages.push(m as OpenAI.ChatCompletionMessageParam);
  for (const c of m.tool_calls as Call[]) messages.push({ role: 'tool', tool_call_id: c.id, content: c.function.name === 'get_time' ? '12:00' : 'sunny' });
  const body = { model: 'scripted', messages, tools: [WEATHER, TIME], max_tokens: 50 };
  const p = prepareChat(scripted, {
    messages: messages.map((x) => ({
      ...x,
      tool_calls: (x as { tool_calls?: Call[] }).tool_calls?.map((c) => ({ function: { name: c.function.name, arguments: JSON.parse(c.function.arguments) } })),
    })),
    tools: body.tools,
  }).prompt;
  assert.ok(p.includes(`Let me check both.\n\n${CALLS}<|im_end|>`), p);
  assert.match(p, /<\|im_start\|>user\n<tool_response>\nsunny\n<\/tool_response>\n<tool_response>\n12:00\n<\/tool_response><\|im_end\|>/);
  const r2 = await sc.chat.completions.create(body);
  assert.equal(r2.choices[0]!.message.content, 'Sunny, 21 °C.');
  assert.equal(r2.choices[0]!.finish_reason, 'stop');
});

test('forced call on a random-weight model: XML by constrained decoding, arguments valid, streamed and not', async () => {
  const validate = ajv.compile(WEATHER.function.parameters);
  for (const seed of [1, 2]) {
    const r = await tc.chat.completions.create({
      model: 'tiny35',
      messages: [{ role: 'user', content: 'Weather in Oslo?' }],
      tools: [WEATHER, TIME],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 220,
      seed,
      temperature: 1,
    });
    const choice = r.choices[0]!;
    assert.equal(choice.finish_reason, 'tool_calls', JSON.stringify(choice.message));
    assert.equal(choice.message.content, null);
    const calls = choice.message.tool_calls as Call[];
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.function.name, 'get_weather');
    const args = JSON.parse(calls[0]!.function.arguments);
    assert.ok(validate(args), `${calls[0]!.function.arguments} ${JSON.stringify(validate.errors)}`);
  }
  for (const seed of [4, 5, 6]) {
    const s = await tc.chat.completions.create({
      model: 'tiny35',
      messages: [{ role: 'user', content: 'Anything?' }],
      tools: [WEATHER, TIME],
      tool_choice: 'required',
      max_tokens: 220,
      seed,
      stream: true,
    });
    const calls: { index: number; function?: { name?: string; arguments?: string } }[] = [];
    let finish: string | null | undefined,
      content = '';
    for await (const c of s) {
      calls.push(...((c.choices[0]?.delta.tool_calls ?? []) as typeof calls));
      content += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, 'tool_calls', content);
    assert.equal(calls.length, 1);
    const name = calls[0]!.function!.name!;
    const tool = [WEATHER, TIME].find((t) => t.function.name === name)!;
    assert.ok(tool, name);
    assert.ok(ajv.validate(tool.function.parameters, JSON.parse(calls[0]!.function!.arguments!)), calls[0]!.function!.arguments);
  }
});

test('a forced call with a tool XML cannot express is a 400 naming tools', async () => {
  const bad = { type: 'function' as const, function: { name: 'f', parameters: { anyOf: [{ type: 'object' }, { type: 'null' }] } } };
  await assert.rejects(
    tc.chat.completions.create({ model: 'tiny35', messages: [{ role: 'user', content: 'x' }], tools: [bad], tool_choice: 'required', max_tokens: 5 }),
    (e: Error & { status?: number; param?: string }) => e.status === 400 && e.param === 'tools' && /object schema/.test(e.message),
  );
  // without forcing, the same tools are fine (the model may or may not call them)
  const ok = await tc.chat.completions.create({ model: 'tiny35', messages: [{ role: 'user', content: 'x' }], tools: [bad], max_tokens: 3 });
  assert.equal(ok.choices[0]!.finish_reason, 'length');
});
