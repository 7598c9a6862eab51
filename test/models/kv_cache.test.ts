// The KV cache grows with use (by doubling, up to its capacity) and keeps what it holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/models/load.js';
import { fixtureDir } from '../helpers.js';
import { WasmBackend } from '../../src/backend/wasm.js';

test('a cache grows as positions are used, keeps its contents, and stops at its capacity', () => {
  const m = loadModel(fixtureDir('models/qwen2-tiny-tied'));
  const big = m.newCache(); // capacity: max_position_embeddings (256)
  assert.equal(big.capacity, 256);
  assert.equal(big.allocated, 0);
  const ids = Array.from({ length: 100 }, (_, i) => (i * 7) % 256);
  const oneShot = m.forward(
    ids.map((token, pos) => ({ token, pos, seq: 0, logits: pos === 99 })),
    [m.newCache(100)],
  );
  // the same tokens fed 10 at a time through a growing cache give the same last logits
  let last: Float32Array = new Float32Array(0);
  for (let s = 0; s < 100; s += 10)
    last = m.forward(
      ids.slice(s, s + 10).map((token, i) => ({ token, pos: s + i, seq: 0, logits: s + i === 99 })),
      [big],
    );
  assert.ok(big.allocated >= 100 && big.allocated < 256, `allocated ${big.allocated}`);
  assert.deepEqual(last, oneShot);
  big.reserve(10_000);
  assert.equal(big.allocated, 256);
});

test('requests of every length reuse the heap: caches come in a few sizes, so freed blocks fit the next request', () => {
  const wasm = new WasmBackend({ threads: 1 });
  try {
    const m = loadModel(fixtureDir('models/qwen2-tiny-tied'), { backend: wasm });
    // a 60-token prompt, then decoding to 100 tokens: the cache grows past 64 rows, towards its capacity
    const run = (cap: number) => {
      const c = m.newCache(cap);
      m.forward(
        Array.from({ length: 60 }, (_, pos) => ({ token: pos % 200, pos, seq: 0, logits: pos === 59 })),
        [c],
      );
      for (let pos = 60; pos < 100; pos++) m.forward([{ token: pos, pos, seq: 0, logits: true }], [c]);
      c.release();
    };
    run(100); // warm up
    const before = wasm.memoryBytes();
    for (let cap = 101; cap < 200; cap += 3) run(cap); // each capacity (prompt + max_tokens) different
    assert.equal(wasm.memoryBytes(), before);
  } finally {
    wasm.dispose();
  }
});
