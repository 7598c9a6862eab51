// response_format patterns as a denial of service: a json_schema whose string `pattern` has a
// huge automaton used to cost ~1 s a token (four such streams made /health take ~2 s). Now such a
// pattern is either refused with a 400 naming response_format, or its streams run at about the
// speed of any constrained stream, and the server stays responsive during and after them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { ChatModel } from '../../src/chat/engine.js';
import { Scheduler } from '../../src/generate/scheduler.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { createServer } from '../../src/server/app.js';
import { chatModelDir } from '../helpers.js';
import { scriptedModel } from './scripted_model.js';

const tok = loadTokenizer(chatModelDir());
let server: Server, base: string;
before(async () => {
  // the model "wants" to write long varied text; the constraint decides what it may write
  const model = scriptedModel(tok, () => `{"s": "${'The quick brown fox 日本語 café, naïve 🙂 jumps over the lazy dog. '.repeat(20)}"}`);
  const cm: ChatModel = { name: 'scripted', path: '', model, config: model.config, tokenizer: tok, scheduler: new Scheduler(model), templateFallback: false, toolFormat: 'json' };
  server = createServer(cm);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

const schemaWith = (pattern: string) => ({ type: 'object', properties: { s: { type: 'string', pattern } }, required: ['s'], additionalProperties: false });
const chat = (extra: object) =>
  fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'scripted', messages: [{ role: 'user', content: 'Write.' }], temperature: 0, ...extra }),
  });
const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const t = performance.now();
  const v = await f();
  return [v, performance.now() - t];
};

/** A streamed chat request; resolves to the number of content chunks and the finish reason. */
async function stream(extra: object): Promise<{ chunks: number; finish: string | null; text: string }> {
  const res = await chat({ ...extra, stream: true });
  assert.equal(res.status, 200, await res.clone().text());
  const body = await res.text();
  let chunks = 0,
    finish: string | null = null,
    text = '';
  for (const line of body.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    const c = JSON.parse(line.slice(6)) as { choices: { delta: { content?: string }; finish_reason: string | null }[]; error?: unknown };
    assert.equal(c.error, undefined, line);
    const d = c.choices[0];
    if (d?.delta.content) {
      chunks++;
      text += d.delta.content;
    }
    finish = d?.finish_reason ?? finish;
  }
  return { chunks, finish, text };
}

test('a pattern whose automaton is over budget is refused with a 400 naming response_format and the pattern', async () => {
  for (const pattern of ['(a{50}){50}', 'a.{20}', '(?:x{1000}){1000}']) {
    const [res, ms] = await timed(() => chat({ max_tokens: 8, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: schemaWith(pattern) } } }));
    assert.equal(res.status, 400);
    const e = ((await res.json()) as { error: { message: string; param: string } }).error;
    assert.match(e.param, /^response_format/);
    assert.ok(e.message.includes(`/${pattern}/`), e.message);
    assert.match(e.message, /too complex|too large/);
    assert.ok(ms < 5000, `refusing took ${ms} ms`);
  }
});

test('four streams with [\\s\\S]{1000} run in bounded time; /health and a normal request stay fast', async () => {
  const N = 32;
  const rf = { type: 'json_schema', json_schema: { name: 'x', schema: schemaWith('[\\s\\S]{1000}') } };
  // warm up: the first constrained request builds the tokenizer's token tries (once per process)
  await stream({ max_tokens: 4, response_format: rf });
  const t0 = performance.now();
  const runs = [0, 1, 2, 3].map(() => stream({ max_tokens: N, response_format: rf }));
  // while they run, the event loop must keep answering
  const during: number[] = [];
  let done = false;
  const all = Promise.all(runs).finally(() => {
    done = true;
  });
  while (!done) {
    const [h, ms] = await timed(() => fetch(`${base}/health`));
    assert.equal(h.status, 200);
    await h.arrayBuffer();
    during.push(ms);
    await new Promise((r) => setTimeout(r, 20));
  }
  const results = await all;
  const total = performance.now() - t0;
  for (const r of results) {
    assert.ok(r.chunks >= N - 2, `${r.chunks} chunks: ${JSON.stringify(r.text)}`); // (the opening '{"s": "' may merge)
    assert.equal(r.finish, 'length');
    assert.ok(r.text.startsWith('{"s": "'), r.text);
  }
  console.log(`# 4 x ${N} tokens with [\\s\\S]{1000}: ${total.toFixed(0)} ms; /health during: max ${Math.max(...during).toFixed(0)} ms over ${during.length} polls`);
  assert.ok(total < 10_000, `4 x ${N} constrained tokens took ${total} ms`); // was ~85 s for 100 tokens
  // in-process engine: /health waits for one batched step (4 masks + a forward pass); before the
  // per-mask work cap a step took 0.6-4.4 s. 2.5 s leaves room for a loaded 2-core machine (1.2 s seen)
  assert.ok(Math.max(...during) < 2500, `/health took ${Math.max(...during)} ms during the streams`);
  // and afterwards
  const [h, hms] = await timed(() => fetch(`${base}/health`));
  assert.equal(h.status, 200);
  assert.ok(hms < 1000, `/health took ${hms} ms`);
  const [res, ms] = await timed(() => chat({ max_tokens: 8 }));
  assert.equal(res.status, 200);
  assert.ok(((await res.json()) as { choices: unknown[] }).choices.length === 1);
  assert.ok(ms < 1000, `a normal request took ${ms} ms`);
});
