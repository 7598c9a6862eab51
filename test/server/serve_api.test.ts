// The rest of issue 13's API surface on the tiny real-vocabulary Qwen3: n choices (each its own
// seeded generation, streamed and not, chat and completions), GET /v1/models/{id}, GET /metrics
// (checked line by line against the Prometheus text format's grammar, then read with
// parse-prometheus-text-format, a lenient parser, for the values) and the access-log line.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import OpenAI from 'openai';
import { openChatModel, openChatModelThreaded, type ChatModel } from '../../src/chat/engine.js';
import { createServer } from '../../src/server/app.js';
import { chatModelDir, fixtureDir, listen } from '../helpers.js';
import * as fs from 'node:fs';
import * as path from 'node:path';

type Family = { name: string; help: string; type: string; metrics: { value: string; labels?: Record<string, string> }[] };
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

const MODEL = 'qwen3-tiny';
const NAMED = 'org/qwen3-tiny'; // a model name with a slash, as hub names are
let cm: ChatModel, one: ChatModel;
let server: Server, client: OpenAI, metricsServer: Server, mBase: string, mClient: OpenAI;
const log: string[] = [];

before(async () => {
  cm = openChatModel(chatModelDir(), MODEL);
  server = createServer(cm, { accessLog: false });
  client = new OpenAI({ apiKey: 'x', baseURL: `${await listen(server)}/v1`, maxRetries: 0, timeout: 60_000 });
  one = openChatModel(chatModelDir(), NAMED, { parallel: 1 }); // one sequence at a time: a second request waits
  metricsServer = createServer(one, { accessLog: (line) => log.push(line), apiKey: 'k' });
  mBase = await listen(metricsServer);
  mClient = new OpenAI({ apiKey: 'k', baseURL: `${mBase}/v1`, maxRetries: 0, timeout: 60_000 });
});
after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await new Promise<void>((r) => metricsServer.close(() => r()));
});

test('n = 2: two generations, choice i seeded with seed + i, streamed and not, chat and completions', async () => {
  const req = { model: MODEL, messages: [{ role: 'user' as const, content: 'Tell me a story' }], temperature: 1, max_tokens: 8 };
  const alone = [await client.chat.completions.create({ ...req, seed: 7 }), await client.chat.completions.create({ ...req, seed: 8 })];
  const texts = alone.map((r) => r.choices[0]!.message.content);
  assert.notEqual(texts[0], texts[1], 'two seeds, two samples');
  const both = await client.chat.completions.create({ ...req, seed: 7, n: 2 });
  assert.deepEqual(
    both.choices.map((c) => [c.index, c.message.content]),
    [
      [0, texts[0]],
      [1, texts[1]],
    ],
  );
  assert.deepEqual(both.usage, {
    prompt_tokens: alone[0]!.usage!.prompt_tokens,
    completion_tokens: alone[0]!.usage!.completion_tokens + alone[1]!.usage!.completion_tokens,
    total_tokens: alone[0]!.usage!.prompt_tokens + alone[0]!.usage!.completion_tokens + alone[1]!.usage!.completion_tokens,
    prompt_tokens_details: { cached_tokens: both.usage!.prompt_tokens_details!.cached_tokens },
  });
  const s = await client.chat.completions.create({ ...req, seed: 7, n: 2, stream: true, stream_options: { include_usage: true } });
  const streamed = ['', ''],
    finish: (string | null)[] = [null, null];
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const c of s) {
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      streamed[ch.index] += ch.delta.content ?? '';
      finish[ch.index] = ch.finish_reason ?? finish[ch.index]!;
    }
  }
  assert.deepEqual(streamed, texts);
  assert.deepEqual(
    finish,
    both.choices.map((c) => c.finish_reason),
  );
  assert.equal(usage!.completion_tokens, both.usage!.completion_tokens);
  // greedy: every choice is the greedy answer
  const greedy = await client.chat.completions.create({ ...req, temperature: 0, n: 3 });
  assert.equal(new Set(greedy.choices.map((c) => c.message.content)).size, 1);

  const creq = { model: MODEL, prompt: 'Once upon a time', temperature: 1, max_tokens: 6 };
  const c1 = await client.completions.create({ ...creq, seed: 3 }),
    c2 = await client.completions.create({ ...creq, seed: 4 });
  const cn = await client.completions.create({ ...creq, seed: 3, n: 2 });
  assert.deepEqual(
    cn.choices.map((c) => [c.index, c.text]),
    [
      [0, c1.choices[0]!.text],
      [1, c2.choices[0]!.text],
    ],
  );
  const cs = await client.completions.create({ ...creq, seed: 3, n: 2, stream: true });
  const ctexts = ['', ''];
  for await (const c of cs) for (const ch of c.choices) ctexts[ch.index] += ch.text;
  assert.deepEqual(
    ctexts,
    cn.choices.map((c) => c.text),
  );
});

test("GET /v1/models/{id}: the served model (a name with a slash too); others are a 404 in OpenAI's shape", async () => {
  const m = await mClient.models.retrieve(NAMED); // the client sends the slash percent-encoded
  assert.deepEqual([m.id, m.object, m.owned_by], [NAMED, 'model', 'qwen-ts']);
  const raw = await fetch(`${mBase}/v1/models/${NAMED}`, { headers: { Authorization: 'Bearer k' } });
  assert.equal((await raw.json()).id, NAMED);
  await assert.rejects(
    mClient.models.retrieve('gpt-4'),
    (e: any) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found' && e.param === 'model' && e.type === 'invalid_request_error' && /gpt-4/.test(e.message),
  );
  assert.equal((await fetch(`${mBase}/v1/models/${NAMED}`)).status, 401, 'behind the API key like the rest of /v1');
  assert.equal((await client.models.retrieve(MODEL)).id, MODEL);
});

// The Prometheus text format (version 0.0.4), strictly: comment lines are HELP or TYPE, each family
// typed once before its samples, samples of a family together, labels quoted and escaped.
function checkGrammar(text: string): void {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const VALUE = '(?:[-+]?(?:\\d+\\.?\\d*(?:[eE][-+]?\\d+)?|\\.\\d+(?:[eE][-+]?\\d+)?)|NaN|[+-]Inf)';
  const LABELS = '\\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*")*,?)?\\}';
  const sample = new RegExp(`^(${NAME})(?:${LABELS})? ${VALUE}(?: -?\\d+)?$`);
  const help = new RegExp(`^# HELP (${NAME}) .*$`);
  const type = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
  const typed = new Map<string, string>();
  const done = new Set<string>();
  let current: string | undefined;
  for (const line of text.slice(0, -1).split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = help.exec(line))) continue;
    if ((m = type.exec(line))) {
      assert.ok(!typed.has(m[1]!), `${m[1]} typed twice`);
      typed.set(m[1]!, m[2]!);
      if (current) done.add(current);
      current = m[1];
      continue;
    }
    m = sample.exec(line);
    assert.ok(m, `not a Prometheus text line: ${JSON.stringify(line)}`);
    assert.equal(m[1], current, `${m[1]}: a sample outside its family`);
    assert.ok(!done.has(m[1]!));
  }
}

test('GET /metrics: Prometheus text; requests by endpoint and status, tokens, throughput, queue, running, prefix-cache hit rate', async () => {
  const metrics = async () => {
    const r = await fetch(`${mBase}/metrics`, { headers: { Authorization: 'Bearer k' } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    checkGrammar(text);
    const fams = parsePrometheus(text);
    const value = (name: string, labels: Record<string, string> = {}) => {
      const f = fams.find((x) => x.name === name);
      assert.ok(f, `no ${name}`);
      const s = f.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
      return s ? Number(s.value) : 0;
    };
    return { fams, value };
  };
  assert.equal((await fetch(`${mBase}/metrics`)).status, 401, 'behind the API key');
  const a = await mClient.chat.completions.create({ model: NAMED, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
  const b = await mClient.responses.create({ model: NAMED, input: 'hello there', max_output_tokens: 3 });
  const c = await mClient.completions.create({ model: NAMED, prompt: 'abc', max_tokens: 2, n: 2 });
  await assert.rejects(mClient.chat.completions.create({ model: NAMED, messages: [], max_tokens: 4 }));
  await fetch(`${mBase}/v1/nothing`, { headers: { Authorization: 'Bearer k' } });
  const { fams, value } = await metrics();
  for (const f of fams) assert.match(f.name, /^qwen_ts_/);
  for (const f of fams) for (const s of f.metrics) assert.ok(Number.isFinite(Number(s.value)), `${f.name} ${s.value}`);
  assert.deepEqual(Object.fromEntries(fams.map((f) => [f.name, f.type])), {
    qwen_ts_requests_total: 'COUNTER',
    qwen_ts_prompt_tokens_total: 'COUNTER',
    qwen_ts_prompt_tokens_cached_total: 'COUNTER',
    qwen_ts_generation_tokens_total: 'COUNTER',
    qwen_ts_generation_tokens_per_second: 'GAUGE',
    qwen_ts_requests_running: 'GAUGE',
    qwen_ts_requests_waiting: 'GAUGE',
    qwen_ts_prefix_cache_hit_rate: 'GAUGE',
    qwen_ts_prefix_cache_bytes: 'GAUGE',
    qwen_ts_prefix_cache_budget_bytes: 'GAUGE',
    qwen_ts_prefix_cache_blocks: 'GAUGE',
    qwen_ts_prefix_cache_evictions_total: 'COUNTER',
  });
  // these prompts are shorter than one 16-token block: nothing cached yet, within the default budget
  assert.ok(value('qwen_ts_prefix_cache_budget_bytes') > 0);
  assert.equal(value('qwen_ts_prefix_cache_blocks'), 0);
  assert.equal(value('qwen_ts_prefix_cache_bytes'), 0);
  assert.equal(value('qwen_ts_requests_total', { endpoint: '/v1/chat/completions', status: '200' }), 1);
  assert.equal(value('qwen_ts_requests_total', { endpoint: '/v1/chat/completions', status: '400' }), 1);
  assert.equal(value('qwen_ts_requests_total', { endpoint: '/v1/responses', status: '200' }), 1);
  assert.equal(value('qwen_ts_requests_total', { endpoint: '/v1/completions', status: '200' }), 1);
  assert.equal(value('qwen_ts_requests_total', { endpoint: 'other', status: '404' }), 1);
  assert.equal(value('qwen_ts_requests_total', { endpoint: '/metrics', status: '401' }), 1);
  const prompt = a.usage!.prompt_tokens + b.usage!.input_tokens + c.usage!.prompt_tokens;
  const cached = a.usage!.prompt_tokens_details!.cached_tokens! + b.usage!.input_tokens_details.cached_tokens + (c.usage as any).prompt_tokens_details.cached_tokens;
  const generated = a.usage!.completion_tokens + b.usage!.output_tokens + c.usage!.completion_tokens;
  assert.equal(value('qwen_ts_prompt_tokens_total'), prompt);
  assert.equal(value('qwen_ts_prompt_tokens_cached_total'), cached);
  assert.equal(value('qwen_ts_generation_tokens_total'), generated);
  assert.equal(generated, 4 + 3 + 4);
  assert.ok(Math.abs(value('qwen_ts_prefix_cache_hit_rate') - cached / prompt) < 1e-12);
  assert.ok(value('qwen_ts_generation_tokens_per_second') > 0);
  assert.equal(value('qwen_ts_requests_running'), 0);
  assert.equal(value('qwen_ts_requests_waiting'), 0);

  // two long streams on a one-slot scheduler: one runs, one waits; both cancelled, both gone
  const acs = [new AbortController(), new AbortController()];
  const streams = await Promise.all(
    acs.map((ac) => mClient.chat.completions.create({ model: NAMED, messages: [{ role: 'user', content: 'Tell me a long story' }], max_tokens: 400, stream: true }, { signal: ac.signal })),
  );
  const it = streams[0]![Symbol.asyncIterator]();
  for (let i = 0; i < 3; i++) await it.next(); // the first stream is generating
  let busy = await metrics();
  for (let i = 0; i < 100 && busy.value('qwen_ts_requests_waiting') !== 1; i++) busy = await metrics();
  assert.equal(busy.value('qwen_ts_requests_running'), 1);
  assert.equal(busy.value('qwen_ts_requests_waiting'), 1);
  for (const ac of acs) ac.abort();
  await it.return?.();
  for (let i = 0; i < 200 && one.scheduler.load > 0; i++) await new Promise((r) => setTimeout(r, 20));
  let idle = await metrics();
  for (let i = 0; i < 100 && idle.value('qwen_ts_requests_total', { endpoint: '/v1/chat/completions', status: '499' }) < 2; i++) idle = await metrics();
  assert.equal(idle.value('qwen_ts_requests_running'), 0);
  assert.equal(idle.value('qwen_ts_requests_waiting'), 0);
  assert.equal(idle.value('qwen_ts_requests_total', { endpoint: '/v1/chat/completions', status: '499' }), 2, 'cancelled requests are 499s');
});

test('the access log: one line per request with method, path, status, prompt / cached / completion tokens and time', async () => {
  log.length = 0;
  const r = await mClient.chat.completions.create({ model: NAMED, messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 });
  await fetch(`${mBase}/v1/nothing`, { headers: { Authorization: 'Bearer k' } });
  await new Promise((res) => setTimeout(res, 50)); // 'close' follows the last byte
  assert.equal(log.length, 2, log.join('\n'));
  const m = /^(\S+) POST \/v1\/chat\/completions 200 prompt=(\d+) cached=(\d+) completion=(\d+) (\d+)ms$/.exec(log[0]!);
  assert.ok(m, log[0]);
  assert.ok(!Number.isNaN(Date.parse(m[1]!)));
  assert.deepEqual(m.slice(2, 5).map(Number), [r.usage!.prompt_tokens, r.usage!.prompt_tokens_details!.cached_tokens, r.usage!.completion_tokens]);
  assert.match(log[1]!, /^\S+ GET \/v1\/nothing 404 prompt=0 cached=0 completion=0 \d+ms$/);
  // by default the line goes to stderr; accessLog: false writes none
  for (const accessLog of [undefined, false]) {
    const s = createServer(one, { accessLog });
    const base = await listen(s);
    const written: string[] = [];
    const orig = process.stderr.write;
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      if (typeof chunk === 'string' && chunk.includes('/health')) {
        written.push(chunk);
        return true;
      }
      return orig.call(process.stderr, chunk, ...rest);
    }) as typeof process.stderr.write;
    try {
      await (await fetch(`${base}/health`)).json();
      await new Promise((res) => setTimeout(res, 50));
    } finally {
      process.stderr.write = orig;
      await new Promise<void>((res) => s.close(() => res()));
    }
    if (accessLog === false) assert.deepEqual(written, []);
    else assert.match(written.join(''), /^\S+ GET \/health 200 prompt=0 cached=0 completion=0 \d+ms\n$/);
  }
});

test('on the engine thread (what qwen-ts serve runs): /v1/responses greedy, n = 2 seeded, /metrics', async () => {
  const ref = JSON.parse(fs.readFileSync(path.join(fixtureDir('models/qwen3-tiny-realvocab'), 'reference.json'), 'utf8')).cases[0];
  const threaded = await openChatModelThreaded(chatModelDir(), MODEL, { threads: '1' });
  const s = createServer(threaded, { accessLog: false });
  try {
    const base = await listen(s);
    const c = new OpenAI({ apiKey: 'x', baseURL: `${base}/v1`, maxRetries: 0, timeout: 60_000 });
    const r = await c.responses.create({ model: MODEL, input: 'Hello, world! 你好，世界。 Tell me a joke about llamas 🦙.', temperature: 0, max_output_tokens: 16 });
    assert.equal(r.output_text, threaded.tokenizer.decode(ref.greedy_generated_ids));
    const req = { model: MODEL, messages: [{ role: 'user' as const, content: 'Tell me a story' }], temperature: 1, max_tokens: 8 };
    const alone = [await c.chat.completions.create({ ...req, seed: 7 }), await c.chat.completions.create({ ...req, seed: 8 })];
    const both = await c.chat.completions.create({ ...req, seed: 7, n: 2 });
    assert.deepEqual(
      both.choices.map((x) => x.message.content),
      alone.map((x) => x.choices[0]!.message.content),
    );
    const text = await (await fetch(`${base}/metrics`)).text();
    checkGrammar(text);
    assert.match(text, /^qwen_ts_requests_total\{endpoint="\/v1\/chat\/completions",status="200"\} 3$/m);
    assert.match(text, /^qwen_ts_requests_running 0$/m);
  } finally {
    await new Promise<void>((res) => s.close(() => res()));
    await threaded.close();
  }
});
