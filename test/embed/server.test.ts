// POST /v1/embeddings through the official `openai` client (float and base64) and POST /v1/rerank,
// against llama.cpp's reference on the tiny qwen3 model; the bad inputs are 400s naming the parameter.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Server } from 'node:http';
import OpenAI from 'openai';
import { openChatModel } from '../../src/chat/engine.js';
import { createServer } from '../../src/server/app.js';
import { WasmBackend } from '../../src/backend/wasm.js';
import { normalize } from '../../src/embed/embed.js';
import { FIXTURES, listen } from '../helpers.js';
import { embeddingGguf, plainGguf } from './embed_model.js';

const ref = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'embed', 'reference.json'), 'utf8'));
const TEXTS: string[] = ref.texts;
const VECTORS: number[][] = ref.embeddings.last.map((w: { vector: number[] }) => w.vector);
const backend = new WasmBackend({ threads: 1 });
const servers: Server[] = [];
let embedBase = '',
  chatBase = '',
  client: OpenAI;

async function serve(file: string): Promise<string> {
  const server = createServer(openChatModel(file, 'tiny', { backend, onNote: () => {} }), { accessLog: false });
  servers.push(server);
  return listen(server);
}

before(async () => {
  embedBase = await serve(embeddingGguf('last'));
  chatBase = await serve(plainGguf());
  client = new OpenAI({ apiKey: 'unused', baseURL: `${embedBase}/v1`, maxRetries: 0, timeout: 60_000 });
});
after(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  backend.dispose();
});

function near(got: ArrayLike<number>, want: number[], what: string, dims = want.length): void {
  const w = normalize(want, dims);
  assert.equal(got.length, dims, `${what}: length`);
  let dot = 0;
  for (let i = 0; i < dims; i++) dot += got[i]! * w[i]!;
  assert.ok(dot >= 0.99999, `${what}: cosine ${dot}`);
}

async function post(base: string, route: string, body: object): Promise<{ status: number; body: any }> {
  const r = await fetch(`${base}${route}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ model: 'tiny', ...body }) });
  return { status: r.status, body: await r.json() };
}

test("openai embeddings.create: float, base64 (the client's default, decoded by it) and explicit base64; usage", async () => {
  const f = await client.embeddings.create({ model: 'tiny', input: TEXTS, encoding_format: 'float' });
  assert.equal(f.object, 'list');
  assert.equal(f.model, 'tiny');
  f.data.forEach((d, i) => {
    assert.equal(d.index, i);
    assert.equal(d.object, 'embedding');
    near(d.embedding, VECTORS[i]!, `float ${i}`);
  });
  const tokens = ref.embeddings.last.reduce((n: number, w: { ids: number[] }) => n + w.ids.length, 0);
  assert.deepEqual(f.usage, { prompt_tokens: tokens, total_tokens: tokens });
  const d = await client.embeddings.create({ model: 'tiny', input: TEXTS });
  d.data.forEach((e, i) => assert.deepEqual(e.embedding, f.data[i]!.embedding, `default ${i}: the same floats`));
  const b = await client.embeddings.create({ model: 'tiny', input: TEXTS[1]!, encoding_format: 'base64' });
  const bytes = Buffer.from(b.data[0]!.embedding as unknown as string, 'base64');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const floats = Array.from({ length: bytes.length / 4 }, (_, i) => dv.getFloat32(4 * i, true));
  near(floats, VECTORS[1]!, 'base64, little-endian float32');
});

test('dimensions, token-id inputs, truncate', async () => {
  const r = await client.embeddings.create({ model: 'tiny', input: TEXTS.slice(0, 2), dimensions: 8, encoding_format: 'float' });
  r.data.forEach((e, i) => near(e.embedding, VECTORS[i]!, `dimensions 8, ${i}`, 8));
  const ids = ref.embeddings.last.map((w: { ids: number[] }) => w.ids);
  const t = await post(embedBase, '/v1/embeddings', { input: ids });
  assert.equal(t.status, 200);
  t.body.data.forEach((e: { embedding: number[] }, i: number) => near(e.embedding, VECTORS[i]!, `ids ${i}`));
  const one = await post(embedBase, '/v1/embeddings', { input: ids[0] });
  near(one.body.data[0].embedding, VECTORS[0]!, 'one id array');
  const long = 'word '.repeat(400);
  const refused = await post(embedBase, '/v1/embeddings', { input: ['ok', long] });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error.code, 'context_length_exceeded');
  assert.match(refused.body.error.message, /input\[1\] has \d+ tokens; this model's context holds 256/);
  const cut = await post(embedBase, '/v1/embeddings', { input: long, truncate: true });
  assert.equal(cut.status, 200);
  assert.equal(cut.body.usage.prompt_tokens, 256);
});

test('bad input: 400s naming the parameter and what is wrong', async () => {
  const cases: [string, object, string, RegExp][] = [
    [embedBase, { input: [] }, 'input', /empty array/],
    [embedBase, { input: '' }, 'input', /empty string/],
    [embedBase, { input: ['a', ''] }, 'input', /input\[1\] is an empty string/],
    [embedBase, { input: [1, 'a'] }, 'input', /input\[0\] must be a string or a non-empty array of token ids/],
    [embedBase, { input: [[5, 999999]] }, 'input', /input\[1\] is 999999: token ids must be integers in 0\.\.151935/],
    [embedBase, {}, 'input', /'input' is required/],
    [embedBase, { input: 'a', dimensions: 17 }, 'dimensions', /dimensions is 17, larger than the model's 16/],
    [embedBase, { input: 'a', dimensions: 0 }, 'dimensions', /positive integer/],
    [embedBase, { input: 'a', encoding_format: 'int8' }, 'encoding_format', /'float' or 'base64'/],
    [chatBase, { input: 'a' }, 'model', /is a qwen3 causal language model, not an embedding model: no qwen3\.pooling_type in /],
  ];
  for (const [base, body, param, re] of cases) {
    const r = await post(base, '/v1/embeddings', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.body.error.param, param, JSON.stringify(body));
    assert.match(r.body.error.message, re);
  }
  const get = await fetch(`${embedBase}/v1/embeddings`);
  assert.equal(get.status, 405);
});

test("POST /v1/rerank: llama.cpp's yes/no probabilities, best first, top_n, documents returned; bad input", async () => {
  const { query, documents, cases } = ref.rerank;
  const want = cases.map((c: { yes: number; no: number }) => 1 / (1 + Math.exp(c.no - c.yes)));
  const r = await post(chatBase, '/v1/rerank', { query, documents, top_n: 2 });
  assert.equal(r.status, 200);
  assert.equal(r.body.results.length, 2);
  const order = want.map((_: number, i: number) => i).sort((a: number, b: number) => want[b] - want[a]);
  r.body.results.forEach((x: { index: number; relevance_score: number; document: { text: string } }, k: number) => {
    assert.equal(x.index, order[k]);
    assert.ok(Math.abs(x.relevance_score - want[x.index]) < 1e-5);
    assert.equal(x.document.text, documents[x.index]);
  });
  assert.equal(
    r.body.usage.total_tokens,
    cases.reduce((n: number, c: { ids: number[] }) => n + c.ids.length, 0),
  );
  const objs = await post(chatBase, '/v1/rerank', { query, documents: documents.map((text: string) => ({ text })), return_documents: false });
  assert.equal(objs.body.results.length, documents.length);
  assert.equal(objs.body.results[0].document, undefined);
  for (const [body, param, re] of [
    [{ query, documents: [] }, 'documents', /non-empty array/],
    [{ query: '', documents }, 'query', /non-empty string/],
    [{ query, documents, top_n: 0 }, 'top_n', /positive integer/],
    [{ query, documents: ['a', 3] }, 'documents', /documents\[1\]/],
  ] as [object, string, RegExp][]) {
    const e = await post(chatBase, '/v1/rerank', body);
    assert.equal(e.status, 400, JSON.stringify(body));
    assert.equal(e.body.error.param, param);
    assert.match(e.body.error.message, re);
  }
  const emb = await post(embedBase, '/v1/rerank', { query, documents });
  assert.equal(emb.status, 400);
  assert.match(emb.body.error.message, /is an embedding model \(qwen3\.pooling_type = 3 in .*\): it embeds, it does not rerank/);
});
