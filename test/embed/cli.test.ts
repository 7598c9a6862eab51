// qwen-ts embed / rerank: one JSON line per input (or document), llama.cpp's vectors; one-line errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { main } from '../../src/cli/main.js';
import { normalize } from '../../src/embed/embed.js';
import { capture, FIXTURES, tmpDir } from '../helpers.js';
import { embeddingGguf, plainGguf } from './embed_model.js';

const ref = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'embed', 'reference.json'), 'utf8'));
const TEXTS: string[] = ref.texts;
const VECTORS: number[][] = ref.embeddings.last.map((w: { vector: number[] }) => w.vector);

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let code = -1;
  const { out, err } = await capture(async () => {
    code = await main(args);
  });
  return { code, out, err };
}

function near(line: string, want: number[], what: string, dims = want.length): void {
  const got: number[] = JSON.parse(line).embedding;
  const w = normalize(want, dims);
  assert.equal(got.length, dims);
  assert.ok(got.reduce((s, g, i) => s + g * w[i]!, 0) >= 0.99999, what);
}

test('embed: --text (repeated) and --file in.jsonl print one {"embedding"} line per input, in order', async () => {
  const model = embeddingGguf('last');
  const a = await cli('embed', '--model', model, '--backend', 'reference', '--text', TEXTS[0]!, '--text', TEXTS[1]!, '--dimensions', '8');
  assert.equal(a.code, 0, a.err);
  const lines = a.out.trim().split('\n');
  assert.equal(lines.length, 2);
  lines.forEach((l, i) => near(l, VECTORS[i]!, `--text ${i}`, 8));
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'in.jsonl');
    fs.writeFileSync(file, TEXTS.map((t, i) => JSON.stringify(i % 2 ? { text: t } : t)).join('\n') + '\n\n');
    const b = await cli('embed', '--model', model, '--backend', 'reference', '--file', file);
    assert.equal(b.code, 0, b.err);
    b.out
      .trim()
      .split('\n')
      .forEach((l, i) => near(l, VECTORS[i]!, `--file ${i}`));
    fs.writeFileSync(file, '"ok"\n{"title": "no text"}\n');
    const c = await cli('embed', '--model', model, '--file', file);
    assert.equal(c.code, 1);
    assert.match(c.err, /^qwen-ts embed: --file .*in\.jsonl: line 2 is neither a JSON string nor an object with a "text" string\n$/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('embed / rerank: one-line errors', async () => {
  for (const [args, re] of [
    [['embed', '--model', plainGguf(), '--text', 'x'], /not an embedding model/],
    [['embed', '--model', embeddingGguf('last'), '--text', 'x', '--dimensions', '17'], /dimensions is 17, larger than the model's 16/],
    [['embed', '--model', embeddingGguf('last'), '--text', 'x', '--dimensions', 'two'], /--dimensions must be a positive integer, got 'two'/],
    [['embed', '--model', embeddingGguf('last'), '--text', 'x', '--pooling', 'max'], /--pooling must be last, mean or cls/],
    [['rerank', '--model', plainGguf(), '--document', 'x'], /--query is required/],
  ] as [string[], RegExp][]) {
    const r = await cli(...args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.err, re);
    assert.equal(r.err.trim().split('\n')[0]!.startsWith(`qwen-ts ${args[0]}: `), true);
  }
});

test("rerank: one line per document, best first, with llama.cpp's probabilities", async () => {
  const { query, documents, cases } = ref.rerank;
  const want = cases.map((c: { yes: number; no: number }) => 1 / (1 + Math.exp(c.no - c.yes)));
  const r = await cli('rerank', '--model', plainGguf(), '--query', query, ...documents.flatMap((d: string) => ['--document', d]), '--top-n', '2');
  assert.equal(r.code, 0, r.err);
  const lines = r.out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  assert.ok(lines[0].relevance_score >= lines[1].relevance_score);
  for (const x of lines) {
    assert.ok(Math.abs(x.relevance_score - want[x.index]) < 1e-5);
    assert.equal(x.document, documents[x.index]);
  }
});
