// examples/product-search/search.mjs run as a user would (its own process, importing 'qwen-ts'),
// on the tiny random-weight fixture: random weights make the rankings meaningless, so what is
// checked is what holds for any model: its cosines and rerank scores are embed()'s and rerank()'s,
// sorted, --top-k of them, the reranked ones drawn from the cosine --candidates; bad flags fail in one line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { loadModel } from '../../src/models/load.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { embed, type EmbedModel } from '../../src/embed/embed.js';
import { rerank } from '../../src/embed/rerank.js';
import { ROOT, tmpDir } from '../helpers.js';
import { embeddingGguf, plainGguf } from './embed_model.js';

const SCRIPT = path.join(ROOT, 'examples', 'product-search', 'search.mjs');
const TASK = 'Given a product search query, retrieve products that match it';
const QUERIES = ['waterproof shoes for mountain trails', 'Cast iron skillet 28 cm'];
type Product = { id: string; title: string; description: string; category: string };
type Hit = { id: string; title: string; index: number; cosine: number; rerank_score?: number };

const catalogue: Product[] = fs
  .readFileSync(path.join(ROOT, 'examples', 'product-search', 'products.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l));
// the example's README states this document format
const docText = (p: Product) => `${p.title}\n${p.description}\nCategory: ${p.category}`;

async function search(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [SCRIPT, '--backend', 'reference', ...args], { cwd: ROOT });
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

function open(p: string): EmbedModel {
  return { model: loadModel(p), tokenizer: loadTokenizer(p), path: p };
}

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);

test("product-search example: cosine ranking = embed()'s, reranked top hits = rerank()'s", async () => {
  const model = embeddingGguf('last'),
    reranker = plainGguf();
  const args = QUERIES.flatMap((q) => ['--query', q]);
  const plain = await search('--model', model, '--json', '--top-k', '4', ...args);
  assert.equal(plain.code, 0, plain.err);
  assert.match(plain.err, new RegExp(`^embedded ${catalogue.length} products and 2 queries`));
  const reranked = await search('--model', model, '--reranker', reranker, '--json', '--top-k', '3', '--candidates', '6', ...args);
  assert.equal(reranked.code, 0, reranked.err);

  const m = open(model),
    r = open(reranker);
  const docs = (await embed(m, catalogue.map(docText))).embeddings;
  const qs = (await embed(m, QUERIES, { instruction: TASK })).embeddings;
  const plainLines = plain.out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { query: string; results: Hit[] });
  const rerankLines = reranked.out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { query: string; results: Hit[] });
  assert.deepEqual(
    plainLines.map((l) => l.query),
    QUERIES,
  );
  assert.deepEqual(
    rerankLines.map((l) => l.query),
    QUERIES,
  );

  for (const [qi, query] of QUERIES.entries()) {
    const ranked = docs.map((d, i) => ({ i, cos: dot(qs[qi]!, d) })).sort((a, b) => b.cos - a.cos || a.i - b.i);
    const hits = plainLines[qi]!.results;
    assert.equal(hits.length, 4);
    hits.forEach((h, k) => {
      assert.equal(h.index, ranked[k]!.i, `${query}: hit ${k}`);
      assert.equal(h.id, catalogue[h.index]!.id);
      assert.ok(Math.abs(h.cosine - ranked[k]!.cos) < 1e-6, `${query}: cosine ${h.cosine} vs ${ranked[k]!.cos}`);
      assert.equal(h.rerank_score, undefined);
    });

    const cands = ranked.slice(0, 6).map((x) => x.i);
    const want = await rerank(
      r,
      query,
      cands.map((i) => docText(catalogue[i]!)),
      { instruction: TASK },
    );
    const got = rerankLines[qi]!.results;
    assert.equal(got.length, 3);
    got.forEach((h, k) => {
      const w = want.results[k]!;
      assert.equal(h.index, cands[w.index], `${query}: reranked ${k}`);
      assert.ok(Math.abs(h.rerank_score! - w.relevance_score) < 1e-6);
      assert.ok(Math.abs(h.cosine - dot(qs[qi]!, docs[h.index]!)) < 1e-6);
      if (k > 0) assert.ok(got[k - 1]!.rerank_score! >= h.rerank_score!);
    });
  }
});

test('product-search example: a plain causal LM runs with --pooling last; bad input fails in one line', async () => {
  const ok = await search('--model', plainGguf(), '--pooling', 'last', '--query', 'tent', '--top-k', '2');
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /^\ntent\n {2}1\. .+ \[[a-z]+-\d{3}\] {2}cosine -?\d\.\d{3}\n {2}2\. /);
  const dir = tmpDir();
  try {
    const bad = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(bad, '{"id": "a", "title": "A", "description": "d"}\n{"id": "b", "title": "B"}\n');
    for (const [args, re] of [
      [['--model', plainGguf()], /not an embedding model/],
      [['--model', plainGguf(), '--pooling', 'max'], /--pooling must be last, mean or cls, got 'max'/],
      [['--model', plainGguf(), '--top-k', '0'], /--top-k must be a positive integer, got '0'/],
      [['--model', plainGguf(), '--pooling', 'last', '--catalogue', bad], /bad\.jsonl: line 2 has no "description" string/],
      [[], /--model is required/],
    ] as [string[], RegExp][]) {
      const r = await search(...args);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.err.split('\n')[0]!, /^search: /);
      assert.match(r.err, re);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
