// Embeddings and reranking of the tiny random-weight qwen3 model against llama.cpp on the same
// weights (test/fixtures/embed/reference.json, from scripts/embed-reference.mjs): llama.cpp's own
// pooling (last, mean, cls) through its embedding context, and its logits of "yes" / "no" after
// the reranker prompt. Texts are tokenised by qwen.ts here and by llama.cpp there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WasmBackend } from '../../src/backend/wasm.js';
import type { Backend } from '../../src/backend/backend.js';
import { loadModel } from '../../src/models/load.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { embed, embeddingIds, normalize, type EmbedModel } from '../../src/embed/embed.js';
import { rerank, rerankPrompt } from '../../src/embed/rerank.js';
import { chatModelDir, FIXTURES } from '../helpers.js';
import { folderVariant } from '../models/variants.js';
import { embeddingGguf, ENDOFTEXT, plainGguf, POOLING_TYPES } from './embed_model.js';

const ref = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'embed', 'reference.json'), 'utf8'));
const TEXTS: string[] = ref.texts;
const INSTRUCTION = 'Given a web search query, retrieve relevant passages that answer the query';

const open = (p: string, backend?: Backend): EmbedModel => ({ model: loadModel(p, { backend, onNote: () => {} }), tokenizer: loadTokenizer(p), path: p });

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0,
    aa = 0,
    bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

function agree(got: Float32Array[], want: number[][], what: string, dims?: number): void {
  assert.equal(got.length, want.length);
  got.forEach((g, i) => {
    const w = normalize(want[i]!, dims ?? want[i]!.length);
    assert.equal(g.length, w.length, `${what} ${i}: length`);
    assert.ok(Math.abs(Math.hypot(...g) - 1) < 1e-5, `${what} ${i}: unit length`);
    const c = cosine(g, w);
    assert.ok(c >= 0.99999, `${what} ${i}: cosine ${c}`);
  });
}

for (const pooling of Object.keys(POOLING_TYPES) as (keyof typeof POOLING_TYPES)[]) {
  test(`${pooling} pooling (GGUF pooling_type ${POOLING_TYPES[pooling]}): llama.cpp's ids and embeddings, alone and batched`, async () => {
    const m = open(embeddingGguf(pooling));
    const want: { ids: number[]; vector: number[] }[] = ref.embeddings[pooling];
    assert.deepEqual(
      embeddingIds(m, TEXTS),
      want.map((w) => w.ids),
      'tokenised as llama.cpp, <|endoftext|> appended (add_eos_token)',
    );
    const vectors = want.map((w) => w.vector);
    for (let i = 0; i < TEXTS.length; i++) agree((await embed(m, [TEXTS[i]!])).embeddings, [vectors[i]!], 'alone');
    const all = await embed(m, TEXTS);
    agree(all.embeddings, vectors, 'one batch');
    assert.equal(
      all.promptTokens,
      want.reduce((n, w) => n + w.ids.length, 0),
    );
    // sequences split over passes of 7 tokens, at most 2 sequences a pass
    agree((await embed(m, TEXTS, { tokenBudget: 7, maxSequences: 2 })).embeddings, vectors, 'small passes');
    // token ids as given (the EOS already in them)
    agree(
      (
        await embed(
          m,
          want.map((w) => w.ids),
        )
      ).embeddings,
      vectors,
      'token ids',
    );
  });
}

test('the WebAssembly backend, Matryoshka dimensions and the query instruction', async () => {
  const be = new WasmBackend({ threads: 2 });
  try {
    const m = open(embeddingGguf('last'), be);
    const vectors: number[][] = ref.embeddings.last.map((w: { vector: number[] }) => w.vector);
    agree((await embed(m, TEXTS, { tokenBudget: 16 })).embeddings, vectors, 'wasm');
    agree((await embed(m, TEXTS, { dimensions: 8 })).embeddings, vectors, 'first 8, renormalised', 8);
    // TEXTS[2] is the instruction-prefixed query
    agree((await embed(m, ['waterproof hiking boots'], { instruction: INSTRUCTION })).embeddings, [vectors[2]!], 'instruction');
  } finally {
    be.dispose();
  }
});

test('a sentence-transformers folder as Qwen3-Embedding ships it (modules.json, 1_Pooling lasttoken, TemplateProcessing EOS, tensors without model.) gives the GGUF embeddings', async () => {
  const src = chatModelDir();
  const dir = fs.mkdtempSync(path.join(path.dirname(src), 'st-embed-'));
  try {
    folderVariant(src, dir, { tensors: (ts) => ts.map((t) => ({ ...t, name: t.name.replace(/^model\./, '') })) });
    fs.copyFileSync(path.join(src, 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
    const tj = JSON.parse(fs.readFileSync(path.join(src, 'tokenizer.json'), 'utf8'));
    tj.post_processor = {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<|endoftext|>', type_id: 0 } }],
      pair: [],
      special_tokens: { '<|endoftext|>': { id: '<|endoftext|>', ids: [ENDOFTEXT], tokens: ['<|endoftext|>'] } },
    };
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tj));
    fs.writeFileSync(
      path.join(dir, 'modules.json'),
      JSON.stringify([
        { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
        { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
        { idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' },
      ]),
    );
    fs.mkdirSync(path.join(dir, '1_Pooling'));
    fs.writeFileSync(
      path.join(dir, '1_Pooling', 'config.json'),
      JSON.stringify({
        word_embedding_dimension: 16,
        pooling_mode_cls_token: false,
        pooling_mode_mean_tokens: false,
        pooling_mode_max_tokens: false,
        pooling_mode_mean_sqrt_len_tokens: false,
        pooling_mode_weightedmean_tokens: false,
        pooling_mode_lasttoken: true,
        include_prompt: true,
      }),
    );
    const m = open(dir);
    assert.deepEqual(
      embeddingIds(m, TEXTS),
      ref.embeddings.last.map((w: { ids: number[] }) => w.ids),
    );
    agree(
      (await embed(m, TEXTS)).embeddings,
      ref.embeddings.last.map((w: { vector: number[] }) => w.vector),
      'HF folder',
    );
    // as Qwen3-Embedding-4B / 8B ship: tie_word_embeddings false and no lm_head.weight; embeddings need no head
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, tie_word_embeddings: false }));
    const untied = open(dir);
    agree(
      (await embed(untied, TEXTS)).embeddings,
      ref.embeddings.last.map((w: { vector: number[] }) => w.vector),
      'HF folder, untied, no head',
    );
    const cache = untied.model.newCache(4);
    assert.throws(() => untied.model.forward([{ token: 1, pos: 0, seq: 0, logits: true }], [cache]), /no lm_head\.weight .*it computes embeddings/);
    cache.release();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("rerank: P(yes) against P(no) from llama.cpp's logits after the reranker prompt, sorted, top_n", async () => {
  const m = open(plainGguf());
  const { query, documents, cases } = ref.rerank;
  documents.forEach((d: string, i: number) => assert.deepEqual(m.tokenizer.encode(rerankPrompt(query, d)), cases[i].ids, `prompt ${i} tokenised as llama.cpp`));
  const want = cases.map((c: { yes: number; no: number }) => Math.exp(c.yes) / (Math.exp(c.yes) + Math.exp(c.no)));
  for (const opts of [{}, { tokenBudget: 20, maxSequences: 2 }]) {
    const r = await rerank(m, query, documents, opts);
    assert.equal(r.results.length, documents.length);
    for (const { index, relevance_score } of r.results) assert.ok(Math.abs(relevance_score - want[index]) < 1e-5, `document ${index}: ${relevance_score} vs ${want[index]}`);
    for (let k = 1; k < r.results.length; k++) assert.ok(r.results[k - 1]!.relevance_score >= r.results[k]!.relevance_score, 'sorted');
    assert.equal(
      r.promptTokens,
      cases.reduce((n: number, c: { ids: number[] }) => n + c.ids.length, 0),
    );
  }
  const top = await rerank(m, query, documents, { topN: 1 });
  assert.equal(top.results.length, 1);
  assert.equal(top.results[0]!.index, want.indexOf(Math.max(...want)));
});

test('a pooling option other than last, mean or cls is refused by name, not used as last-token pooling', async () => {
  const m = open(plainGguf());
  await assert.rejects(embed(m, ['hi'], { pooling: 'max' as never }), /pooling must be 'last', 'mean' or 'cls', got "max"/);
  assert.equal((await embed(m, ['hi'], { pooling: 'mean' })).embeddings.length, 1);
});
