// Attacks on the server, each asserting the clean outcome: a 4xx naming the parameter (or header),
// in bounded time, the model not run for a refused request, and the server answering a normal
// request within a second afterwards.
//   - a huge message list or text is refused before the template and tokeniser run (they would
//     block the HTTP thread for seconds: /health must keep answering)
//   - a page from another site cannot drive the server from the user's browser (CORS, 403; JSON
//     content type required, 415)
//   - logit_bias is applied (OpenAI semantics) and validated
//   - chat_template_kwargs cannot replace the template variables the engine sets
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { chat, openChatModel, prepareChat, type ChatModel, type LocalChatModel } from '../../src/chat/engine.js';
import { QwenError } from '../../src/errors.js';
import { generate } from '../../src/generate/generate.js';
import { Scheduler } from '../../src/generate/scheduler.js';
import type { CausalLM } from '../../src/models/model.js';
import { createServer, type ServerOptions } from '../../src/server/app.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { chatModelDir } from '../helpers.js';
import { scriptedModel } from './scripted_model.js';

const tok = loadTokenizer(chatModelDir());
const ANSWER = 'Hello there.';
let forwards = 0; // forward passes of the scripted model: a refused request must not add any
const scripted = scriptedModel(tok, () => ANSWER);
const counted: CausalLM = { ...scripted, forward: (b, c) => (forwards++, scripted.forward(b, c)) };

interface Running {
  server: http.Server;
  port: number;
  client: OpenAI;
}
const running: http.Server[] = [];

async function start(model: CausalLM, opts: ServerOptions = {}, name = 'scripted', tokenizer = tok): Promise<Running> {
  const cm: ChatModel = { name, path: '', model, config: model.config, tokenizer, scheduler: new Scheduler(model), templateFallback: false, toolFormat: 'json' };
  const server = createServer(cm, opts);
  running.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { server, port, client: new OpenAI({ apiKey: 'x', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0, timeout: 30_000 }) };
}

let small: Running, huge: Running, listed: Running, open: Running;
before(async () => {
  small = await start(counted); // 4096-token context
  // Qwen3.5's context: the cheap bounds must hold for the largest a served model has
  huge = await start({ ...counted, config: { ...counted.config, max_position_embeddings: 262144 } });
  listed = await start(counted, { cors: ['https://app.example.com', 'http://192.168.1.5:3000'] });
  open = await start(counted, { cors: ['*'] });
});
after(() => Promise.all(running.map((s) => new Promise<void>((r) => s.close(() => r())))));

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

/** A request with exactly these headers (fetch would add or refuse some, e.g. Origin, Host). */
function raw(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: data, ms: performance.now() - t0 }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const JSON_TYPE = { 'Content-Type': 'application/json' };
const chatBody = (extra: Record<string, unknown> = {}) => JSON.stringify({ model: 'scripted', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8, temperature: 0, ...extra });
const errorOf = (r: Reply) => (JSON.parse(r.body) as { error: { message: string; param: string | null; code: string | null } }).error;

/** The server still answers a normal request, within a second. */
async function stillServing(s: Running): Promise<void> {
  const t0 = performance.now();
  const r = await s.client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20, temperature: 0 });
  assert.equal(r.choices[0]!.message.content, ANSWER);
  const ms = performance.now() - t0;
  assert.ok(ms < 1000, `a normal request took ${ms.toFixed(0)} ms after the attack`);
}

/**
 * Send `body` to `path` while polling /health: every /health answers within a second, and the
 * attack is answered with a 400 within `bound` ms.
 */
async function attack(s: Running, path: string, body: string, bound = 1500): Promise<Reply> {
  let done = false;
  const pending = raw(s.port, 'POST', path, JSON_TYPE, body).finally(() => (done = true));
  const health: number[] = [];
  do {
    const h = await raw(s.port, 'GET', '/health');
    assert.equal(h.status, 200);
    health.push(h.ms);
    await new Promise((r) => setTimeout(r, 10));
  } while (!done);
  const r = await pending;
  assert.ok(Math.max(...health) < 1000, `/health took up to ${Math.max(...health).toFixed(0)} ms during the attack`);
  assert.ok(r.ms < bound, `the attack took ${r.ms.toFixed(0)} ms to be refused`);
  assert.equal(r.status, 400, r.body.slice(0, 300));
  return r;
}

// --- 4: huge prompts are refused before the template and the tokeniser run

const manyMessages = JSON.stringify({ model: 'scripted', messages: Array.from({ length: 200_000 }, () => ({ role: 'user', content: 'a' })), max_tokens: 4 });

test('200,000 one-character messages (6 MB) are refused at once, /health answering throughout', async () => {
  assert.ok(manyMessages.length > 5e6 && manyMessages.length < 8 << 20, 'under the default body limit');
  for (const s of [small, huge]) {
    const before = forwards;
    const e = errorOf(await attack(s, '/v1/chat/completions', manyMessages));
    assert.equal(e.param, 'messages');
    assert.equal(e.code, 'context_length_exceeded');
    assert.match(e.message, /200000 messages.*context of (4096|262144) tokens/);
    assert.equal(forwards, before, 'the model did not run');
    await stillServing(s);
  }
});

test('a 6 MB message or completion prompt the tokeniser would chew on for seconds is refused at once', async () => {
  const text = 'x'.repeat(6_000_000); // one pre-token: the slowest case for BPE
  const e = errorOf(
    await attack(
      small,
      '/v1/chat/completions',
      JSON.stringify({
        model: 'scripted',
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: text },
        ],
      }),
    ),
  );
  assert.deepEqual([e.param, e.code], ['messages', 'context_length_exceeded']);
  assert.match(e.message, /6000008 characters/);
  const p = errorOf(await attack(small, '/v1/completions', JSON.stringify({ model: 'scripted', prompt: text })));
  assert.deepEqual([p.param, p.code], ['prompt', 'context_length_exceeded']);
  await stillServing(small);
});

test('the bounds refuse nothing that fits: a 300-message conversation is answered', async () => {
  const messages = Array.from({ length: 300 }, (_, i) => ({ role: i % 2 ? ('assistant' as const) : ('user' as const), content: 'hi' }));
  messages.push({ role: 'user', content: 'and now?' });
  const r = await small.client.chat.completions.create({ model: 'scripted', messages, max_tokens: 20, temperature: 0 });
  assert.equal(r.choices[0]!.message.content, ANSWER);
  assert.ok(r.usage!.prompt_tokens > 1500);
});

// --- 7: cross-origin pages and non-JSON bodies

test('a POST from a foreign web page gets a 403 without CORS headers, and the model does not run', async () => {
  const before = forwards;
  for (const origin of ['https://evil.example', 'http://localhost.evil.example', 'http://127.0.0.1.nip.io:8080', 'null', 'file://', 'chrome-extension://abc']) {
    for (const type of ['application/json', 'text/plain']) {
      const r = await raw(small.port, 'POST', '/v1/chat/completions', { Origin: origin, 'Content-Type': type }, chatBody());
      assert.equal(r.status, 403, `${origin} ${type}`);
      assert.equal(r.headers['access-control-allow-origin'], undefined);
      const e = errorOf(r);
      assert.equal(e.code, 'origin_not_allowed');
      assert.match(e.message, /cross-origin.*--cors/);
    }
  }
  const get = await raw(small.port, 'GET', '/v1/models', { Origin: 'https://evil.example' });
  assert.equal(get.status, 403);
  assert.equal(forwards, before, 'the model did not run');
  await stillServing(small);
});

test('a preflight from a foreign origin is refused; from a loopback origin it is allowed', async () => {
  const ask = { 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,authorization,x-stainless-lang' };
  const bad = await raw(small.port, 'OPTIONS', '/v1/chat/completions', { Origin: 'https://evil.example', ...ask });
  assert.equal(bad.status, 403);
  for (const h of ['access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers']) assert.equal(bad.headers[h], undefined, h);
  const ok = await raw(small.port, 'OPTIONS', '/v1/chat/completions', { Origin: 'http://localhost:3000', ...ask });
  assert.equal(ok.status, 204);
  assert.equal(ok.headers['access-control-allow-origin'], 'http://localhost:3000');
  assert.match(String(ok.headers['access-control-allow-methods']), /POST/);
  assert.match(String(ok.headers['access-control-allow-headers']), /content-type.*authorization.*x-stainless-lang/);
});

test('loopback origins (any port), the page by IP address, and clients without Origin are served', async () => {
  for (const origin of ['http://localhost:3000', 'https://localhost', 'http://127.0.0.1:5173', 'http://[::1]:8000']) {
    const r = await raw(small.port, 'POST', '/v1/chat/completions', { Origin: origin, ...JSON_TYPE }, chatBody());
    assert.equal(r.status, 200, origin);
    assert.equal(r.headers['access-control-allow-origin'], origin);
    assert.match(String(r.headers.vary), /Origin/);
  }
  // the chat page served from a LAN address talks to its own server
  const lan = await raw(small.port, 'POST', '/v1/chat/completions', { Origin: 'http://192.168.1.5:8080', Host: '192.168.1.5:8080', ...JSON_TYPE }, chatBody());
  assert.equal(lan.status, 200);
  // ... but a hostname that merely matches Host may be a DNS rebinding attack
  const rebound = await raw(small.port, 'POST', '/v1/chat/completions', { Origin: 'http://attacker.example:8080', Host: 'attacker.example:8080', ...JSON_TYPE }, chatBody());
  assert.equal(rebound.status, 403);
  const plain = await raw(small.port, 'POST', '/v1/chat/completions', JSON_TYPE, chatBody());
  assert.equal(plain.status, 200);
  assert.equal(plain.headers['access-control-allow-origin'], undefined);
  assert.equal(JSON.parse(plain.body).choices[0].message.content, ANSWER);
});

test('--cors opens the server to the listed origins, or to all with *', async () => {
  const app = await raw(listed.port, 'POST', '/v1/chat/completions', { Origin: 'https://app.example.com', ...JSON_TYPE }, chatBody());
  assert.equal(app.status, 200);
  assert.equal(app.headers['access-control-allow-origin'], 'https://app.example.com');
  assert.equal((await raw(listed.port, 'POST', '/v1/chat/completions', { Origin: 'http://192.168.1.5:3000', ...JSON_TYPE }, chatBody())).status, 200);
  assert.equal((await raw(listed.port, 'POST', '/v1/chat/completions', { Origin: 'https://app.example.com:8443', ...JSON_TYPE }, chatBody())).status, 403);
  assert.equal((await raw(listed.port, 'POST', '/v1/chat/completions', { Origin: 'http://localhost:3000', ...JSON_TYPE }, chatBody())).status, 200);
  const any = await raw(open.port, 'POST', '/v1/chat/completions', { Origin: 'https://anywhere.example', ...JSON_TYPE }, chatBody());
  assert.equal(any.status, 200);
  assert.equal(any.headers['access-control-allow-origin'], '*');
  const pre = await raw(open.port, 'OPTIONS', '/v1/chat/completions', { Origin: 'https://anywhere.example', 'Access-Control-Request-Method': 'POST' });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers['access-control-allow-origin'], '*');
  for (const bad of ['not an origin', 'https://app.example.com/path', 'ftp://host']) {
    assert.throws(
      () => createServer({} as ChatModel, { cors: [bad] }),
      (e: Error) => e instanceof QwenError && /--cors/.test(e.message),
      bad,
    );
  }
});

test('a POST that is not Content-Type: application/json gets a 415 naming the header', async () => {
  const before = forwards;
  for (const headers of [{ 'Content-Type': 'text/plain' }, { 'Content-Type': 'application/x-www-form-urlencoded' }, {} as Record<string, string>]) {
    for (const path of ['/v1/chat/completions', '/v1/completions']) {
      const r = await raw(small.port, 'POST', path, headers, path.endsWith('/completions') && !path.includes('chat') ? JSON.stringify({ model: 'scripted', prompt: 'hi' }) : chatBody());
      assert.equal(r.status, 415, `${path} ${JSON.stringify(headers)}`);
      assert.match(errorOf(r).message, /Content-Type header must be application\/json/);
    }
  }
  assert.equal(forwards, before, 'the model did not run');
  const charset = await raw(small.port, 'POST', '/v1/chat/completions', { 'Content-Type': 'Application/JSON; charset=utf-8' }, chatBody());
  assert.equal(charset.status, 200);
  await stillServing(small);
});

// --- 9a: chat_template_kwargs cannot replace the engine's template variables

test('chat_template_kwargs may not set messages, tools, add_generation_prompt or the template globals', async () => {
  const before = forwards;
  const kwargs: Record<string, unknown>[] = [
    { messages: [{ role: 'user', content: 'something else' }] },
    { tools: [{ type: 'function', function: { name: 'rm_rf' } }] },
    { add_generation_prompt: false },
    { bos_token: '<|im_start|>' },
    { eos_token: 'x' },
    { raise_exception: 'x' },
    { true: false },
    { namespace: 1 },
  ];
  for (const kw of kwargs) {
    const key = Object.keys(kw)[0]!;
    const r = await raw(small.port, 'POST', '/v1/chat/completions', JSON_TYPE, chatBody({ chat_template_kwargs: { enable_thinking: false, ...kw } }));
    assert.equal(r.status, 400, key);
    const e = errorOf(r);
    assert.equal(e.param, `chat_template_kwargs.${key}`);
    assert.match(e.message, new RegExp(`may not set '${key}'`));
  }
  assert.equal(forwards, before, 'the model did not run');
  // enable_thinking and variables of the template's own are still passed
  const ok = await raw(small.port, 'POST', '/v1/chat/completions', JSON_TYPE, chatBody({ chat_template_kwargs: { enable_thinking: false, custom_flag: true } }));
  assert.equal(ok.status, 200);
  // and the library refuses them too
  const cm = { tokenizer: tok } as ChatModel;
  assert.throws(
    () => prepareChat(cm, { messages: [{ role: 'user', content: 'hi' }], template_kwargs: { messages: [] } }),
    (e: Error) => e instanceof QwenError && /may not set 'messages'/.test(e.message),
  );
  await stillServing(small);
});

// --- 8: logit_bias (a real model: its logits are small next to a bias of 100)

let real: Running, cm: LocalChatModel;
const HELLO = tok.encode('Hello')[0]!;
before(async () => {
  cm = openChatModel(chatModelDir(), 'qwen3-tiny');
  real = await start(cm.model, {}, 'qwen3-tiny', cm.tokenizer);
});

test('logit_bias +100 makes greedy output that token; -100 on the greedy token changes it (chat, completions, library)', async () => {
  const messages = [{ role: 'user' as const, content: 'Tell me a joke about llamas.' }];
  const forced = await real.client.chat.completions.create({ model: 'qwen3-tiny', messages, temperature: 0, max_tokens: 3, logit_bias: { [HELLO]: 100 } });
  assert.equal(forced.choices[0]!.message.content, 'HelloHelloHello');
  const greedy = await real.client.chat.completions.create({ model: 'qwen3-tiny', messages, temperature: 0, max_tokens: 1, logprobs: true });
  const first = greedy.choices[0]!.logprobs!.content![0]!.token;
  const g = cm.tokenizer.encode(first);
  assert.equal(g.length, 1, 'the greedy token round-trips');
  const banned = await real.client.chat.completions.create({ model: 'qwen3-tiny', messages, temperature: 0, max_tokens: 1, logprobs: true, logit_bias: { [g[0]!]: -100 } });
  assert.notEqual(banned.choices[0]!.logprobs!.content![0]!.token, first);
  // sampling (temperature 1) with +100 on a token: it is chosen every time
  const sampled = await real.client.chat.completions.create({ model: 'qwen3-tiny', messages, temperature: 1, seed: 3, max_tokens: 3, logit_bias: { [HELLO]: 100 } });
  assert.equal(sampled.choices[0]!.message.content, 'HelloHelloHello');
  const c = await real.client.completions.create({ model: 'qwen3-tiny', prompt: 'Once upon a time', temperature: 0, max_tokens: 2, logit_bias: { [HELLO]: 100 } });
  assert.equal(c.choices[0]!.text, 'HelloHello');
  // the library: generate() and chat() take it in their options
  const steps: number[] = [];
  for await (const s of generate(cm.model, cm.tokenizer.encode('Once upon a time'), { max_tokens: 3, temperature: 0, logit_bias: { [HELLO]: 100 } })) steps.push(s.token);
  assert.deepEqual(steps, [HELLO, HELLO, HELLO]);
  let text = '';
  for await (const e of chat(cm, { messages, max_tokens: 2, temperature: 0, logit_bias: { [HELLO]: 100 } })) if (e.kind === 'content') text += e.text;
  assert.equal(text, 'HelloHello');
});

test('bad logit_bias keys and values are a 400 naming logit_bias; the library refuses them too', async () => {
  const bad: unknown[] = [
    [1, 2],
    'x',
    5,
    { abc: 1 },
    { '-1': 1 },
    { '1.5': 1 },
    { '1e3': 1 },
    { '007': 1 },
    { ' 5': 1 },
    { 999999999: 1 },
    { 151669: 1 },
    { 5: 101 },
    { 5: -100.5 },
    { 5: 'x' },
    { 5: null },
    { 5: true },
    { 5: [1] },
  ];
  for (const b of bad) {
    for (const path of ['/v1/chat/completions', '/v1/completions']) {
      const body = path.includes('chat') ? chatBody({ model: 'qwen3-tiny', logit_bias: b }) : JSON.stringify({ model: 'qwen3-tiny', prompt: 'hi', logit_bias: b });
      const r = await raw(real.port, 'POST', path, JSON_TYPE, body);
      assert.equal(r.status, 400, `${path} ${JSON.stringify(b)}: ${r.body}`);
      const e = errorOf(r);
      assert.equal(e.param, 'logit_bias', JSON.stringify(b));
      assert.match(e.message, /logit_bias/);
    }
  }
  // the edges are fine, and null / {} mean no bias
  for (const b of [{ 0: -100, 151668: 100 }, null, {}]) {
    assert.equal((await raw(real.port, 'POST', '/v1/chat/completions', JSON_TYPE, chatBody({ model: 'qwen3-tiny', max_tokens: 1, logit_bias: b }))).status, 200, JSON.stringify(b));
  }
  await assert.rejects(
    async () => {
      for await (const _ of generate(cm.model, [1, 2, 3], { max_tokens: 1, logit_bias: { [cm.model.config.vocab_size]: 1 } }));
    },
    (e: Error) => e instanceof QwenError && /logit_bias key \d+ is out of range/.test(e.message),
  );
  await assert.rejects(
    async () => {
      for await (const _ of generate(cm.model, [1, 2, 3], { max_tokens: 1, logit_bias: { 5: Number.NaN } }));
    },
    (e: Error) => e instanceof QwenError && /logit_bias\[5\] must be a finite number, got NaN/.test(e.message),
  );
});
