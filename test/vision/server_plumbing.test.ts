// Images through the server with the official openai client, on a model double: a scripted language
// model with M-RoPE sections that answers with the number of <|image_pad|> tokens its prompt holds
// (and records the image rows its forward passes receive), and a stand-in tower (rows derived from
// the decoded pixels: the real towers are tested against llama.cpp in tower*.test.ts; here what is
// checked is what the server does with images). Data URLs streamed and not, several images, remote
// URLs from a local server (slow, huge, not an image, redirect loops), --no-remote-images, the
// Responses API's input_image (file_id refused), a text model asked for an image, bad image bytes,
// /health answering while images encode, and the prefix cache with the same and another image.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import OpenAI from 'openai';
import type { ChatModel } from '../../src/chat/engine.js';
import { Scheduler } from '../../src/generate/scheduler.js';
import type { CausalLM } from '../../src/models/model.js';
import { createServer, type ServerOptions } from '../../src/server/app.js';
import { ImageQueue, ImageQueueFull } from '../../src/vision/jobs.js';
import { listen } from '../helpers.js';
import * as vlDouble from './vl_double.js';

const { tok, vl, base, fakeTower, png, dataUrl, A, B } = vlDouble;
const seenRows = vlDouble.seenRows;
const servers: http.Server[] = [];
after(() => {
  for (const s of servers) s.closeAllConnections?.(), s.close();
});

async function start(cm: Partial<ChatModel> & { model?: CausalLM }, opts: ServerOptions = {}, cacheMem = 0): Promise<{ url: string; client: OpenAI; cm: ChatModel }> {
  const model = cm.model ?? vl;
  const full: ChatModel = {
    name: 'vl',
    path: '',
    model,
    config: model.config,
    tokenizer: tok,
    scheduler: new Scheduler(model, undefined, 8, cacheMem),
    templateFallback: false,
    toolFormat: 'json',
    ...cm,
  };
  const server = createServer(full, { accessLog: false, ...opts });
  servers.push(server);
  const url = await listen(server);
  return { url, cm: full, client: new OpenAI({ apiKey: 'x', baseURL: `${url}/v1`, maxRetries: 0, timeout: 30_000 }) };
}

const userWith = (...parts: OpenAI.Chat.ChatCompletionContentPart[]): OpenAI.Chat.ChatCompletionMessageParam[] => [{ role: 'user', content: parts }];
const img = (url: string): OpenAI.Chat.ChatCompletionContentPart => ({ type: 'image_url', image_url: { url } });
const text = (t: string): OpenAI.Chat.ChatCompletionContentPart => ({ type: 'text', text: t });

async function apiError(p: Promise<unknown>): Promise<{ status: number; code: string; param: string; message: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { status: number; code: string; param: string; message: string };
    return err;
  }
  assert.fail('expected an error');
}

test('a data URL image, not streamed and streamed: its rows reach the model as nx * ny pads', async () => {
  const { client } = await start({ vision: new ImageQueue(fakeTower()) });
  seenRows.length = 0;
  const r = await client.chat.completions.create({ model: 'vl', messages: userWith(text('What is this?'), img(dataUrl(A))), temperature: 0 });
  assert.equal(r.choices[0]!.message.content, 'pads=6');
  assert.deepEqual(
    seenRows.map((v) => Math.round(v * 100) / 100),
    [0.2, 1.2, 2.2, 3.2, 4.2, 5.2],
  );
  const s = await client.chat.completions.create({ model: 'vl', messages: userWith(img(dataUrl(A)), text('Describe it.')), stream: true, stream_options: { include_usage: true } });
  let out = '';
  let prompt = 0;
  for await (const c of s) {
    out += c.choices[0]?.delta.content ?? '';
    if (c.usage) prompt = c.usage.prompt_tokens;
  }
  assert.equal(out, 'pads=6');
  assert.ok(prompt > 6);
});

test('several images in one message, each its own pads, in order', async () => {
  const { client } = await start({ vision: new ImageQueue(fakeTower()) });
  seenRows.length = 0;
  const r = await client.chat.completions.create({ model: 'vl', messages: userWith(img(dataUrl(B)), text(' and '), img(dataUrl(A))), temperature: 0 });
  assert.equal(r.choices[0]!.message.content, 'pads=10');
  assert.deepEqual(
    seenRows.map((v) => Math.round(v * 100) / 100),
    [0.4, 1.4, 2.4, 3.4, 0.2, 1.2, 2.2, 3.2, 4.2, 5.2],
  );
});

test('remote image URLs: fetched; too slow, too big, not an image, redirect loops: a 400 naming the part', async () => {
  const files = http.createServer((req, res) => {
    if (req.url === '/a.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(A);
    if (req.url === '/moved') return void res.writeHead(302, { location: '/a.png' }).end();
    if (req.url === '/loop') return void res.writeHead(302, { location: '/loop' }).end();
    if (req.url === '/slow.png') return void res.writeHead(200, { 'content-type': 'image/png' }).write(A.subarray(0, 10)); // never ends
    if (req.url === '/huge.png') {
      res.writeHead(200, { 'content-type': 'image/png' }); // no length: counted as it arrives
      for (let i = 0; i < 40; i++) res.write(Buffer.alloc(1024));
      return void res.end();
    }
    if (req.url === '/page.html') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>');
    if (req.url === '/fake.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end('<html>not a png</html>');
    res.writeHead(404).end();
  });
  servers.push(files);
  const at = await listen(files);
  const { client } = await start({ vision: new ImageQueue(fakeTower()) }, { images: { timeoutMs: 500, maxBytes: 20_000 } });
  const ask = (url: string) => client.chat.completions.create({ model: 'vl', messages: userWith(text('look'), img(url)), temperature: 0 });
  assert.equal((await ask(`${at}/a.png`)).choices[0]!.message.content, 'pads=6');
  assert.equal((await ask(`${at}/moved`)).choices[0]!.message.content, 'pads=6');
  const t0 = Date.now();
  let e = await apiError(ask(`${at}/slow.png`));
  assert.equal(e.status, 400);
  assert.equal(e.code, 'image_fetch_timeout');
  assert.equal(e.param, 'messages[0].content[1].image_url');
  assert.ok(Date.now() - t0 < 5000);
  e = await apiError(ask(`${at}/huge.png`));
  assert.equal(e.code, 'image_too_large');
  assert.match(e.message, /larger than/);
  e = await apiError(ask(`${at}/page.html`));
  assert.equal(e.code, 'invalid_image_format');
  assert.match(e.message, /text\/html/);
  e = await apiError(ask(`${at}/fake.png`));
  assert.equal(e.code, 'invalid_image');
  assert.match(e.message, /HTML page/);
  e = await apiError(ask(`${at}/loop`));
  assert.match(e.message, /more than 3 redirects/);
  e = await apiError(ask(`${at}/missing.png`));
  assert.match(e.message, /HTTP 404/);
  e = await apiError(ask('ftp://example.com/a.png'));
  assert.match(e.message, /ftp: URLs are not supported/);
});

test('--no-remote-images: http(s) URLs refused by name, data URLs still read', async () => {
  const { client } = await start({ vision: new ImageQueue(fakeTower()) }, { images: { remote: false } });
  const e = await apiError(client.chat.completions.create({ model: 'vl', messages: userWith(img('http://127.0.0.1:1/a.png')) }));
  assert.equal(e.status, 400);
  assert.equal(e.code, 'remote_images_disabled');
  assert.match(e.message, /--no-remote-images/);
  const r = await client.chat.completions.create({ model: 'vl', messages: userWith(img(dataUrl(B))), temperature: 0 });
  assert.equal(r.choices[0]!.message.content, 'pads=4');
});

test('Responses API: input_image read, file_id refused by name', async () => {
  const { client } = await start({ vision: new ImageQueue(fakeTower()) });
  const r = await client.responses.create({
    model: 'vl',
    input: [
      {
        role: 'user',
        content: [
          { type: 'input_text', text: 'What is it?' },
          { type: 'input_image', image_url: dataUrl(A), detail: 'auto' },
        ],
      },
    ],
    temperature: 0,
  });
  assert.equal(r.output_text, 'pads=6');
  const e = await apiError(client.responses.create({ model: 'vl', input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file-123', detail: 'auto' }] }] }));
  assert.equal(e.status, 400);
  assert.equal(e.param, 'input[0].content[0].file_id');
  // a later turn through previous_response_id keeps the image in the conversation
  const r2 = await client.responses.create({ model: 'vl', previous_response_id: r.id, input: 'And now?', temperature: 0 });
  assert.equal(r2.output_text, 'pads=6');
});

test('a text model asked for an image: a 400 naming the model', async () => {
  const { client } = await start({ name: 'plain', model: base }); // no vision
  const e = await apiError(client.chat.completions.create({ model: 'plain', messages: userWith(text('hi'), img(dataUrl(A))) }));
  assert.equal(e.status, 400);
  assert.equal(e.code, 'model_not_multimodal');
  assert.match(e.message, /'plain' has no vision tower/);
  assert.equal(e.param, 'messages[0].content[1]');
  const e2 = await apiError(client.responses.create({ model: 'plain', input: [{ role: 'user', content: [{ type: 'input_image', image_url: dataUrl(A), detail: 'auto' }] }] }));
  assert.equal(e2.code, 'model_not_multimodal');
});

test('bad images: not an image, truncated, a huge header, bad base64: a 400 at once', async () => {
  const { client } = await start({ vision: new ImageQueue(fakeTower()) });
  const ask = (url: string) => client.chat.completions.create({ model: 'vl', messages: userWith(img(url)) });
  const t0 = Date.now();
  let e = await apiError(ask(`data:image/png;base64,${Buffer.from('GIF89a....').toString('base64')}`));
  assert.equal(e.code, 'invalid_image');
  assert.match(e.message, /GIF/);
  e = await apiError(ask(dataUrl(A.subarray(0, A.length - 40))));
  assert.equal(e.code, 'invalid_image');
  assert.equal(e.param, 'messages[0].content[0].image_url');
  e = await apiError(ask(dataUrl(png(50_000, 50_000, 0, true))));
  assert.equal(e.code, 'invalid_image');
  assert.match(e.message, /50000 x 50000/);
  e = await apiError(ask('data:image/png;base64,@@@'));
  assert.equal(e.code, 'invalid_image_url');
  e = await apiError(ask('data:text/plain;base64,aGVsbG8='));
  assert.equal(e.code, 'invalid_image_format');
  assert.ok(Date.now() - t0 < 3000, `${Date.now() - t0} ms`);
});

test('/health answers while images wait to be encoded (one at a time, the event loop turns between them)', async () => {
  const { client, url } = await start({ vision: new ImageQueue(fakeTower(300)) });
  const asks = Promise.all([A, B, A, B].map((b) => client.chat.completions.create({ model: 'vl', messages: userWith(img(dataUrl(b))), temperature: 0 })));
  let worst = 0;
  let done = false;
  void asks.finally(() => (done = true));
  while (!done) {
    const t = Date.now();
    const h = await fetch(`${url}/health`);
    assert.equal(h.status, 200);
    worst = Math.max(worst, Date.now() - t);
    await new Promise((r) => setTimeout(r, 20));
  }
  const rs = await asks;
  assert.deepEqual(
    rs.map((r) => r.choices[0]!.message.content),
    ['pads=6', 'pads=4', 'pads=6', 'pads=4'],
  );
  assert.ok(worst < 2000, `/health took ${worst} ms while images were encoded`); // one 300 ms encode at most, with room for a busy machine
});

test('prefix cache: the same image reuses the blocks past it, another image behind the same pads does not', async () => {
  // a model that ends every answer at once (the scripted one reads its whole history back, which a restored cache does not replay)
  const END = tok.tokenToId('<|im_end|>')!;
  const ends: CausalLM = {
    ...vl,
    forward: (b, c) => {
      for (const e of b) c[e.seq]!.length = e.pos + 1;
      const out = new Float32Array(b.filter((e) => e.logits).length * vl.config.vocab_size);
      for (let r = 0; r * vl.config.vocab_size < out.length; r++) out[r * vl.config.vocab_size + END] = 100;
      return out;
    },
  };
  const { client } = await start({ model: ends, vision: new ImageQueue(fakeTower()) }, {}, 1 << 24);
  const long = 'Please describe this picture in careful detail, naming every object you can see. '.repeat(3);
  const ask = async (b: Buffer) => {
    const r = await client.chat.completions.create({ model: 'vl', messages: userWith(img(dataUrl(b)), text(long)), temperature: 0, max_tokens: 4 });
    return { cached: r.usage!.prompt_tokens_details!.cached_tokens!, prompt: r.usage!.prompt_tokens };
  };
  const first = await ask(A);
  assert.equal(first.cached, 0);
  const same = await ask(A);
  const other = await ask(png(56, 84, 200)); // same size and pads, other pixels
  // the image's pads start after the system-less user turn's few tokens: block 0 holds them
  assert.ok(same.cached >= first.prompt - 16, `same image: ${same.cached} of ${same.prompt} cached`);
  assert.equal(other.cached, 0, `another image: ${other.cached} cached`);
});

test('more images than a request may hold: a 400 before any is fetched or encoded', async () => {
  let encodes = 0;
  const tower = fakeTower();
  const counting = { ...tower, encode: (i: Parameters<typeof tower.encode>[0], h: string) => (encodes++, tower.encode(i, h)) };
  const { client } = await start({ vision: new ImageQueue(counting) }, { images: { maxImages: 2 } });
  const e = await apiError(client.chat.completions.create({ model: 'vl', messages: userWith(img(dataUrl(B)), img(dataUrl(B)), img(dataUrl(B))) }));
  assert.equal(e.status, 400);
  assert.equal(e.code, 'too_many_images');
  assert.equal(e.param, 'messages[0].content[2].image_url');
  assert.equal(encodes, 0);
});

test('ImageQueue: one encode at a time in order, a full queue refused (a 503 for the server), a request gone while waiting not encoded', async () => {
  const order: string[] = [];
  const tower = fakeTower(30);
  const q = new ImageQueue({ ...tower, encode: (i, h) => (order.push(h), tower.encode(i, h)) }, 3);
  const gone = new AbortController();
  const jobs = [q.encode(B, 'a'), q.encode(B, 'b', gone.signal), q.encode(B, 'c')];
  await assert.rejects(q.encode(B, 'd'), { name: 'ImageQueueFull' });
  gone.abort();
  const settled = await Promise.allSettled(jobs);
  assert.deepEqual(
    settled.map((s) => s.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  assert.deepEqual(order, ['a', 'c']);
  assert.equal(q.load, 0);
  await assert.rejects(q.encode(Buffer.from('not an image'), 'e'), { name: 'ImageError' });
});

test('an image the encode queue has no room for: a 503 (server_busy)', async () => {
  const full = { kind: 'qwen2_5_vl', encode: () => Promise.reject(new ImageQueueFull(64)) };
  const { client } = await start({ vision: full });
  const e = await apiError(client.chat.completions.create({ model: 'vl', messages: userWith(img(dataUrl(A))) }));
  assert.equal(e.status, 503);
  assert.equal(e.code, 'server_busy');
  assert.match(e.message, /64 images are already waiting/);
});
