// The engine on its own thread (openChatModelThreaded, what `qwen-ts serve` runs) against the same
// model in process, both behind the OpenAI-compatible server and driven by the official client:
// the same answers (greedy, a JSON schema, a forced tool call, seeded sampling with logprobs), bad
// parameters still refused at once with the same messages, cancellation, and a dead engine thread
// ending its requests with an error while /health keeps answering.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import OpenAI from 'openai';
import { openChatModel, openChatModelThreaded, type ChatModel, type ThreadedChatModel } from '../../src/chat/engine.js';
import { WasmBackend } from '../../src/backend/wasm.js';
import { createServer } from '../../src/server/app.js';
import type { Constraint } from '../../src/generate/sequence.js';
import { chatModelDir } from '../helpers.js';

const MODEL = 'qwen3-tiny';
const wasm = new WasmBackend({ threads: 2 }); // the engine thread builds the same: createBackend('wasm', 2)
let local: ChatModel, threaded: ThreadedChatModel;
const servers: Server[] = [];
let lc: OpenAI, tc: OpenAI;

async function serve(cm: ChatModel): Promise<[OpenAI, string]> {
  const server = createServer(cm);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return [new OpenAI({ apiKey: 'x', baseURL: `${base}/v1`, maxRetries: 0, timeout: 60_000 }), base];
}

before(async () => {
  local = openChatModel(chatModelDir(), MODEL, { backend: wasm });
  threaded = await openChatModelThreaded(chatModelDir(), MODEL, { backend: 'wasm', threads: '2' });
  [lc] = await serve(local);
  [tc] = await serve(threaded);
});
after(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await threaded.close();
  wasm.dispose();
});

const USER = [{ role: 'user' as const, content: 'Hello, world! Tell me a joke about llamas.' }];
const WEATHER = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city', 'days'] },
  },
};
const SCHEMA = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 10 }, age: { type: 'integer' }, tags: { type: 'array', items: { enum: ['a', 'b'] }, maxItems: 3 } },
  required: ['name', 'age', 'tags'],
};

const REQUESTS: [string, Omit<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming, 'model'>][] = [
  ['greedy', { messages: USER, temperature: 0, max_tokens: 24 }],
  ['seeded sampling with logprobs', { messages: USER, temperature: 1, seed: 7, max_tokens: 16, logprobs: true, top_logprobs: 3 }],
  ['a JSON schema', { messages: USER, temperature: 0, max_tokens: 80, response_format: { type: 'json_schema', json_schema: { name: 'person', schema: SCHEMA } } }],
  ['a forced tool call', { messages: USER, temperature: 0, max_tokens: 80, tools: [WEATHER], tool_choice: { type: 'function', function: { name: 'get_weather' } } }],
];

for (const [label, req] of REQUESTS) {
  test(`${label}: the engine thread answers as the in-process engine`, async () => {
    const [a, b] = await Promise.all([lc, tc].map((c) => c.chat.completions.create({ model: MODEL, ...req })));
    const strip = (r: OpenAI.Chat.ChatCompletion) => ({
      ...r.choices[0]!,
      message: { ...r.choices[0]!.message, tool_calls: r.choices[0]!.message.tool_calls?.map((c) => ({ ...c, id: '' })) },
      usage: r.usage,
    });
    assert.deepEqual(strip(b!), strip(a!));
    if (label === 'a JSON schema') assert.deepEqual(Object.keys(JSON.parse(b!.choices[0]!.message.content!)), ['name', 'age', 'tags']);
    if (label === 'a forced tool call') assert.equal(b!.choices[0]!.message.tool_calls![0]!.type === 'function' && b!.choices[0]!.message.tool_calls![0]!.function.name, 'get_weather');
  });
}

test('streams concatenate to the same text; concurrent requests on the engine thread each get their own answer', async () => {
  const text = async (c: OpenAI, content: string) => {
    let s = '';
    for await (const ch of await c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content }], temperature: 0, max_tokens: 12, stream: true }))
      s += ch.choices[0]?.delta.content ?? '';
    return s;
  };
  const prompts = ['one', 'two two', 'three three three'];
  const want = await Promise.all(prompts.map((p) => text(lc, p)));
  assert.deepEqual(await Promise.all(prompts.map((p) => text(tc, p))), want);
});

test('bad parameters: the same synchronous errors as in process, and a 400 from the server', async () => {
  for (const [prompt, o] of [
    [[], { max_tokens: 1 }],
    [[1, 10 ** 7], { max_tokens: 1 }],
    [[1, 2], { max_tokens: 0 }],
    [[1], { max_tokens: 1, temperature: -1 }],
    [[1], { max_tokens: 1, logit_bias: { 999999: 1 } }],
  ] as const) {
    let want = '';
    assert.throws(
      () => local.scheduler.submit(prompt, o),
      (e: Error) => {
        want = e.message;
        return e.name === 'QwenError';
      },
    );
    assert.throws(
      () => threaded.scheduler.submit(prompt, o),
      (e: Error) => e.name === 'QwenError' && e.message === want,
    );
  }
  const bare: Constraint = { allowed: () => true, accept: () => {}, done: () => false };
  assert.throws(() => threaded.scheduler.submit([1, 2], { max_tokens: 1, constraint: bare }), /constraint cannot be sent to the engine thread/);
  assert.equal(threaded.scheduler.load, 0);
  await assert.rejects(tc.chat.completions.create({ model: MODEL, messages: USER, temperature: -1 }), (e: { status?: number; message: string }) => e.status === 400 && /temperature/.test(e.message));
});

test('cancellation: an abort signal and a consumer that leaves both stop the request on the engine thread', async () => {
  const ids = local.tokenizer.encode('Once upon a time');
  const ac = new AbortController();
  const it = threaded.scheduler.submit(ids, { temperature: 0, max_tokens: 500, signal: ac.signal });
  await it.next();
  ac.abort();
  let n = 1,
    r: IteratorResult<unknown, unknown>;
  while (!(r = await it.next()).done) n++;
  assert.equal(r.value, 'abort');
  assert.ok(n < 500);
  const it2 = threaded.scheduler.submit(ids, { temperature: 0, max_tokens: 500 });
  await it2.next();
  await it2.return('abort');
  for (let i = 0; i < 250 && threaded.scheduler.load > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(threaded.scheduler.load, 0);
  // a client that disconnects mid-stream
  const ac2 = new AbortController();
  const s = await tc.chat.completions.create({ model: MODEL, messages: USER, temperature: 0, max_tokens: 2000, stream: true }, { signal: ac2.signal });
  for await (const _ of s) {
    ac2.abort();
    break;
  }
  for (let i = 0; i < 250 && threaded.scheduler.load > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(threaded.scheduler.load, 0, 'the generation stopped');
});

test('a dead engine thread ends its open requests with an error (no hang); later requests fail at once; /health answers', async () => {
  const cm = await openChatModelThreaded(chatModelDir(), MODEL, { backend: 'wasm', threads: '1' });
  const [client, base] = await serve(cm);
  const stream = await client.chat.completions.create({ model: MODEL, messages: USER, temperature: 0, max_tokens: 2000, stream: true });
  const it = stream[Symbol.asyncIterator]();
  await it.next();
  await (cm.scheduler as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate(); // as a crash would
  await assert.rejects(async () => {
    for (let r = await it.next(); !r.done; r = await it.next());
  }, /engine thread exited/);
  assert.equal(cm.scheduler.load, 0);
  await assert.rejects(
    client.chat.completions.create({ model: MODEL, messages: USER, max_tokens: 2 }),
    (e: { status?: number; message: string }) => e.status === 500 && /engine thread exited/.test(e.message),
  );
  const h = await fetch(`${base}/health`);
  assert.equal(h.status, 200);
  await cm.close();
});

test('a model the engine thread cannot load: the opener rejects with its one-line error', async () => {
  await assert.rejects(openChatModelThreaded(chatModelDir(), MODEL, { backend: 'nope' }), (e: Error) => e.name === 'QwenError' && /--backend must be one of/.test(e.message));
  await assert.rejects(openChatModelThreaded(chatModelDir(), MODEL, { threads: '0' }), (e: Error) => e.name === 'QwenError' && /--threads must be an integer from 1 to 256/.test(e.message));
  await assert.rejects(openChatModelThreaded('/nonexistent/model', MODEL), (e: Error) => e.name === 'QwenError' && /no such file or folder/.test(e.message));
});
