// The prefix cache keys blocks that hold an image's rows by the image's content hash: the same
// image (same bytes, same place) restores them, another image behind the same pad ids does not,
// and the text blocks before the first image are shared with a text-only prompt.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ReferenceBackend } from '../../src/backend/reference.js';
import { BLOCK, PrefixCache, sameRows } from '../../src/generate/prefix_cache.js';
import { loadModel } from '../../src/models/load.js';
import type { PromptImage } from '../../src/vision/types.js';
import { FIXTURES, rng } from '../helpers.js';

const model = loadModel(path.join(FIXTURES, 'models/qwen2-tiny-tied'), { backend: new ReferenceBackend() });
const PAD = 151655 % model.config.vocab_size;
const image = (hash: string, start: number): PromptImage => ({ start, image: { rows: new Float32Array(0), nx: 5, ny: 4, dim: 0, hash } });

// 3 blocks: text [0, 20), an image's 20 pads [20, 40), text [40, 48)
const tokens = [...Array.from({ length: 20 }, (_, i) => 100 + i), ...Array(20).fill(PAD), ...Array.from({ length: 8 }, (_, i) => 200 + i)];

function filledCache() {
  const c = model.newCache(64);
  const r = rng(7);
  for (let b = 0; b < 3; b++)
    c.importRows(
      b * BLOCK,
      BLOCK,
      Float32Array.from({ length: c.rowsFloats(BLOCK) }, () => r()),
    );
  return c;
}

test('blocks holding image rows are restored for the same image only', () => {
  const src = filledCache();
  const pc = PrefixCache.for(src, 1 << 24);
  pc.insert(tokens, src, undefined, 0, [image('aaaa', 20)]);
  assert.equal(pc.stats().blocks, 3);

  const same = model.newCache(64);
  assert.equal(pc.restore(tokens, same, 0, [image('aaaa', 20)]).tokens, 2 * BLOCK); // short of the last token's block
  assert.deepEqual(same.exportRows(0, 2 * BLOCK), src.exportRows(0, 2 * BLOCK));

  // another image behind the same ids: only the text block before it
  assert.equal(pc.restore(tokens, model.newCache(64), 0, [image('bbbb', 20)]).tokens, BLOCK);
  // the same image placed elsewhere, or no image at all (the pads as plain ids): the same
  assert.equal(pc.restore(tokens, model.newCache(64), 0, [image('aaaa', 19)]).tokens, BLOCK);
  assert.equal(pc.restore(tokens, model.newCache(64), 0).tokens, BLOCK);
});

test('a text-only prompt leaves blocks an image prompt with the same text start can use, and not more', () => {
  const src = filledCache();
  const pc = PrefixCache.for(src, 1 << 24);
  pc.insert(tokens, src); // the same ids, no images
  assert.equal(pc.restore(tokens, model.newCache(64), 0, [image('aaaa', 20)]).tokens, BLOCK);
  pc.insert(tokens, src, undefined, 0, [image('aaaa', 20)]);
  assert.equal(pc.stats().blocks, 5); // the text block shared, two more for the image's chain
  assert.equal(pc.restore(tokens, model.newCache(64), 0, [image('aaaa', 20)]).tokens, 2 * BLOCK);
});

test('sameRows: the shared ids hold the same rows up to the first image placed differently', () => {
  const a = [image('aaaa', 20)];
  assert.equal(sameRows(a, [image('aaaa', 20)], 48), 48);
  assert.equal(sameRows(a, [image('bbbb', 20)], 48), 20);
  assert.equal(sameRows(a, undefined, 48), 20);
  assert.equal(sameRows(undefined, undefined, 48), 48);
  assert.equal(sameRows(a, [image('bbbb', 20)], 10), 10); // the images lie past the shared ids
  assert.equal(sameRows([image('aaaa', 2), image('cccc', 30)], [image('aaaa', 2), image('dddd', 30)], 48), 30);
});
