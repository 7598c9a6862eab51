// /v1/embeddings and /v1/rerank on the engine thread (openChatModelThreaded, what `serve` runs):
// the same vectors and scores as llama.cpp's reference, the same 400s, and a chat model's
// generation keeps going while they run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Server } from 'node:http';
import { openChatModelThreaded, type ThreadedChatModel } from '../../src/chat/engine.js';
import { createServer } from '../../src/server/app.js';
import { normalize } from '../../src/embed/embed.js';
import { FIXTURES, listen } from '../helpers.js';
import { embeddingGguf, plainGguf } from './embed_model.js';

const ref = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'embed', 'reference.json'), 'utf8'));
const models: ThreadedChatModel[] = [];
const servers: Server[] = [];
let embedBase = '',
  chatBase = '';

async function serve(file: string): Promise<string> {
  const cm = await openChatModelThreaded(file, 'tiny', { threads: '1', onNote: () => {} });
  models.push(cm);
  const server = createServer(cm, { accessLog: false });
  servers.push(server);
  return listen(server);
}

before(async () => {
  embedBase = await serve(embeddingGguf('last'));
  chatBase = await serve(plainGguf());
});
after(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  await Promise.all(models.map((m) => m.close()));
});

async function post(base: string, route: string, body: object): Promise<{ status: number; body: any }> {
  const r = await fetch(`${base}${route}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ model: 'tiny', ...body }) });
  return { status: r.status, body: await r.json() };
}

test("engine thread: embeddings equal llama.cpp's (cosine >= 0.99999), dimensions, and the bad-input 400s", async () => {
  const texts: string[] = ref.texts;
  const r = await post(embedBase, '/v1/embeddings', { input: texts });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  r.body.data.forEach((d: { embedding: number[] }, i: number) => {
    const want = normalize(ref.embeddings.last[i].vector);
    const dot = d.embedding.reduce((s, x, k) => s + x * want[k]!, 0);
    assert.ok(dot >= 0.99999, `input ${i}: cosine ${dot}`);
  });
  const cut = await post(embedBase, '/v1/embeddings', { input: texts[0], dimensions: 8 });
  assert.equal(cut.body.data[0].embedding.length, 8);
  const big = await post(embedBase, '/v1/embeddings', { input: texts[0], dimensions: 100_000 });
  assert.equal(big.status, 400);
  assert.equal(big.body.error.param, 'dimensions');
  const chat = await post(chatBase, '/v1/embeddings', { input: 'x' });
  assert.equal(chat.status, 400);
  assert.match(chat.body.error.message, /not an embedding model/);
});

test("engine thread: rerank scores equal the yes/no probabilities of llama.cpp's logits, while a generation streams", async () => {
  const { query, documents, cases } = ref.rerank;
  const gen = fetch(`${chatBase}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', prompt: 'Hello', max_tokens: 24, temperature: 0 }),
  });
  const r = await post(chatBase, '/v1/rerank', { query, documents });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  for (const x of r.body.results as { index: number; relevance_score: number }[]) {
    const c = cases[x.index];
    assert.ok(Math.abs(x.relevance_score - 1 / (1 + Math.exp(c.no - c.yes))) < 1e-5, `document ${x.index}`);
  }
  const done = await gen;
  assert.equal(done.status, 200);
  assert.equal(((await done.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens, 24);
  const emb = await post(embedBase, '/v1/rerank', { query, documents });
  assert.equal(emb.status, 400);
  assert.match(emb.body.error.message, /embedding model/);
});
