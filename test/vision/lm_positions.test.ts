// M-RoPE positions of prompts with images (src/vision/positions.ts) against worked examples of
// VISION.md section 6 / transformers' Qwen2-VL get_rope_index (computed by hand below), and what a
// Sequence puts on its batch entries: image rows with their embeddings, every position's (t, h, w),
// generated tokens shifted, no speculation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QwenError } from '../../src/errors.js';
import { Sequence, checkRequest, type GenerateOptions } from '../../src/generate/sequence.js';
import type { CausalLM } from '../../src/models/model.js';
import type { KvCache } from '../../src/models/kv_cache.js';
import { mropePositions } from '../../src/vision/positions.js';
import type { ImageEmbedding, PromptImage } from '../../src/vision/types.js';

const img = (nx: number, ny: number, dim = 4): ImageEmbedding => ({
  rows: Float32Array.from({ length: nx * ny * dim }, (_, i) => i),
  nx,
  ny,
  dim,
  hash: 'h',
});
const triples = (pos: Int32Array) => Array.from({ length: pos.length / 3 }, (_, p) => [pos[p * 3]!, pos[p * 3 + 1]!, pos[p * 3 + 2]!]);

// get_rope_index by hand: text 0..2 (arange); the image (grid t=1, h=2, w=3) from st_idx 3:
// t = 3, h = 3 + [0,0,0,1,1,1], w = 3 + [0,1,2,0,1,2]; st_idx = max + 1 = 3 + 2 + 1 = 6 for the rest
test('one image 3 wide, 2 high: rows at (p0, p0 + r, p0 + c), the text after it from p0 + max(nx, ny)', () => {
  // a b <vs> pad*6 <ve> c
  const { pos, delta } = mropePositions(11, [{ start: 3, image: img(3, 2) }]);
  assert.deepEqual(triples(pos), [
    [0, 0, 0],
    [1, 1, 1],
    [2, 2, 2],
    [3, 3, 3],
    [3, 3, 4],
    [3, 3, 5],
    [3, 4, 3],
    [3, 4, 4],
    [3, 4, 5],
    [6, 6, 6],
    [7, 7, 7],
  ]);
  assert.equal(delta, 6 - 9); // index 11 (the first generated token) is at 8
});

test('two images, one tall: each shifts what follows by max(nx, ny) - nx * ny', () => {
  // <vs> pad*4 (2x2) <ve> t <vs> pad*6 (2 wide, 3 high) <ve>
  const { pos, delta } = mropePositions(15, [
    { start: 1, image: img(2, 2) },
    { start: 8, image: img(2, 3) },
  ]);
  const t = triples(pos);
  assert.deepEqual(t.slice(0, 8), [
    [0, 0, 0],
    [1, 1, 1],
    [1, 1, 2],
    [1, 2, 1],
    [1, 2, 2],
    [3, 3, 3], // <ve>: 1 + max(2, 2)
    [4, 4, 4],
    [5, 5, 5], // <vs>
  ]);
  // second image from p0 = 6: rows r = 0..2, columns c = 0..1
  assert.deepEqual(t.slice(8, 14), [
    [6, 6, 6],
    [6, 6, 7],
    [6, 7, 6],
    [6, 7, 7],
    [6, 8, 6],
    [6, 8, 7],
  ]);
  assert.deepEqual(t[14], [9, 9, 9]); // 6 + max(2, 3)
  assert.equal(delta, 9 - 14);
});

test('no image: every position (p, p, p)', () => {
  const { pos, delta } = mropePositions(4, []);
  assert.deepEqual(
    triples(pos),
    [0, 1, 2, 3].map((p) => [p, p, p]),
  );
  assert.equal(delta, 0);
});

// A Sequence needs only the model's config and a cache for next() and its checks.
const config = { vocab_size: 100, max_position_embeddings: 64, hidden_size: 4, mrope_section: [1, 1, 0] };
const model = { config, newCache: () => ({ length: 0, recurrent: false, release() {} }) as unknown as KvCache } as unknown as CausalLM;
const PAD = 7;
const prompt = [1, 2, 3, ...Array(6).fill(PAD), 4, 5];
const opts = (images: PromptImage[], more: Partial<GenerateOptions> = {}): GenerateOptions => ({ max_tokens: 4, temperature: 0, images, ...more });

test("a Sequence's entries: image rows bring their rows and (t, h, w); generated tokens are shifted", () => {
  const image = img(3, 2);
  const seq = new Sequence(model, prompt, opts([{ start: 3, image }]));
  assert.equal(seq.specRoom, 0);
  const first = seq.next(5); // 0..4: text, then the image's first two rows
  assert.deepEqual(
    first.map((e) => [e.pos, e.mpos]),
    [
      [0, [0, 0, 0]],
      [1, [1, 1, 1]],
      [2, [2, 2, 2]],
      [3, [3, 3, 3]],
      [4, [3, 3, 4]],
    ],
  );
  assert.equal(first[2]!.embd, undefined);
  assert.deepEqual(Array.from(first[4]!.embd!), [4, 5, 6, 7]); // row 1 of the image
  const rest = seq.next(100);
  assert.deepEqual(
    rest.map((e) => e.mpos),
    [
      [3, 3, 5],
      [3, 4, 3],
      [3, 4, 4],
      [3, 4, 5],
      [6, 6, 6],
      [7, 7, 7],
    ],
  );
  assert.deepEqual(Array.from(rest[3]!.embd!), [20, 21, 22, 23]); // row 5 (r 1, c 2)
  assert.equal(rest.at(-1)!.logits, true);
  const logits = new Float32Array(100);
  logits[42] = 1;
  assert.equal(seq.step(logits)?.token, 42);
  const gen = seq.next(1);
  assert.deepEqual(gen, [{ token: 42, pos: 11, logits: true, mpos: [8, 8, 8] }]);
  assert.equal(seq.specRoom, 0, 'no speculation with images');
});

test('a Sequence without images keeps its entries as they were (no mpos, no embd)', () => {
  const seq = new Sequence(model, [1, 2, 3], opts([]));
  assert.deepEqual(seq.next(10), [
    { token: 1, pos: 0, logits: false },
    { token: 2, pos: 1, logits: false },
    { token: 3, pos: 2, logits: true },
  ]);
});

test('bad images are refused naming the problem', () => {
  const check = (images: PromptImage[], re: RegExp, p: number[] = prompt, c: typeof config | Omit<typeof config, 'mrope_section'> = config) =>
    assert.throws(
      () => checkRequest(c, p, opts(images)),
      (e: unknown) => e instanceof QwenError && re.test(e.message),
    );
  check([{ start: 3, image: img(3, 2) }], /no M-RoPE sections/, prompt, { vocab_size: 100, max_position_embeddings: 64, hidden_size: 4 });
  check([{ start: 3, image: img(3, 2, 8) }], /rows of 8 values, but the model's hidden_size is 4/);
  check([{ start: 3, image: img(2, 2) }], /run of pad tokens \(7\) around positions 3\.\.6 is longer/);
  check([{ start: 3, image: img(4, 2) }], /prompt position 9 holds token 4, not the image's pad 7/);
  check([{ start: 8, image: img(3, 2) }], /6 rows from position 8 run past the prompt's 11 tokens/);
  check(
    [
      { start: 3, image: img(3, 2) },
      { start: 5, image: img(1, 1) },
    ],
    /image 1 starts at 5, inside or before image 0/,
  );
  check([{ start: 3, image: { ...img(3, 2), rows: new Float32Array(5) } }], /5 values for 3 x 2 rows of 4/);
  // two images back to back over one run of pads: fine
  assert.equal(
    checkRequest(
      config,
      prompt,
      opts([
        { start: 3, image: img(3, 1) },
        { start: 6, image: img(3, 1) },
      ]),
    ),
    4,
  );
});
