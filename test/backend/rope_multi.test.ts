// ropeMulti (M-RoPE, the vision 2-D RoPE): with every position column of a row equal it must be
// rope() bit for bit on each backend (text rows of a vision model keep the text model's numbers);
// with different columns the WASM op agrees with the reference (f64 angles) to 1e-5 relative. Its
// section maps follow VISION.md section 6 (ggml's rope_multi); their numbers against llama.cpp are
// checked end to end by the vision logits tests.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { wasmVariants } from '../helpers.js';
import { ReferenceBackend } from '../../src/backend/reference.js';
import type { Backend } from '../../src/backend/backend.js';
import { mropeSect, visionRope, yarnFreqs } from '../../src/models/rope.js';

let seed = 777;
const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
const ref = new ReferenceBackend();
const backends = wasmVariants([1, 2]);
after(() => backends.forEach((b) => b.dispose()));

function input(be: Backend, n: number): Float32Array {
  const x = be.alloc(n);
  for (let i = 0; i < n; i++) x[i] = rnd();
  return x;
}

test('mropeSect: Qwen2.5-VL (mrope) and Qwen3.5 (imrope) section maps', () => {
  // tiny Qwen2.5-VL: sections [2, 3, 3, 0], head_dim 16: t t h h h w w w
  assert.deepEqual([...mropeSect([2, 3, 3, 0], 16, 'mrope')], [0, 0, 1, 1, 1, 2, 2, 2]);
  // tiny Qwen3.5: [3, 3, 2, 0], 16 rotated dims: t h w t h w t h
  assert.deepEqual([...mropeSect([3, 3, 2, 0], 16, 'imrope')], [0, 1, 2, 0, 1, 2, 0, 1]);
  // real Qwen2.5-VL [16, 24, 24], head_dim 128: 16 t, 24 h, 24 w
  const s = mropeSect([16, 24, 24], 128, 'mrope');
  assert.deepEqual(
    [0, 1, 2].map((c) => s.filter((v) => v === c).length),
    [16, 24, 24],
  );
  assert.throws(() => mropeSect([2, 2, 2, 2], 16, 'mrope'), /pair 6 of 8 to the fourth section/);
  assert.deepEqual([...mropeSect([1, 1, 1], 8, 'mrope')], [0, 1, 2, 0]); // sectors wrap at the sections' sum, as in ggml
  const v = visionRope(16);
  assert.deepEqual([...v.sect], [0, 0, 0, 0, 1, 1, 1, 1]);
  assert.equal(v.freqs.inv[1], 10000 ** (-4 / 16));
  assert.equal(v.freqs.inv[5], v.freqs.inv[1]);
});

for (const be of [ref, ...backends]) {
  test(`${be.name} ropeMulti with equal columns is rope() bit for bit`, () => {
    for (const [T, H, Dh, nRot, theta] of [
      [5, 3, 16, 16, 1e4],
      [7, 2, 64, 16, 1e7],
      [1, 4, 32, 32, yarnFreqs({ rope_type: 'yarn', factor: 4, original_max_position_embeddings: 64, beta_fast: 32, beta_slow: 1, attention_factor: 1.1, truncate: true }, 1e6, 32)],
    ] as const) {
      const pos = Int32Array.from({ length: T }, (_, t) => 3 * t + 11);
      const pos3 = Int32Array.from({ length: 3 * T }, (_, i) => pos[Math.floor(i / 3)]!);
      const sect = mropeSect(nRot === 16 ? [3, 3, 2] : [5, 6, 5], nRot, nRot === 16 ? 'imrope' : 'mrope');
      const a = input(be, T * H * Dh),
        b = be.alloc(T * H * Dh);
      b.set(a);
      be.rope(a, pos, T, H, Dh, theta, nRot);
      be.ropeMulti(b, pos3, 3, sect, T, H, Dh, theta, nRot);
      assert.deepEqual(b, a, `${T}x${H}x${Dh} nRot ${nRot}`);
    }
  });
}

for (const be of backends) {
  test(`${be.name} ropeMulti with distinct columns agrees with the reference, repeated and with moved positions`, () => {
    const T = 9,
      H = 3,
      Dh = 16;
    const pos = Int32Array.from({ length: 3 * T }, () => Math.floor((rnd() + 1) * 50));
    // twice over, the second time with one position moved: the backend's cached table must follow
    for (const [S, sect, theta, moved] of [
      [3, mropeSect([2, 3, 3], 16, 'mrope'), 1e4, false],
      [3, mropeSect([2, 3, 3], 16, 'mrope'), 1e4, false],
      [3, mropeSect([2, 3, 3], 16, 'mrope'), 1e4, true],
      [2, visionRope(16).sect, visionRope(16).freqs, false],
      [2, visionRope(16).sect, visionRope(16).freqs, true],
    ] as const) {
      if (moved) pos[4]! += 7;
      const x = input(be, T * H * Dh),
        e = new Float32Array(x);
      be.ropeMulti(x, pos, S, sect, T, H, Dh, theta);
      ref.ropeMulti(e, pos, S, sect, T, H, Dh, theta);
      for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i]! - e[i]!) <= 1e-5 * Math.abs(e[i]!) + 1e-6, `element ${i}: ${x[i]} vs ${e[i]}`);
    }
  });
}
