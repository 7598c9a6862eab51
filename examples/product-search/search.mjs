#!/usr/bin/env node
// Product search with qwen-ts: embed a catalogue, answer queries by cosine similarity, and (given a
// reranker) rerank the best candidates. Uses only the package's public API, as a copy of this folder
// in a project with `npm install qwen-ts` would. Run with --help for the options.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createBackend, embed, loadModel, loadTokenizer, QwenError, rerank, resolveModel } from 'qwen-ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
// Qwen3-Embedding puts a one-line task description before each query (documents get none): embed()
// writes it as `Instruct: {instruction}\nQuery:{query}`. The reranker takes the same task.
const TASK = 'Given a product search query, retrieve products that match it';
const DEMO_QUERIES = ['waterproof shoes for mountain trails', 'something to make coffee at home', 'a gift for a child who likes trains'];

const HELP = `usage: node search.mjs --model <embedding model> [--reranker <reranker>] [--query Q ...] [options]
Embeds the catalogue (documents: title and description, no instruction), embeds each query with
Qwen3-Embedding's instruction, ranks products by cosine similarity and, with --reranker, reranks the
best --candidates of them. Prints the --top-k results per query (--json: one JSON line per query).
  --model M          embedding model: a hub id (Qwen/Qwen3-Embedding-0.6B), folder or GGUF file
  --reranker R       reranker: a hub id (Qwen/Qwen3-Reranker-0.6B) or folder (default: none)
  --query Q          a query (repeatable; default: three demo queries)
  --catalogue FILE   JSONL, one {"id", "title", "description", "category"} per line (default: products.jsonl here)
  --top-k K          results shown per query (default 5)
  --candidates C     cosine hits the reranker rescores (default 10; at least --top-k)
  --pooling last|mean|cls   for a model whose files name no pooling rule (e.g. a plain test model)
  --dimensions N     keep the first N embedding dimensions (Matryoshka)
  --backend wasm|wasm-simd|reference, --threads N
  --json             one JSON line per query instead of a table`;

/** The catalogue: one product per JSONL line, each with string id, title and description. */
function readCatalogue(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const products = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let p;
    try {
      p = JSON.parse(line);
    } catch (e) {
      throw new QwenError(`${file}: line ${i + 1} is not valid JSON (${e.message})`);
    }
    for (const k of ['id', 'title', 'description']) {
      if (typeof p?.[k] !== 'string' || p[k] === '') throw new QwenError(`${file}: line ${i + 1} has no "${k}" string`);
    }
    products.push(p);
  });
  if (products.length === 0) throw new QwenError(`${file}: no products`);
  return products;
}

/** The text a product is embedded and reranked as. */
const documentText = (p) => `${p.title}\n${p.description}${p.category ? `\nCategory: ${p.category}` : ''}`;

/** Both vectors are unit length (embed() normalises), so their dot product is the cosine. */
function cosine(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

async function open(id, backend) {
  const p = await resolveModel(id); // a hub id is downloaded once into the Hugging Face cache
  if (!fs.existsSync(p)) throw new QwenError(`${id}: no such model folder or file, and not a hub id (owner/name)`);
  return { model: loadModel(p, { backend }), tokenizer: loadTokenizer(p), path: p, name: id };
}

function positiveInt(v, flag) {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new QwenError(`${flag} must be a positive integer, got '${v}'`);
  return Number(v);
}

async function main(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      reranker: { type: 'string' },
      query: { type: 'string', multiple: true },
      catalogue: { type: 'string', default: path.join(HERE, 'products.jsonl') },
      'top-k': { type: 'string', default: '5' },
      candidates: { type: 'string', default: '10' },
      pooling: { type: 'string' },
      dimensions: { type: 'string' },
      backend: { type: 'string', default: 'wasm' },
      threads: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void console.log(HELP);
  if (!values.model) throw new QwenError(`--model is required\n${HELP}`);
  const topK = positiveInt(values['top-k'], '--top-k');
  const candidates = Math.max(topK, positiveInt(values.candidates, '--candidates'));
  const dimensions = values.dimensions === undefined ? undefined : positiveInt(values.dimensions, '--dimensions');
  if (values.pooling !== undefined && !['last', 'mean', 'cls'].includes(values.pooling)) throw new QwenError(`--pooling must be last, mean or cls, got '${values.pooling}'`);
  const threads = values.threads === undefined ? undefined : positiveInt(values.threads, '--threads');
  const queries = values.query?.length ? values.query : DEMO_QUERIES;
  const products = readCatalogue(values.catalogue);

  const backend = createBackend(values.backend, threads);
  const embedder = await open(values.model, backend);
  const reranker = values.reranker ? await open(values.reranker, backend) : undefined;

  const t0 = performance.now();
  const docs = await embed(embedder, products.map(documentText), { pooling: values.pooling, dimensions });
  const qs = await embed(embedder, queries, { instruction: TASK, pooling: values.pooling, dimensions });
  const secs = (performance.now() - t0) / 1000;
  console.error(`embedded ${products.length} products and ${queries.length} queries (${docs.promptTokens + qs.promptTokens} tokens) in ${secs.toFixed(2)} s`);

  for (const [qi, query] of queries.entries()) {
    let hits = docs.embeddings
      .map((v, i) => ({ id: products[i].id, title: products[i].title, category: products[i].category, index: i, cosine: cosine(qs.embeddings[qi], v) }))
      .sort((a, b) => b.cosine - a.cosine || a.index - b.index)
      .slice(0, reranker ? candidates : topK);
    if (reranker) {
      const r = await rerank(
        reranker,
        query,
        hits.map((h) => documentText(products[h.index])),
        { instruction: TASK, topN: topK },
      );
      hits = r.results.map(({ index, relevance_score }) => ({ ...hits[index], rerank_score: relevance_score }));
    }
    if (values.json) {
      console.log(JSON.stringify({ query, results: hits }));
      continue;
    }
    console.log(`\n${query}`);
    for (const [rank, h] of hits.entries()) {
      const score = `cosine ${h.cosine.toFixed(3)}${h.rerank_score === undefined ? '' : `  rerank ${h.rerank_score.toFixed(3)}`}`;
      console.log(`  ${rank + 1}. ${h.title} [${h.id}]  ${score}`);
    }
  }
}

main(process.argv.slice(2)).catch((e) => {
  // bad input (QwenError) is one line; anything else is a bug worth its stack
  console.error(e instanceof QwenError ? `search: ${e.message}` : e);
  process.exitCode = 1;
});
