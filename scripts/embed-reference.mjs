#!/usr/bin/env node
// Run once: llama.cpp's embeddings and reranker logits on the tiny qwen3 fixture, the reference
// test/embed/*.test.ts compare against (written to test/fixtures/embed/reference.json).
//  - embeddings: node-llama-cpp's embedding context (llama_get_embeddings_seq: llama.cpp's own
//    pooling) on the fixture GGUF with qwen3.pooling_type 3 (last), 1 (mean), 2 (cls) and
//    add_eos_token (test/embed/embed_model.ts builds the same files); texts tokenised by llama.cpp.
//  - reranking: llama.cpp's logits of "yes" and "no" after Qwen3-Reranker's prompt (the plain GGUF).
// usage: npx tsc -p . && node scripts/embed-reference.mjs   (node-llama-cpp in .peer/: npm run check:llama installs it)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PEER = path.join(ROOT, '.peer', 'node_modules', 'node-llama-cpp');
const pkg = JSON.parse(fs.readFileSync(path.join(PEER, 'package.json'), 'utf8'));
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(path.join(PEER, pkg.exports['.'].import ?? pkg.exports['.'].default)).href);
const { embeddingGguf, plainGguf } = await import(pathToFileURL(path.join(ROOT, 'dist/test/embed/embed_model.js')).href);
const { rerankPrompt } = await import(pathToFileURL(path.join(ROOT, 'dist/src/embed/rerank.js')).href);

// mixed lengths, scripts and special characters; the last one ~100 tokens
export const TEXTS = [
  'Hello',
  'Red running shoes, size 42, breathable mesh.',
  'Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:waterproof hiking boots',
  '你好，世界。 Ein Stuhl aus Eichenholz 🪑 — 42 €',
  Array.from({ length: 12 }, (_, i) => `item ${i}: stainless steel kettle`).join('; '),
];
const QUERY = 'waterproof hiking boots';
const DOCS = ['Leather hiking boots with a waterproof membrane.', 'A ceramic teapot, 1.2 litres.', 'Trail running shoes'];

const llama = await getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true, logLevel: LlamaLogLevel.error });
const out = {
  provenance: `llama.cpp ${llama.llamaCppRelease?.release ?? '?'} via node-llama-cpp ${pkg.version} (CPU, F32 GGUF; embedding context: its default F16 KV cache; rerank logits: F32 KV cache, no flash attention); scripts/embed-reference.mjs`,
  texts: TEXTS,
  embeddings: {},
  rerank: {},
};

for (const pooling of ['last', 'mean', 'cls']) {
  const model = await llama.loadModel({ modelPath: embeddingGguf(pooling) });
  const ctx = await model.createEmbeddingContext({ contextSize: 256, batchSize: 256, threads: 1 });
  out.embeddings[pooling] = [];
  for (const text of TEXTS) {
    // as getEmbeddingFor(text) does: specials read as text, EOS appended when the file asks
    const ids = model.tokenize(text, false);
    if (!model.tokens.shouldAppendEosToken) throw new Error('add_eos_token is not set');
    ids.push(model.tokens.eos);
    const e = await ctx.getEmbeddingFor(ids);
    out.embeddings[pooling].push({ ids: [...ids], vector: [...e.vector] });
  }
  await ctx.dispose();
  await model.dispose();
}

{
  const model = await llama.loadModel({ modelPath: plainGguf() });
  const ctx = await model.createContext({ contextSize: 256, batchSize: 256, threads: 1, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
  const seq = ctx.getSequence();
  const yes = model.tokenize('yes', true),
    no = model.tokenize('no', true);
  if (yes.length !== 1 || no.length !== 1) throw new Error('yes/no are not single tokens');
  out.rerank = { query: QUERY, documents: DOCS, yes: yes[0], no: no[0], cases: [] };
  for (const doc of DOCS) {
    const ids = model.tokenize(rerankPrompt(QUERY, doc), true);
    await seq.clearHistory();
    const res = await seq.controlledEvaluate(ids.map((t, i) => (i === ids.length - 1 ? [t, { generateNext: { logits: true, token: true, options: { temperature: 0 } } }] : t)));
    const logits = res.at(-1).next.logits;
    out.rerank.cases.push({ ids, yes: logits.get(yes[0]), no: logits.get(no[0]) });
  }
  await ctx.dispose();
  await model.dispose();
}

const file = path.join(ROOT, 'test/fixtures/embed/reference.json');
fs.mkdirSync(path.dirname(file), { recursive: true });
fs.writeFileSync(file, JSON.stringify(out) + '\n');
process.stderr.write(`wrote ${file}\n`);
